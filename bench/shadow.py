#!/usr/bin/env python3
"""shadow.py - what shadow redundancy costs (issue 13, docs/redundancy.md):
end-to-end throughput and accept latency with `redundancy = peer` against
`off`, 1 KB and 20 KB, 10 and 100 sessions, the two interleaved.

    bench/shadow.py [--build build] [--msgs 2000] [--reps 2]
                    [--lat-msgs 1000]

Per point, two fresh nodes on loopback (no controller: the policy comes
from a cache file, the peer from `shadow_peer`): A takes the load and
delivers to Postfix's smtp-sink; B is A's shadow peer (`shadow_listen`).
Both run in both modes (B idles when redundancy is off), so the machine
does the same work except what redundancy adds: the copy, B's group
commit, the release.

* throughput: smtp-source (SESSIONS, SIZE, MSGS) into A; from the first
  connection until A's sluice_deliveries_total reaches MSGS;
* CPU: utime+stime of A and B per message during the throughput run
  (less sensitive to the machine's other load than the rates);
* accept latency: a closed-loop asyncio client, SESSIONS sessions each
  pipelining MAIL/RCPT/DATA and the body; final "." sent -> 250 read.

The machine is shared: report the ratio on/off of each interleaved pair,
not the absolute numbers.  Processes are stopped by PID.
"""
import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = "/usr/sbin/smtp-source"
SINK = "/usr/sbin/smtp-sink"


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(p, proc=None):
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", p), 0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise SystemExit("process died before listening")
            time.sleep(0.025)
    raise SystemExit("port %d not up" % p)


def metric(mport, name):
    try:
        with urllib.request.urlopen(
                "http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
            for ln in r.read().decode().splitlines():
                f = ln.split()
                if len(f) == 2 and f[0] == name:
                    return float(f[1])
    except OSError:
        pass
    return None


class Pair:
    """Nodes A (primary) and B (its shadow peer), fresh spools."""

    def __init__(self, args, tmp, sink_port, redundancy):
        self.args, self.tmp = args, tmp
        self.procs = []
        self.a_port, self.a_metrics = port(), port()
        b_shadow = port()
        pol = os.path.join(args.build, "tests", "sluice-dlvpolicy")
        node = os.path.join(args.build, "node", "sluice-node")
        for name in ("b", "a"):
            d = os.path.join(tmp, name)
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(os.path.join(d, "spool"))
            cmd = [pol, os.path.join(d, "spool", "policy.cache"),
                   "--network", "127.0.0.0/8", "--hop",
                   "sink:host=127.0.0.1,port=%d,max_conn=20" % sink_port,
                   "--route", "*=sink",
                   "--limit", "max_connections_per_ip=1000"]
            if redundancy:
                cmd += ["--limit", "redundancy=1"]
            subprocess.run(cmd, check=True, capture_output=True)
            conf = os.path.join(d, "node.conf")
            lport = self.a_port if name == "a" else port()
            with open(conf, "w") as f:
                f.write("name = bench-%s\ntoken = bench\n"
                        "controller = tcp://127.0.0.1:1\nspool = %s\n"
                        "hostname = %s.bench\nheartbeat_ms = 60000\n"
                        "listen = 127.0.0.1:%d relay\n"
                        "delivery_tick_ms = 20\n" % (
                            name, os.path.join(d, "spool"), name, lport))
                if name == "a":
                    f.write("metrics_listen = 127.0.0.1:%d\n"
                            "shadow_peer = 127.0.0.1:%d\n" % (
                                self.a_metrics, b_shadow))
                else:
                    f.write("shadow_listen = 127.0.0.1:%d\n" % b_shadow)
            log = open(os.path.join(d, "node.log"), "wb")
            p = subprocess.Popen([node, "--config", conf], stdout=log,
                                 stderr=subprocess.STDOUT)
            self.procs.append(p)
            wait_port(lport, p)
            if name == "b":
                wait_port(b_shadow, p)
        self.log = os.path.join(tmp, "a", "node.log")

    def unprotected(self):
        with open(self.log, errors="replace") as f:
            return sum("without a shadow copy" in ln for ln in f)

    def stop(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cpu_s(pids):
    """utime+stime of the processes, seconds."""
    hz = os.sysconf("SC_CLK_TCK")
    t = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        t += int(v[11]) + int(v[12])
    return t / hz


def throughput(pair, size, sess, msgs):
    pids = [p.pid for p in pair.procs]
    c0 = cpu_s(pids)
    t0 = time.monotonic()
    subprocess.run([SRC, "-s", str(sess), "-l", str(size), "-m", str(msgs),
                    "-f", "a@example.com", "-t", "b@example.net",
                    "127.0.0.1:%d" % pair.a_port], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while (metric(pair.a_metrics, "sluice_deliveries_total") or 0) < msgs:
        if pair.procs[1].poll() is not None:
            raise SystemExit("node A died")
        time.sleep(0.01)
    rate = msgs / (time.monotonic() - t0)
    return rate, (cpu_s(pids) - c0) * 1000 / msgs


async def session(port, size, n, lat):
    r, w = await asyncio.open_connection("127.0.0.1", port)

    async def reply():
        while True:
            ln = await r.readline()
            if not ln:
                raise ConnectionError("closed")
            if ln[3:4] != b"-":
                return int(ln[:3])

    await reply()
    w.write(b"EHLO bench.test\r\n")
    await w.drain()
    await reply()
    body = (b"Subject: bench\r\n\r\n" + b"x" * 76 + b"\r\n") * \
        max(1, size // 78)
    for _ in range(n):
        w.write(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
                b"DATA\r\n")
        await w.drain()
        for _ in range(3):
            await reply()
        w.write(body + b".\r\n")
        await w.drain()
        t = time.monotonic()
        code = await reply()
        if code != 250:
            raise SystemExit("DATA answered %d" % code)
        lat.append(time.monotonic() - t)
    w.write(b"QUIT\r\n")
    await w.drain()
    w.close()


def latency(pair, size, sess, total):
    lat = []
    per = max(1, total // sess)

    async def run():
        await asyncio.gather(*[session(pair.a_port, size, per, lat)
                               for _ in range(sess)])
    asyncio.run(run())
    lat.sort()
    return (lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--msgs", type=int, default=2000)
    ap.add_argument("--lat-msgs", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-shadow-bench.")
    sink_port = port()
    sink = subprocess.Popen([SINK, "-u", "nobody", "-c",
                             "127.0.0.1:%d" % sink_port, "1024"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    rows = {}
    try:
        wait_port(sink_port)
        for rep in range(args.reps):
            for size in (1024, 20480):
                for sess in (10, 100):
                    for mode in (("off", "peer") if rep % 2 == 0
                                 else ("peer", "off")):
                        pair = Pair(args, tmp, sink_port, mode == "peer")
                        try:
                            tp, cpu = throughput(pair, size, sess,
                                                 args.msgs)
                            p50, p99 = latency(pair, size, sess,
                                               args.lat_msgs)
                            unp = pair.unprotected()
                        finally:
                            pair.stop()
                        rows.setdefault((size, sess), []).append(
                            (rep, mode, tp, p50, p99, unp, cpu))
                        print("rep %d %5d B %3d sess %-4s %7.0f msg/s  "
                              "cpu %.3f ms/msg  "
                              "accept p50 %6.2f ms p99 %6.2f ms%s" % (
                                  rep, size, sess, mode, tp, cpu, p50, p99,
                                  "  (%d unprotected!)" % unp if unp
                                  else ""), flush=True)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nsize   sess | thr on/off (per rep)      | p50 on/off | "
          "p99 on/off | CPU ms/msg (A+B) off -> on")
    for (size, sess), v in sorted(rows.items()):
        ratios, l50, l99, cpus = [], [], [], []
        for rep in range(args.reps):
            on = [x for x in v if x[0] == rep and x[1] == "peer"][0]
            off = [x for x in v if x[0] == rep and x[1] == "off"][0]
            ratios.append(on[2] / off[2])
            l50.append(on[3] / off[3])
            l99.append(on[4] / off[4])
            cpus.append("%.2f->%.2f" % (off[6], on[6]))
        print("%5d  %4d | %-25s | %-10s | %-10s | %s" % (
            size, sess, " ".join("%.2f" % r for r in ratios),
            " ".join("%.1f" % r for r in l50),
            " ".join("%.1f" % r for r in l99), " ".join(cpus)))


if __name__ == "__main__":
    sys.exit(main())
