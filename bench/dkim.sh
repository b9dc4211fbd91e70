#!/bin/bash
# dkim.sh - the cost of DKIM signing end to end: smtp-source -> sluice-node
# -> smtp-sink with signing off, RSA-2048, Ed25519 and both (dual), 1 KB
# and 20 KB messages, SESS parallel sessions (default 10).  Reports
# messages/s and the node's CPU milliseconds per message (utime+stime from
# /proc/PID/stat), and checks that every message was signed
# (sluice_dkim_signed_total).  Durability on, as in production.
#
#   BUILD=build MSGS=2000 bench/dkim.sh
#
# Needs Postfix's smtp-source and smtp-sink; processes stopped by PID.
set -u

BUILD=${BUILD:-build}
MSGS=${MSGS:-2000}
SESS=${SESS:-10}
REPS=${REPS:-1}
SRC=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
NODE=$BUILD/node/sluice-node
POLICY=$BUILD/tests/sluice-dlvpolicy
TMP=$(mktemp -d /tmp/sluice-bench-dkim.XXXXXX)
HZ=$(getconf CLK_TCK)
SINK_PID= NODE_PID=

cleanup() {
	[ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null || true
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ms() { date +%s%3N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() {
	curl -s "http://127.0.0.1:$METRICS/metrics" 2>/dev/null |
	    awk -v k="$1" '$1 == k {print $2}'
}
wait_port() {
	i=0
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 200 ] && { echo "port $1 not up"; exit 1; }
		sleep 0.05
	done
}

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$TMP/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$TMP/ed.pem" 2>/dev/null

SINK_PORT=$(port)
$SINK -u nobody -c 127.0.0.1:$SINK_PORT 1024 >/dev/null 2>&1 &
SINK_PID=$!

# start_node KEYS...: a node whose policy signs example.com with KEYS
start_node() {
	local keys=()
	for k in "$@"; do keys+=(--dkim "example.com:$k"); done
	rm -rf "$TMP/spool"; mkdir -p "$TMP/spool"
	NODE_PORT=$(port); METRICS=$(port)
	$POLICY "$TMP/spool/policy.cache" --network 127.0.0.0/8 \
	    --hop "sink:host=127.0.0.1,port=$SINK_PORT,max_conn=20" \
	    --route '*=sink' --limit max_connections_per_ip=1000 \
	    "${keys[@]}" >/dev/null
	cat > "$TMP/node.conf" <<CONF
name = bench
token = bench
controller = tcp://127.0.0.1:1
spool = $TMP/spool
hostname = relay.bench
heartbeat_ms = 60000
listen = 127.0.0.1:$NODE_PORT relay
metrics_listen = 127.0.0.1:$METRICS
CONF
	$NODE --config "$TMP/node.conf" 2>"$TMP/node.log" &
	NODE_PID=$!
	wait_port $NODE_PORT
}

# run SIZE KEYS...: RATE (msgs/s end to end) and CPU (ms/msg)
run() {
	local size=$1; shift
	start_node "$@"
	t0=$(now_ms); c0=$(cpu_ticks $NODE_PID)
	$SRC -s "$SESS" -l "$size" -m "$MSGS" -f a@example.com \
	    -t b@example.net 127.0.0.1:$NODE_PORT >/dev/null
	while [ "$(metric sluice_deliveries_total)" != "$MSGS" ]; do
		kill -0 $NODE_PID || { echo "node died"; exit 1; }
		sleep 0.02
	done
	t1=$(now_ms); c1=$(cpu_ticks $NODE_PID)
	SIGNED=$(metric 'sluice_dkim_signed_total{domain="example.com"}')
	kill $NODE_PID; wait $NODE_PID 2>/dev/null || true; NODE_PID=
	RATE=$(awk -v n="$MSGS" -v ms=$((t1 - t0)) \
	    'BEGIN { printf "%.0f", n * 1000 / ms }')
	CPU=$(awk -v n="$MSGS" -v cpu=$((c1 - c0)) -v hz="$HZ" \
	    'BEGIN { printf "%.3f", cpu * 1000 / hz / n }')
	if [ $# -gt 0 ] && [ "${SIGNED:-0}" != "$MSGS" ]; then
		echo "only ${SIGNED:-0} of $MSGS messages signed" >&2
		exit 1
	fi
}

wait_port $SINK_PORT
printf "%-6s %-8s | %-7s %-7s\n" size signing "msgs/s" "CPUms"
for rep in $(seq "$REPS"); do
	for size in ${SIZES:-1024 20480}; do
		for mode in ${MODES:-off rsa ed25519 dual}; do
			case $mode in
			off) run $size ;;
			rsa) run $size "r1:$TMP/rsa.pem" ;;
			ed25519) run $size "e1:$TMP/ed.pem" ;;
			dual) run $size "r1:$TMP/rsa.pem" "e1:$TMP/ed.pem" ;;
			esac
			printf "%-6s %-8s | %-7s %-7s\n" $size $mode "$RATE" "$CPU"
		done
	done
done
