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
# The same load also goes through a private Postfix relay (its own
# config_directory and queue_directory under the temp dir, master run in
# the foreground on a loopback port, relayhost = the sink) for the side-by-
# side comparison; POSTFIX=0 skips it.  Postfix CPU is the whole master
# process tree's utime+stime (plus reaped children).
#
# Needs Postfix (apt-get install postfix: smtp-source, smtp-sink, master;
# the system's postfix service is not used).  Processes are stopped by PID.
set -u

BUILD=${BUILD:-build}
MSGS=${MSGS:-2000}
SRC=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
NODE=$BUILD/node/sluice-node
POLICY=$BUILD/tests/sluice-dlvpolicy
TMP=$(mktemp -d /tmp/sluice-bench.XXXXXX)
HZ=$(getconf CLK_TCK)
POSTFIX=${POSTFIX:-1}
PF_MASTER=${PF_MASTER:-/usr/lib/postfix/sbin/master}
SINK_PID= NODE_PID= PF_PID=

cleanup() {
	[ -n "$PF_PID" ] && kill "$PF_PID" 2>/dev/null || true
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

# Postfix: a private instance relaying to the sink.
start_postfix() {
	P=$TMP/pf; Q=$P/queue
	chmod 755 "$TMP"	# the postfix user walks into its queue
	rm -rf "$P"; mkdir -p "$P/etc" "$Q/pid" "$P/data"
	for d in active bounce corrupt defer deferred flush hold incoming \
	    private saved trace; do
		mkdir -p "$Q/$d"; chown postfix:root "$Q/$d"; chmod 700 "$Q/$d"
	done
	mkdir -p "$Q/maildrop" "$Q/public"
	chown postfix:postdrop "$Q/maildrop" "$Q/public"
	chmod 730 "$Q/maildrop"; chmod 710 "$Q/public"; chown postfix "$P/data"
	PF_PORT=$(port)
	cat > "$P/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $Q
data_directory = $P/data
myhostname = relay.postfix.bench
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtpd_relay_restrictions = permit_mynetworks, reject
default_destination_concurrency_limit = 20
default_process_limit = 200
smtpd_client_connection_count_limit = 0
local_transport = error:no local delivery
alias_maps =
alias_database =
maillog_file = $P/maillog
maillog_file_prefixes = $P
CONF
	cat > "$P/etc/master.cf" <<CONF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix n - n 60   1 pickup
cleanup   unix n - n -    0 cleanup
qmgr      unix n - n 300  1 qmgr
rewrite   unix - - n -    - trivial-rewrite
bounce    unix - - n -    0 bounce
defer     unix - - n -    0 bounce
trace     unix - - n -    0 bounce
verify    unix - - n -    1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n -    - proxymap
smtp      unix - - n -    - smtp
relay     unix - - n -    - smtp
showq     unix n - n -    - showq
error     unix - - n -    - error
retry     unix - - n -    - error
discard   unix - - n -    - discard
anvil     unix - - n -    1 anvil
scache    unix - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
CONF
	$PF_MASTER -d -c "$P/etc" >/dev/null 2>&1 &
	PF_PID=$!
	wait_port $PF_PORT
}

tree_cpu() {	# utime+stime of $1 and its descendants, with reaped children
	local t=0 p
	for p in $1 $(pgrep -P $1); do
		[ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14+$15+$16+$17}' /proc/$p/stat)))
	done
	echo $t
}

pf_queued() {
	find "$TMP/pf/queue/incoming" "$TMP/pf/queue/active" \
	    "$TMP/pf/queue/deferred" "$TMP/pf/queue/maildrop" -type f | wc -l
}

run_postfix() {
	start_postfix
	t0=$(now_ms); c0=$(tree_cpu $PF_PID)
	$SRC -s "$2" -l "$1" -m "$MSGS" -f a@example.com -t b@example.net \
	    127.0.0.1:$PF_PORT >/dev/null
	while [ "$(pf_queued)" != 0 ]; do sleep 0.05; done
	t1=$(now_ms); c1=$(tree_cpu $PF_PID)
	kill $PF_PID; wait $PF_PID 2>/dev/null || true; PF_PID=
	PF_RATE=$(awk -v n="$MSGS" -v ms=$((t1 - t0)) \
	    'BEGIN { printf "%.0f", n * 1000 / ms }')
	PF_CPU=$(awk -v n="$MSGS" -v cpu=$((c1 - c0)) -v hz="$HZ" \
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
printf "%-6s %-5s | %-7s %-7s %-7s | %-7s %-7s | %-7s | %-7s %-7s\n" \
    size sess sluice "CPUms" ingress postfix "CPUms" direct "sl/pf" "sl/dir"
for size in 1024 20480; do
	for sess in 10 100; do
		run_relay $size $sess
		PF_RATE=- PF_CPU=-
		[ "$POSTFIX" = 1 ] && run_postfix $size $sess
		run_direct $size $sess
		printf "%-6s %-5s | %-7s %-7s %-7s | %-7s %-7s | %-7s | %-7s %-7s\n" \
		    $size $sess "$RELAY_RATE" "$RELAY_CPU" "$INGRESS_RATE" \
		    "$PF_RATE" "$PF_CPU" "$DIRECT_RATE" \
		    "$(awk -v a="$RELAY_RATE" -v b="$PF_RATE" \
		    'BEGIN { if (b + 0 > 0) printf "%.1fx", a / b; else print "-" }')" \
		    "$(awk -v a="$RELAY_RATE" -v b="$DIRECT_RATE" \
		    'BEGIN { printf "%.0f%%", a * 100 / b }')"
	done
done
