#!/bin/sh
# scripts/deps.sh - install the Debian 12 packages sluice builds, tests and
# runs with.  Does nothing when they are all present (so it works offline
# on a prepared machine); otherwise apt-get update + install, as root.
set -eu
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
 libssl-dev openssl libnng-dev libprotobuf-c-dev protobuf-c-compiler
 libpq-dev postgresql postgresql-client libevent-dev libc-ares-dev
 libyaml-dev libjansson-dev libcmocka-dev dnsmasq-base python3 iproute2 util-linux
 ansible ansible-lint python3-dkim python3-yaml
 chromium nodejs
 ${SLUICE_EXTRA_PKGS:-}"
# The console's browser test drives chromium with playwright-core, which
# npm installs from tests/console/browser/package-lock.json (node >= 18);
# a nodejs that ships its own npm (NodeSource) needs no Debian npm.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
