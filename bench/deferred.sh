#!/bin/bash
# deferred.sh - what an idle node costs with a deep deferred queue: N
# messages (default 100 000) deferred an hour ahead, the hop down, no
# new mail.  The node runs SECS seconds (default 20) after its start-up
# (recovery) and reports the CPU it used in that window (utime+stime from
# /proc/PID/stat) as ms of CPU per second.
#
#   bench/deferred.sh [BUILD=build] [N=100000] [SECS=20] [NODE...]
#
# Each NODE (default: BUILD/node/sluice-node) runs on its own copy of one
# filled spool, one after the other, so an older binary can be compared
# in the same run: bench/deferred.sh build 100000 20 old/sluice-node \
# build/node/sluice-node.  Needs BUILD/tests/spool_fill and
# BUILD/tests/sluice-dlvpolicy.  Processes are stopped by PID.
set -u
BUILD=${1:-build}
N=${2:-100000}
SECS=${3:-20}
shift 3 2>/dev/null || shift $#
NODES=("$@")
[ ${#NODES[@]} -eq 0 ] && NODES=("$BUILD/node/sluice-node")
TMP=$(mktemp -d /tmp/sluice-deferred.XXXXXX)
HZ=$(getconf CLK_TCK)
NODE_PID=
cleanup() {
	[ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

DOWN=$(port)	# nothing listens: the hop is down
"$BUILD/tests/spool_fill" "$TMP/filled" "$N" 1024 3600 2>/dev/null || exit 1
printf "%-40s %8s %12s %10s\n" node messages "CPU ms/s" "RSS MB"
for node in "${NODES[@]}"; do
	rm -rf "$TMP/spool"
	cp -a "$TMP/filled" "$TMP/spool"
	"$BUILD/tests/sluice-dlvpolicy" "$TMP/spool/policy.cache" \
	    --network 127.0.0.0/8 --hop "down:host=127.0.0.1,port=$DOWN" \
	    --route '*=down' >/dev/null
	cat >"$TMP/node.conf" <<CONF
name = bench
token = bench
controller = tcp://127.0.0.1:1
spool = $TMP/spool
hostname = relay.bench
heartbeat_ms = 60000
listen = 127.0.0.1:$(port) relay
CONF
	"$node" --config "$TMP/node.conf" 2>"$TMP/node.log" &
	NODE_PID=$!
	i=0
	until grep -q "delivery: started" "$TMP/node.log"; do
		i=$((i + 1))
		[ $i -gt 600 ] && { echo "node did not start"; cat "$TMP/node.log"; exit 1; }
		sleep 0.1
	done
	sleep 1	# recovery done; let start-up settle
	c0=$(awk '{print $14 + $15}' /proc/$NODE_PID/stat)
	sleep "$SECS"
	c1=$(awk '{print $14 + $15}' /proc/$NODE_PID/stat)
	rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' /proc/$NODE_PID/status)
	kill $NODE_PID; wait $NODE_PID 2>/dev/null; NODE_PID=
	printf "%-40s %8s %12.1f %10s\n" "$node" "$N" \
	    "$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v s="$SECS" \
	    'BEGIN { print c * 1000 / hz / s }')" "$rss"
	echo "  delivery attempts logged: $(grep -c "delivery status=" "$TMP/node.log")"
done
