#!/bin/sh
# scripts/fleet.sh up|down|status - a local sluice fleet in ./.fleet:
# PostgreSQL initialised into .fleet/pg (own port, socket in the same
# directory), one controller, two nodes (SMTP on 127.0.0.1:2525 and :2526),
# a starter policy, and a test message sent through it.
# `up` installs missing Debian packages and builds first.  `down` stops
# exactly the processes `up` started (PID files) and keeps the data.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
F=$ROOT/.fleet
BUILD=$ROOT/build
PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT=${SLUICE_FLEET_PG_PORT:-55432}
NODE_URL=tcp://127.0.0.1:${SLUICE_FLEET_CTL_PORT:-57701}
ADMIN_URL=ipc://$F/admin.sock
SINK_PORT=${SLUICE_FLEET_SINK_PORT:-2600}

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_bg() {	# start_bg NAME LOG CMD...: record the PID in $F/NAME.pid
	name=$1 log=$2
	shift 2
	if running "$F/$name.pid"; then return 0; fi
	nohup "$@" >>"$log" 2>&1 </dev/null &
	echo $! >"$F/$name.pid"
}

ctl() { "$BUILD/ctl/sluicectl" --admin "$ADMIN_URL" "$@"; }

json_get() {	# json_get KEY|INDEX...: walk stdin's JSON document
	python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$@"
}

sink_count() { if [ -f "$F/sink.jsonl" ]; then wc -l <"$F/sink.jsonl"; else echo 0; fi; }

nodes_on() {	# nodes_on VERSION: both nodes report running it
	[ "$(ctl --json node list | python3 -c 'import json, sys
print(sum(n["policy_version"] == int(sys.argv[1])
          for n in json.load(sys.stdin)["nodes"]))' "$1")" -eq 2 ]
}

wait_for() {	# wait_for WHAT CMD...: poll up to 15 s
	what=$1
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 150 ] && { echo "fleet: timed out waiting for $what" >&2; exit 1; }
		sleep 0.1
	done
}

up() {
	scripts/deps.sh
	mkdir -p "$F"
	echo "building into $BUILD (log: $F/build.log)"
	scripts/build.sh "$BUILD" >"$F/build.log" 2>&1 ||
	    { tail -30 "$F/build.log"; exit 1; }
	mkdir -p "$F"
	chmod 755 "$F"
	if [ ! -d "$F/pg/data" ]; then
		mkdir -p "$F/pg"
		[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$F/pg"
		as_pg "$PG_BIN/initdb" -D "$F/pg/data" -U sluice --auth=trust \
		    -E UTF8 --locale=C >/dev/null
	fi
	if ! as_pg "$PG_BIN/pg_ctl" -D "$F/pg/data" status >/dev/null 2>&1; then
		as_pg "$PG_BIN/pg_ctl" -D "$F/pg/data" -w -s -l "$F/pg/log" \
		    -o "-k $F/pg -p $PG_PORT -h 127.0.0.1" start
	fi
	as_pg psql -X -q -h "$F/pg" -p "$PG_PORT" -U sluice -d postgres -tAc \
	    "SELECT 1 FROM pg_database WHERE datname='sluice'" | grep -q 1 ||
	    as_pg psql -X -q -h "$F/pg" -p "$PG_PORT" -U sluice -d postgres \
		-c "CREATE DATABASE sluice"
	# Configs hold the database conninfo and tokens: 0640, and only they
	# (a umask for the whole script would leak into build/ and make the
	# binaries unreadable to other users, e.g. the privilege tests).
	(umask 027
	cat >"$F/controller.conf" <<EOC
database = "host=$F/pg port=$PG_PORT user=sluice dbname=sluice"
node_listen = $NODE_URL
admin_listen = $ADMIN_URL
EOC
	)
	start_bg controller "$F/controller.log" \
	    "$BUILD/controller/sluice-controller" --config "$F/controller.conf"
	wait_for "the controller" ctl node list
	# A sink standing in for the internal mail server the fleet relays to.
	# (the scriptable SMTP server of the tests; it records every message
	# it receives as one JSON line)
	start_bg sink "$F/sink.log" python3 "$ROOT/tests/upstream/upstream.py" \
	    --port "$SINK_PORT" --name sink --record "$F/sink.jsonl" \
	    --no-starttls
	port=2525
	for node in edge-1 edge-2; do
		mkdir -p "$F/$node/spool"
		if [ ! -f "$F/$node/node.conf" ]; then
			token=$(ctl --json node add $node | json_get token)
			(umask 027
			cat >"$F/$node/node.conf" <<EON
name = $node
token = $token
controller = $NODE_URL
spool = $F/$node/spool
heartbeat_ms = 1000
hostname = $node.fleet.local
listen = 127.0.0.1:$port relay
EON
			)
		fi
		start_bg $node "$F/$node/node.log" "$BUILD/node/sluice-node" \
		    --config "$F/$node/node.conf"
		port=$((port + 1))
	done
	if [ "$(ctl policy history | wc -l)" -le 1 ]; then
		ctl network allow 127.0.0.0/8
		ctl hop add internal --host 127.0.0.1 --port "$SINK_PORT" --tls none
		ctl route set '*' internal
	fi
	version=$(ctl --json policy history | json_get versions 0 version)
	wait_for "both nodes on policy version $version" nodes_on "$version"
	before=$(sink_count)
	delivered() { # "delivered" lines in the quick-start message's trace
		"$BUILD/ctl/sluicectl" --admin "$ADMIN_URL" trace \
		    '<quickstart-2525@example.com>' 2>/dev/null |
		    grep -c ' delivered ' || true
	}
	dlv_before=$(delivered)
	python3 - <<EOP
import smtplib
for port in (2525, 2526):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail("app@example.com", ["ops@example.net"],
            "From: app@example.com\r\nTo: ops@example.net\r\n"
            "Message-ID: <quickstart-%d@example.com>\r\n"
            "Subject: hello from the sluice quick start\r\n\r\n"
            "It works.\r\n" % port)
        print("sent a message through 127.0.0.1:%d" % port)
EOP
	wait_for "the sink to receive both messages" sh -c \
	    "[ \$(wc -l <'$F/sink.jsonl' 2>/dev/null || echo 0) -ge $((before + 2)) ]"
	echo "the sink on 127.0.0.1:$SINK_PORT received them ($F/sink.jsonl)"
	# this run's "delivered" (a kept .fleet holds earlier runs' too)
	wait_for "the delivery record" sh -c \
	    "[ \$($BUILD/ctl/sluicectl --admin $ADMIN_URL trace '<quickstart-2525@example.com>' | grep -c ' delivered ') -gt $dlv_before ]"
	echo
	ctl trace '<quickstart-2525@example.com>'
	echo
	ctl node list
	echo
	ctl policy history
	cat <<EOT

The fleet is up (state and logs in $F).
  sluicectl:   $BUILD/ctl/sluicectl --admin $ADMIN_URL node list
  SMTP:        127.0.0.1:2525 (edge-1), 127.0.0.1:2526 (edge-2), relaying
               for 127.0.0.0/8 to the sink on 127.0.0.1:$SINK_PORT
               (every message it receives: $F/sink.jsonl)
  try:         sluicectl status | trace QUEUE-ID | log --since 1h | route explain x@example.net
  stop:        scripts/fleet.sh down
EOT
}

down() {
	for p in edge-1 edge-2 controller sink; do
		if running "$F/$p.pid"; then
			kill "$(cat "$F/$p.pid")"
			echo "stopped $p"
		fi
		rm -f "$F/$p.pid"
	done
	if [ -d "$F/pg/data" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$F/pg/data" -w -s -m fast stop \
		    2>/dev/null && echo "stopped postgresql" || true
	fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status) ctl node list ;;
*) echo "usage: scripts/fleet.sh up|down|status" >&2; exit 2 ;;
esac
