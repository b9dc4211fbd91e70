#!/bin/bash
# relay.sh - end-to-end relay throughput: smtp-source -> sluice-node ->
# smtp-sink, against the ceiling smtp-source -> smtp-sink directly.
# 1 KB and 20 KB messages, 10 and 100 parallel sessions.  Reports
# messages/s and the node's CPU milliseconds per message (utime+stime
# from /proc/PID/stat).  Durability stays on (the spool fsyncs with group
# commit as in production).
#
#   BUILD=build-dlv MSGS=2000 bench/relay.sh
#
# Needs Postfix's smtp-source and smtp-sink (apt-get install postfix; the
# postfix daemon itself is not started).  Processes are stopped by PID.
set -u

BUILD=${BUILD:-build}
MSGS=${MSGS:-2000}
SRC=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
NODE=$BUILD/node/sluice-node
POLICY=$BUILD/tests/sluice-dlvpolicy
TMP=$(mktemp -d /tmp/sluice-bench.XXXXXX)
HZ=$(getconf CLK_TCK)
SINK_PID= NODE_PID=

cleanup() {
	[ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null || true
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
	sleep 0.2
	[ -n "$NODE_PID" ] && kill -9 "$NODE_PID" 2>/dev/null || true
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

SINK_PORT=$(port)
$SINK -u nobody -c 127.0.0.1:$SINK_PORT 1024 >/dev/null 2>&1 &
SINK_PID=$!

start_node() {
	rm -rf "$TMP/spool"; mkdir -p "$TMP/spool"
	NODE_PORT=$(port); METRICS=$(port)
	$POLICY "$TMP/spool/policy.cache" --network 127.0.0.0/8 \
	    --hop "sink:host=127.0.0.1,port=$SINK_PORT,max_conn=20" \
	    --route '*=sink' --limit max_connections_per_ip=1000 \
	    >/dev/null
	cat > "$TMP/node.conf" <<CONF
name = bench
token = bench
controller = tcp://127.0.0.1:1
spool = $TMP/spool
hostname = relay.bench
heartbeat_ms = 60000
listen = 127.0.0.1:$NODE_PORT relay
metrics_listen = 127.0.0.1:$METRICS
delivery_tick_ms = 20
CONF
	$NODE --config "$TMP/node.conf" 2>"$TMP/node.log" &
	NODE_PID=$!
	wait_port $NODE_PORT
}

# run SIZE SESSIONS: prints msgs/s and CPU ms/msg through the node
run_relay() {
	start_node
	t0=$(now_ms); c0=$(cpu_ticks $NODE_PID)
	$SRC -s "$2" -l "$1" -m "$MSGS" -f a@example.com -t b@example.net \
	    127.0.0.1:$NODE_PORT >/dev/null
	ts=$(now_ms)
	while [ "$(metric sluice_deliveries_total)" != "$MSGS" ]; do
		kill -0 $NODE_PID || { echo "node died"; exit 1; }
		sleep 0.02
	done
	t1=$(now_ms); c1=$(cpu_ticks $NODE_PID)
	kill $NODE_PID; wait $NODE_PID 2>/dev/null || true; NODE_PID=
	INGRESS_RATE=$(awk -v n="$MSGS" -v ms=$((ts - t0)) \
	    'BEGIN { printf "%.0f", n * 1000 / ms }')
	RELAY_RATE=$(awk -v n="$MSGS" -v ms=$((t1 - t0)) \
	    'BEGIN { printf "%.0f", n * 1000 / ms }')
	RELAY_CPU=$(awk -v n="$MSGS" -v cpu=$((c1 - c0)) -v hz="$HZ" \
	    'BEGIN { printf "%.3f", cpu * 1000 / hz / n }')
}

run_direct() {
	t0=$(now_ms)
	$SRC -s "$2" -l "$1" -m "$MSGS" -f a@example.com -t b@example.net \
	    127.0.0.1:$SINK_PORT >/dev/null
	t1=$(now_ms)
	DIRECT_RATE=$(awk -v n="$MSGS" -v ms=$((t1 - t0)) \
	    'BEGIN { printf "%.0f", n * 1000 / ms }')
}

wait_port $SINK_PORT
printf "%-6s %-8s %-12s %-12s %-14s %-12s %s\n" size sessions \
    "sluice msg/s" "CPU ms/msg" "ingress msg/s" "direct msg/s" \
    "sluice/direct"
for size in 1024 20480; do
	for sess in 10 100; do
		run_relay $size $sess
		run_direct $size $sess
		printf "%-6s %-8s %-12s %-12s %-14s %-12s %s%%\n" $size $sess \
		    "$RELAY_RATE" "$RELAY_CPU" "$INGRESS_RATE" "$DIRECT_RATE" \
		    "$(awk -v a="$RELAY_RATE" -v b="$DIRECT_RATE" \
		    'BEGIN { printf "%.0f", a * 100 / b }')"
	done
done
