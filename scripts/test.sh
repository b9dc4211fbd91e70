#!/bin/sh
# scripts/test.sh - the whole test suite, from a fresh Debian 12 machine:
# installs what it needs, builds twice (plain, and AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs every test under CTest in both.
# The tests start their own PostgreSQL, dnsmasq and sluice processes.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
scripts/build.sh build-asan -DSANITIZE='address;undefined' \
    -DCMAKE_BUILD_TYPE=Debug
jobs=$(nproc)
status=0
ctest --test-dir build --output-on-failure -j"$jobs" || status=1
# The Ansible tests build their own (plain) binaries through the role, so
# a sanitizer pass would only repeat them: they run in the plain pass.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE ansible ||
    status=1
exit $status
