#!/bin/sh
# ingest.sh - SMTP ingest with durability on: Postfix's smtp-source against
# sluice-node (1 KB and 20 KB messages, 10 and 100 concurrent sessions),
# beside this machine's single-threaded write+fsync rate.
#
#   bench/ingest.sh [BUILD_DIR=build] [MESSAGES=20000]
#
# Needs: the build's sluice-node, tests/sluice-mkpolicy and tests/fsync_rate
# targets; /usr/sbin/smtp-source (apt-get install postfix; the postfix
# daemon is not started).  The node runs from a policy cache that lets
# 127.0.0.0/8 relay, without a controller, in a temporary directory.
set -eu
BUILD=$(cd "${1:-build}" && pwd)
MESSAGES=${2:-20000}
TOP=$(cd "$(dirname "$0")/.." && pwd)
command -v smtp-source >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
command -v smtp-source >/dev/null || { echo "smtp-source missing (apt-get install postfix)"; exit 1; }
export SLUICE_BUILD="$BUILD"
export PYTHONPATH="$TOP/tests/smtp:$TOP/tests/harness"
exec python3 - "$MESSAGES" <<'PY'
import os, socket, subprocess, sys, time
import smtpkit
from fleet import Proc, binary

messages = int(sys.argv[1])
build = os.environ["SLUICE_BUILD"]

def run_case(sessions, size):
    node = smtpkit.Node("bench", networks=["127.0.0.0/8"], tls=False,
                        limits={"max_connections_per_ip": 10000,
                                "max_connections": 10000,
                                "max_message_size": 1 << 24})
    # No --debug: one log line per transaction is enough.
    node.proc = Proc([binary("sluice-node"), "--config", node.conf],
                     node.log_path).start()
    port = node.ports["relay"]
    smtpkit.wait_until(lambda: node._port_open(port), 15, "node listening")
    n = messages if size <= 4096 else max(messages // 2, 1000)
    t0 = time.monotonic()
    r = subprocess.run(["smtp-source", "-d", "-s", str(sessions), "-l",
                        str(size), "-m", str(n), "-f", "bench@example.com",
                        "-t", "sink@example.net", "127.0.0.1:%d" % port],
                       capture_output=True, text=True)
    el = time.monotonic() - t0
    accepted = node.log().count("smtp accepted")
    node.kill()  # SIGTERM can hang in uplink_stop without a controller
    if r.returncode != 0:
        print("smtp-source failed: %s" % (r.stderr or r.stdout)[-500:])
    print("sessions=%-4d size=%-6d messages=%-6d seconds=%6.2f "
          "msgs/s=%7.0f  (node logged %d accepted)"
          % (sessions, size, n, el, n / el, accepted), flush=True)
    return n / el

fsync = os.path.join(build, "tests", "fsync_rate")
d = "/var/tmp/sluice-fsync-rate"
os.makedirs(d, exist_ok=True)
print(subprocess.run([fsync, d, "2"], capture_output=True,
                     text=True).stdout, flush=True)
def sink_case(sessions, size):
    """The load tool's own ceiling: smtp-source against Postfix's
    smtp-sink, which stores nothing."""
    port = smtpkit.free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody",
                             "127.0.0.1:%d" % port, "1000"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        smtpkit.wait_until(lambda: socket.create_connection(
            ("127.0.0.1", port), timeout=1).close() or True, 10, "smtp-sink")
        n = messages if size <= 4096 else max(messages // 2, 1000)
        t0 = time.monotonic()
        subprocess.run(["smtp-source", "-d", "-s", str(sessions), "-l",
                        str(size), "-m", str(n), "-f", "bench@example.com",
                        "-t", "sink@example.net", "127.0.0.1:%d" % port],
                       capture_output=True)
        el = time.monotonic() - t0
        print("sessions=%-4d size=%-6d messages=%-6d seconds=%6.2f "
              "msgs/s=%7.0f  (smtp-sink, no durability: the load tool's "
              "ceiling)" % (sessions, size, n, el, n / el), flush=True)
    finally:
        sink.kill()
        sink.wait()

for size in (1024, 20480):
    for sessions in (10, 100):
        run_case(sessions, size)
        sink_case(sessions, size)
PY
