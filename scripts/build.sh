#!/bin/sh
# scripts/build.sh [BUILD_DIR [extra cmake args]] - configure and build.
set -eu
cd "$(dirname "$0")/.."
# Binaries and build directories readable by every user whatever the
# caller's umask (tests run sluicectl and sluice-node as other users).
umask 022
dir=${1:-build}
[ $# -gt 0 ] && shift
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
