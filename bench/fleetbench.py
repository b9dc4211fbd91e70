#!/usr/bin/env python3
"""fleetbench.py - relay throughput of the fleet as users run it, beside Postfix
and the direct path, interleaved run by run (issue 17).

    bench/fleetbench.py [--build build] [--node-before PATH] [--msgs 3000]
                   [--reps 2] [--sizes 1024,20480] [--sessions 10,100]
                   [--reuse both|yes|no] [--pg-durable|--pg-fast]
                   [--only sluice,postfix,direct,sluice-old] [--json FILE]

Systems, all relaying to one Postfix smtp-sink (C, stores nothing):
  sluice      the quick-start fleet: PostgreSQL (durable, as scripts/fleet.sh
              starts it: fsync on; --pg-fast for the test suite's fsync=off),
              the controller, a node with the default delivery settings and
              heartbeat, policy: relay 127.0.0.0/8 to a hop on the sink;
  sluice-old  (with --node-before PATH) a second node of the same fleet
              running an older sluice-node binary: before/after in one run;
  postfix     a private Postfix at its defaults (bench/latency.py's);
  direct      smtp-source -> smtp-sink: the ceiling no relay beats.
Load: Postfix's smtp-source, --msgs messages per point, SESSIONS parallel
sessions, with -d (connection reuse: every session sends message after
message) or without (one message per connection).

A point ends when the sink has every message: for sluice when the node's
sluice_deliveries_total has grown by --msgs, for Postfix when its queue is
empty.  Points run interleaved: for each repetition, for each (size,
sessions, reuse), every system in shuffled order.  Reported per cell, the
median over repetitions of:
  msg/s         messages / (first connect -> last delivery)
  node ms/msg   the node process's CPU (utime+stime) per message
  fleet ms/msg  node + controller + PostgreSQL (every backend) CPU per
                message, counted until the node's delivery events are
                stored (sluice_events_unacked back to 0)
  Postfix ms/msg  the whole master process tree (with reaped children)
and the ratios sluice / Postfix and sluice / direct.

Needs Postfix (apt-get install postfix: smtp-source, smtp-sink, master; the
system's postfix service is not used), PostgreSQL 15 and the build.
Processes are stopped by PID.  Numbers from a machine doing other work are
noisy: compare within one run (that is why everything is interleaved).
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "bench"))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))

import latency  # noqa: E402  (Postfix, free_port, wait_port)
from latency import Postfix, free_port, wait_port  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
SRC = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


def ticks(pid, children=True):
    """utime+stime of pid (with reaped children's when children)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    t = int(v[11]) + int(v[12])
    if children:
        t += int(v[13]) + int(v[14])
    return t


def tree_ticks(pid):
    """pid and every descendant (live), with reaped children."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    t, todo = 0, [pid]
    while todo:
        p = todo.pop()
        t += ticks(p)
        todo += kids.get(p, [])
    return t


def metrics(port):
    out = {}
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line and line[0] != "#":
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
    return out


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise SystemExit("timed out waiting for %s" % what)


def durable_pg(base):
    """The harness's PostgreSQL started the way scripts/fleet.sh starts it:
    PostgreSQL's own defaults (fsync, synchronous_commit, full pages)."""
    from pg import PG_BIN, PgServer

    class DurablePg(PgServer):
        def start(self):
            if self.as_root:
                import pwd
                pw = pwd.getpwnam("postgres")
                os.chmod(self.base, 0o755)
                os.chown(self.base, pw.pw_uid, pw.pw_gid)
            if not os.path.exists(self.data):
                self._run([PG_BIN + "/initdb", "-D", self.data, "-U",
                           "sluice", "--auth=trust", "-E", "UTF8",
                           "--locale=C"], stdout=subprocess.DEVNULL)
            self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-w", "-s",
                       "-l", os.path.join(self.base, "log"), "-o",
                       "-k %s -p %d -h 127.0.0.1 -c max_connections=200 %s"
                       % (self.sock, self.port,
                          os.environ.get("BENCH_PG_OPTS", "")), "start"])
            return self

    os.makedirs(base, exist_ok=True)
    return DurablePg(base=base)


def pg_pid(pg):
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        return int(f.readline())


class SluiceFleet:
    def __init__(self, a, tmp, sink_port, nodes=1):
        os.environ["SLUICE_BUILD"] = os.path.abspath(a.build)
        from fleet import Fleet, Proc, binary
        pg = None if a.pg_fast else durable_pg(os.path.join(tmp, "pg"))
        self.f = f = Fleet("bench", heartbeat_ms=1000, pg=pg)
        f.start()
        f.ctl("network", "allow", "127.0.0.0/8")
        f.ctl("hop", "add", "internal", "--host", "127.0.0.1", "--port",
              str(sink_port), "--tls", "none")
        f.ctl("route", "set", "*", "internal")
        f.ctl("limit", "set", "max_connections_per_ip", "10000")
        f.ctl("limit", "set", "max_connections", "10000")
        version = f.policy_version()
        self.ports, self.metrics = {}, {}
        nodes = [("sluice" + ("%d" % i if i else ""), binary("sluice-node"))
                 for i in range(nodes)]
        if a.node_before:
            nodes.append(("sluice-old", os.path.abspath(a.node_before)))
        for name, path in nodes:
            token = f.add_node(name)
            port, mport = free_port(), free_port()
            conf = f.node_conf(name, token,
                               "hostname = %s.bench\n"
                               "listen = 127.0.0.1:%d relay\n"
                               "metrics_listen = 127.0.0.1:%d\n"
                               % (name, port, mport))
            f.nodes[name] = Proc([path, "--config", conf],
                                 os.path.join(f.dir, name, "node.log")).start()
            self.ports[name], self.metrics[name] = port, mport
        for name, _ in nodes:
            f.wait_node_version(name, version, timeout=30)
            wait_port(self.ports[name])
        self.ctl_pid = f.controllers[0].p.pid
        self.pg_pid = pg_pid(f.pg)

    def fleet_ticks(self, name):
        return (ticks(self.f.nodes[name].p.pid) + ticks(self.ctl_pid) +
                tree_ticks(self.pg_pid))

    def stop(self, keep=False):
        self.f.stop()
        if not keep:
            shutil.rmtree(self.f.dir, ignore_errors=True)


def source(port, size, sess, msgs, reuse):
    argv = [SRC, "-s", str(sess), "-l", str(size), "-m", str(msgs),
            "-f", "a@example.com", "-t", "b@example.net"]
    if reuse:
        argv.append("-d")
    subprocess.run(argv + ["127.0.0.1:%d" % port], check=True,
                   stdout=subprocess.DEVNULL)


def run_sluice(fl, name, size, sess, reuse, msgs):
    mport = fl.metrics[name]
    pid = fl.f.nodes[name].p.pid
    d0 = metrics(mport).get("sluice_deliveries_total", 0)
    n0, f0 = ticks(pid), fl.fleet_ticks(name)
    t0 = time.monotonic()
    source(fl.ports[name], size, sess, msgs, reuse)
    wait_for(lambda: metrics(mport).get("sluice_deliveries_total", 0)
             >= d0 + msgs, 300, "%s deliveries" % name)
    t1 = time.monotonic()
    n1 = ticks(pid)
    wait_for(lambda: metrics(mport).get("sluice_events_unacked", 1) == 0,
             300, "%s events stored" % name)
    f1 = fl.fleet_ticks(name)
    return {"rate": msgs / (t1 - t0),
            "cpu": (n1 - n0) * 1000.0 / HZ / msgs,
            "fleet_cpu": (f1 - f0) * 1000.0 / HZ / msgs}


def pf_queued(pf):
    n = 0
    for d in ("incoming", "active", "deferred", "maildrop"):
        for _, _, files in os.walk(os.path.join(pf.q, d)):
            n += len(files)
    return n


def run_postfix(pf, size, sess, reuse, msgs):
    c0 = tree_ticks(pf.p.pid)
    t0 = time.monotonic()
    source(pf.port, size, sess, msgs, reuse)
    wait_for(lambda: pf_queued(pf) == 0, 600, "postfix queue empty")
    t1 = time.monotonic()
    c1 = tree_ticks(pf.p.pid)
    return {"rate": msgs / (t1 - t0),
            "cpu": (c1 - c0) * 1000.0 / HZ / msgs}


def run_direct(sink_port, size, sess, reuse, msgs):
    t0 = time.monotonic()
    source(sink_port, size, sess, msgs, reuse)
    return {"rate": msgs / (time.monotonic() - t0)}


def med(rows, k):
    v = [r[k] for r in rows if k in r]
    return statistics.median(v) if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--node-before", default="")
    ap.add_argument("--msgs", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--sizes", default="1024,20480")
    ap.add_argument("--sessions", default="10,100")
    ap.add_argument("--reuse", default="both", choices=("both", "yes", "no"))
    ap.add_argument("--pg-fast", action="store_true",
                    help="PostgreSQL with fsync=off (the test suite's)")
    ap.add_argument("--only", default="",
                    help="comma-separated systems to run")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sluice-fleetbench-")
    os.chmod(tmp, 0o755)
    sink_port = free_port()
    sink = subprocess.Popen([SINK, "-u", "nobody", "127.0.0.1:%d" % sink_port,
                             "1024"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    fl = pf = None
    only = set(a.only.split(",")) if a.only else None
    try:
        wait_port(sink_port)
        systems = []
        if only is None or only & {"sluice", "sluice-old"}:
            fl = SluiceFleet(a, tmp, sink_port)
            systems += [n for n in fl.ports if only is None or n in only]
        if only is None or "postfix" in only:
            pf = Postfix(tmp, sink_port)
            pf.start()
            systems.append("postfix")
        if only is None or "direct" in only:
            systems.append("direct")
        sizes = [int(s) for s in a.sizes.split(",")]
        sessions = [int(s) for s in a.sessions.split(",")]
        reuses = {"both": [False, True], "yes": [True], "no": [False]}[a.reuse]
        cells = [(z, s, r) for z in sizes for s in sessions for r in reuses]
        res = {}
        for rep in range(a.reps):
            for cell in cells:
                order = list(systems)
                random.shuffle(order)
                for name in order:
                    z, s, r = cell
                    if name == "postfix":
                        v = run_postfix(pf, z, s, r, a.msgs)
                    elif name == "direct":
                        v = run_direct(sink_port, z, s, r, a.msgs)
                    else:
                        v = run_sluice(fl, name, z, s, r, a.msgs)
                    res.setdefault((name,) + cell, []).append(v)
                    print("rep %d %-10s %6d B %4d sess reuse=%-3s %7.0f msg/s"
                          "  cpu %s ms/msg%s" % (
                              rep, name, z, s, "yes" if r else "no",
                              v["rate"],
                              "%.3f" % v["cpu"] if "cpu" in v else "-",
                              "  fleet %.3f" % v["fleet_cpu"]
                              if "fleet_cpu" in v else ""), flush=True)
        print()
        hdr = ("| size | sessions | reuse | system | msg/s | node CPU ms/msg |"
               " fleet CPU ms/msg | ÷ Postfix | ÷ direct |")
        print(hdr)
        print("|" + "---|" * 9)
        out = {}
        for cell in cells:
            z, s, r = cell
            pfr = med(res.get(("postfix",) + cell, []), "rate")
            dr = med(res.get(("direct",) + cell, []), "rate")
            for name in systems:
                rows = res[(name,) + cell]
                rate = med(rows, "rate")
                cpu, fcpu = med(rows, "cpu"), med(rows, "fleet_cpu")
                out["%s/%d/%d/%s" % (name, z, s, "reuse" if r else "new")] = {
                    "rate": rate, "cpu": cpu, "fleet_cpu": fcpu,
                    "runs": rows}
                print("| %s | %d | %s | %s | %.0f | %s | %s | %s | %s |" % (
                    "%d KB" % (z // 1024), s, "yes" if r else "no", name,
                    rate, "%.3f" % cpu if cpu == cpu else "-",
                    "%.3f" % fcpu if fcpu == fcpu else "-",
                    "%.1f×" % (rate / pfr) if pfr == pfr and
                    name != "postfix" else "-",
                    "%.0f %%" % (100 * rate / dr) if dr == dr else "-"))
        # Issue 17's measure: a large message's node CPU against a small
        # one's, pairing the two sizes rep by rep (run minutes apart at
        # most), so the host's drift between reps cancels out.
        if len(sizes) > 1:
            small, big = min(sizes), max(sizes)
            print()
            for name in systems:
                if name in ("postfix", "direct"):
                    continue
                for s in sessions:
                    for r in reuses:
                        lo = res[(name, small, s, r)]
                        hi = res[(name, big, s, r)]
                        pairs = [h["cpu"] / l["cpu"]
                                 for l, h in zip(lo, hi) if l["cpu"] > 0]
                        if not pairs:
                            continue
                        out["%s/cpu_ratio/%d/%s" % (
                            name, s, "reuse" if r else "new")] = pairs
                        print("%s %d sessions reuse=%s: node CPU %d KB ÷ "
                              "%d KB, median of reps %.2f× (%s)" % (
                                  name, s, "yes" if r else "no",
                                  big // 1024, small // 1024,
                                  statistics.median(pairs),
                                  " ".join("%.2f" % x for x in pairs)))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        if pf is not None:
            pf.stop()
        if fl is not None:
            fl.stop()
        sink.terminate()
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    latency  # imported for its Postfix instance and helpers
    main()
