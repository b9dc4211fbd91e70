#!/bin/sh
# scripts/deps.sh - install the Debian 12 packages sluice builds, tests and
# runs with.  Does nothing when they are all present (so it works offline
# on a prepared machine); otherwise apt-get update + install, as root.
set -eu
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
 libssl-dev openssl libnng-dev libprotobuf-c-dev protobuf-c-compiler
 libpq-dev postgresql postgresql-client libevent-dev libc-ares-dev
 libyaml-dev libjansson-dev libcurl4-openssl-dev libcmocka-dev dnsmasq-base python3 iproute2 util-linux
 ansible ansible-lint python3-dkim python3-yaml
 chromium nodejs
 postfix dovecot-core swaks libnet-ssleay-perl msmtp
 libgnutls-dane0 libidn12 libnsl2 libdb5.3
 ${SLUICE_EXTRA_PKGS:-}"
# Real peers for tests/peers/ and delivery_sink8: Postfix (smtp-sink, and a
# private instance the test starts), Dovecot (its SASL service, private),
# swaks (+ Net::SSLeay for its STARTTLS), msmtp; the libraries are the
# unpacked Exim's (below).  Neither Postfix nor Dovecot may run as a
# system daemon here: Postfix is preseeded "No configuration" (no
# /etc/postfix/main.cf, so neither its init script nor its systemd unit,
# ConditionPathExists, starts it), and no service starts during the
# install (a policy-rc.d answering 101 while apt-get runs, unless the
# machine has one).
EXIM_DIR=/usr/local/lib/sluice-peers/exim4
# The console's browser test drives chromium with playwright-core, which
# npm installs from tests/console/browser/package-lock.json (node >= 18);
# a nodejs that ships its own npm (NodeSource) needs no Debian npm.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
exim_ok() {
	[ -x "$EXIM_DIR/usr/sbin/exim4" ] && getent passwd Debian-exim >/dev/null
}
[ -z "$missing" ] && exim_ok && exit 0
if [ "$(id -u)" -ne 0 ]; then
	[ -n "$missing" ] &&
	    echo "deps: missing packages:$missing (run as root to install)" >&2
	exim_ok || echo "deps: no unpacked Exim in $EXIM_DIR (run as root;" \
	    "peer_exim is skipped without it)" >&2
	[ -n "$missing" ] && exit 1
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		trap 'rm -f "$policy"' EXIT
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
	fi
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
	if [ -n "$policy" ]; then
		rm -f "$policy"
	fi
fi
# Exim for peer_exim: exim4-daemon-light conflicts with postfix (each is
# the system's MTA), so its binary is unpacked, not installed; it looks
# up its compiled-in user Debian-exim at start (exim4-base's postinst
# would add it the same way).
if ! exim_ok; then
	getent passwd Debian-exim >/dev/null ||
	    adduser --system --group --quiet --home /var/spool/exim4 \
	    --no-create-home --disabled-login --force-badname Debian-exim
	tmp=$(mktemp -d)
	if (cd "$tmp" &&
	    apt-get download -q -o APT::Sandbox::User=root exim4-daemon-light) &&
	    mkdir -p "$EXIM_DIR" && dpkg -x "$tmp"/exim4-daemon-light_*.deb \
	    "$EXIM_DIR"; then
		echo "deps: exim4-daemon-light unpacked into $EXIM_DIR"
	else
		echo "deps: could not fetch exim4-daemon-light (peer_exim" \
		    "will be skipped)" >&2
	fi
	rm -rf "$tmp"
fi
