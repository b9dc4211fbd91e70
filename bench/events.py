#!/usr/bin/env python3
"""events.py - the controller's delivery-record ingest (issue 17): nodes
with a backlog of journaled events after a controller outage, catching up
into PostgreSQL at full speed; then trace/log latency as the record grows
and the retention job's cost.

    bench/events.py [--build build] [--nodes 2] [--msgs 20000]
                    [--fill 0 | 1000000,10000000] [--busy-rate 3000]
                    [--pg-fast] [--keep (the directories, for the logs)]

1. The quick-start fleet (durable PostgreSQL: fsync on, as scripts/fleet.sh
   starts it; --pg-fast for the test suite's fsync=off), --nodes nodes
   relaying to a Postfix smtp-sink.
2. Outage: the controller is stopped (SIGTERM), each node takes --msgs 1 KB
   messages (smtp-source, 20 sessions, reuse) and delivers them; every
   message leaves a `received` and a `delivered` event in the node's
   journal (sluice_events_unacked).
3. Catch-up: the controller starts again; timed until every node's
   sluice_events_unacked is 0 and PostgreSQL holds every event.  Reported:
   events/s into PostgreSQL, controller and PostgreSQL CPU per 1000 events,
   and the catch-up time of a 10-minute outage of a fleet relaying
   --busy-rate msg/s (2 events each) computed from the measured rate
   (backlog / (ingest - new events per second)).
4. Idempotence: no (node, seq) is stored twice after the catch-up.
5. --fill N[,M...]: synthetic events are added with SQL (generate_series
   over the last 7 days, one partition per day, ~8 recipients domains,
   one message = received + delivered) up to each total N; at each size
   `sluicectl trace QID`, `sluicectl log` (newest 100),
   `sluicectl log --to RCPT`, `--status bounced` and `--status expired`
   (a kind the record does not hold) are timed (median of 5; 3 for the
   filtered logs).
6. Retention: `SELECT sluice_events_expire(3)` (drops the 4 oldest day
   partitions) timed, and the rows it removed.

Needs Postfix (smtp-source, smtp-sink), PostgreSQL 15 and the build.
Processes are stopped by PID.  Noisy machine: report medians.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "bench"))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))

from latency import free_port, wait_port  # noqa: E402
import fleetbench as fb  # noqa: E402

SRC = fb.SRC
SINK = fb.SINK


def psql(f, sql):
    return f.pg.psql(sql)


def timed(fn, reps=5):
    """Median ms of reps calls; inf when a call fails (sluicectl gives up
    after 5 s without an answer)."""
    v = []
    for _ in range(reps):
        t0 = time.monotonic()
        try:
            fn()
        except AssertionError:
            return float("inf")
        v.append((time.monotonic() - t0) * 1000)
    return statistics.median(v)


def fill(f, total, node_id):
    """Synthetic delivery record up to total rows: messages of the last 7
    days, a received and a delivered (1 in 50: bounced) event each."""
    have = int(psql(f, "SELECT count(*) FROM events"))
    if have >= total:
        return have
    psql(f, "SELECT sluice_events_partition((now() AT TIME ZONE 'UTC')"
            "::date - d) FROM generate_series(0, 7) d")
    n = (total - have) // 2
    base = int(psql(f, "SELECT coalesce(max(seq), 0) FROM events "
                       "WHERE node_id = %d" % node_id)) + 1
    step = 500000
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        psql(f, """
INSERT INTO events (node_id, node_name, seq, at, kind, queue_id,
    message_id, client, sender, recipients, recipient, size, hop, host,
    code, enhanced, reply, duration_ms, tls)
SELECT %(nid)d, 'synthetic', %(base)d + 2 * i + k,
    now() - make_interval(secs => (i %% 600000) * 1.0) +
        make_interval(secs => k * 0.002),
    CASE WHEN k = 0 THEN 'received' WHEN i %% 50 = 0 THEN 'bounced'
        ELSE 'delivered' END,
    'S' || lpad(to_hex(i), 12, '0'), '<' || i || '@app.example>',
    '10.0.' || (i %% 250) || '.' || (i %% 200), 'app' || (i %% 40) ||
        '@sender.example',
    ARRAY['user' || i || '@dom' || (i %% 8) || '.example'],
    CASE WHEN k = 0 THEN '' ELSE 'user' || i || '@dom' || (i %% 8) ||
        '.example' END,
    1024, CASE WHEN k = 0 THEN '' ELSE 'internal' END,
    CASE WHEN k = 0 THEN '' ELSE '127.0.0.1' END,
    CASE WHEN k = 0 THEN 0 WHEN i %% 50 = 0 THEN 550 ELSE 250 END,
    CASE WHEN k = 0 THEN '' ELSE '2.0.0' END,
    CASE WHEN k = 0 THEN '' ELSE 'ok' END, 3, false
FROM generate_series(%(lo)d, %(hi)d - 1) i, generate_series(0, 1) k
""" % {"nid": node_id, "base": base, "lo": lo, "hi": hi})
    psql(f, "ANALYZE events")
    return int(psql(f, "SELECT count(*) FROM events"))


def queries(f, a):
    ctl = lambda *args: f.ctl(*args)  # noqa: E731
    qid = psql(f, "SELECT queue_id FROM events WHERE kind = 'delivered' "
                  "ORDER BY at LIMIT 1")
    out = {}
    out["trace"] = timed(lambda: ctl("trace", qid))
    out["log"] = timed(lambda: ctl("log"))
    out["log --to"] = timed(lambda: ctl("log", "--to", "user7@dom7"), 3)
    out["log --status bounced"] = timed(
        lambda: ctl("log", "--status", "bounced"), 3)
    # a kind with no row: the worst case of a walk on `at` alone
    out["log --status expired"] = timed(
        lambda: ctl("log", "--status", "expired"), 3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--msgs", type=int, default=20000,
                    help="messages per node during the outage")
    ap.add_argument("--busy-rate", type=float, default=3000,
                    help="fleet msg/s for the 10-minute-outage estimate")
    ap.add_argument("--fill", default="",
                    help="comma-separated record sizes, e.g. 1000000,10000000")
    ap.add_argument("--pg-fast", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    a.node_before = ""
    tmp = tempfile.mkdtemp(prefix="sluice-eventsbench-")
    os.chmod(tmp, 0o755)
    sink_port = free_port()
    sink = subprocess.Popen([SINK, "-u", "nobody", "127.0.0.1:%d" % sink_port,
                             "1024"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    fl = None
    try:
        wait_port(sink_port)
        fl = fb.SluiceFleet(a, tmp, sink_port, nodes=a.nodes)
        f = fl.f
        names = list(fl.ports)
        if os.environ.get("BENCH_SQL"):  # e.g. an index to compare
            psql(f, os.environ["BENCH_SQL"])
        base_rows = int(psql(f, "SELECT count(*) FROM events"))
        # -- the outage
        f.controllers[0].stop()
        d0 = {n: fb.metrics(fl.metrics[n]).get("sluice_deliveries_total", 0)
              for n in names}
        t0 = time.monotonic()
        procs = [subprocess.Popen(
            [SRC, "-d", "-s", "20", "-l", "1024", "-m", str(a.msgs),
             "-f", "a@example.com", "-t", "b@example.net",
             "127.0.0.1:%d" % fl.ports[n]], stdout=subprocess.DEVNULL)
            for n in names]
        for p in procs:
            p.wait()
        for n in names:
            fb.wait_for(lambda: fb.metrics(fl.metrics[n]).get(
                "sluice_deliveries_total", 0) >= d0[n] + a.msgs, 600,
                "%s deliveries" % n)
        load_s = time.monotonic() - t0
        backlog = sum(int(fb.metrics(fl.metrics[n])["sluice_events_unacked"])
                      for n in names)
        print("outage: %d nodes x %d messages in %.1f s (%.0f msg/s), "
              "backlog %d events" % (len(names), a.msgs, load_s,
                                     len(names) * a.msgs / load_s, backlog),
              flush=True)
        # -- the catch-up
        c0 = fb.tree_ticks(fl.pg_pid)
        prof = None
        if os.environ.get("PERF_DATA"):  # a profile of the catch-up
            prof = subprocess.Popen(["perf", "record", "-a", "-g", "-o",
                                     os.environ["PERF_DATA"]],
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        t0 = time.monotonic()
        c = f.start_controller(wait=False)
        fl.ctl_pid = c.p.pid
        fb.wait_for(lambda: all(fb.metrics(fl.metrics[n]).get(
            "sluice_events_unacked", 1) == 0 for n in names), 1800,
            "every journal acked")
        el = time.monotonic() - t0
        if prof is not None:
            prof.send_signal(2)
            prof.wait()
        cpu = (fb.ticks(c.p.pid) + fb.tree_ticks(fl.pg_pid) - c0) \
            * 1000.0 / fb.HZ
        rows = int(psql(f, "SELECT count(*) FROM events")) - base_rows
        dup = int(psql(f, "SELECT count(*) FROM (SELECT node_id, seq FROM "
                          "events GROUP BY 1, 2 HAVING count(*) > 1) d"))
        # the ingest itself: first to last commit (received_at is the
        # inserting transaction's now())
        span = float(psql(f, "SELECT extract(epoch FROM max(received_at) -"
                             " min(received_at)) FROM events"))
        rate = backlog / span if span > 0 else float("nan")
        print("catch-up: %d events in %.2f s from the controller's start "
              "(%.2f s first to last commit): %.0f events/s into "
              "PostgreSQL; controller+PostgreSQL CPU %.1f ms per 1000 "
              "events; %d new rows, %d duplicate (node, seq)" % (
                  backlog, el, span, rate, cpu * 1000 / max(backlog, 1),
                  rows, dup), flush=True)
        per_s = 2 * a.busy_rate
        ten = 600 * per_s
        if rate > per_s:
            print("10-minute outage at %.0f msg/s: %d events, caught up in "
                  "%.0f s while the fleet keeps relaying (%.0f s idle)" % (
                      a.busy_rate, ten, ten / (rate - per_s), ten / rate))
        else:
            print("10-minute outage at %.0f msg/s: ingest %.0f events/s is "
                  "below the %.0f events/s the fleet makes: no catch-up "
                  "under load" % (a.busy_rate, rate, per_s))
        # -- the record grows
        nid = int(psql(f, "SELECT min(node_id) FROM events"))
        sizes = [int(s) for s in a.fill.split(",") if s]
        print("\n| events stored | trace ms | log ms | log --to ms | "
              "log --status bounced ms | log --status expired ms |\n"
              "|---|---|---|---|---|---|")
        for total in [0] + sizes:
            have = fill(f, total, nid) if total else \
                int(psql(f, "SELECT count(*) FROM events"))
            q = queries(f, a)
            print("| %d | %s |" % (have, " | ".join(
                "%.0f" % q[k] if q[k] != float("inf") else "> 5000"
                for k in ("trace", "log", "log --to",
                          "log --status bounced", "log --status expired"))),
                flush=True)
        if sizes:
            before = int(psql(f, "SELECT count(*) FROM events"))
            t0 = time.monotonic()
            dropped = psql(f, "SELECT sluice_events_expire(3)")
            ms = (time.monotonic() - t0) * 1000
            after = int(psql(f, "SELECT count(*) FROM events"))
            print("\nretention: sluice_events_expire(3) dropped %s day "
                  "partitions, %d rows, in %.0f ms" % (
                      dropped, before - after, ms))
        size = psql(f, "SELECT pg_size_pretty(pg_database_size('sluice'))")
        rows = int(psql(f, "SELECT count(*) FROM events"))
        ev_bytes = int(psql(f, "SELECT coalesce(sum(pg_total_relation_size("
                               "inhrelid)), 0) FROM pg_inherits WHERE "
                               "inhparent = 'events'::regclass"))
        print("database size: %s; events: %d rows in %d MB with their "
              "indexes, %.0f bytes per event" % (
                  size, rows, ev_bytes >> 20, ev_bytes / max(rows, 1)))
    finally:
        if fl is not None:
            fl.stop(keep=a.keep)  # processes always stopped
            if a.keep:
                print("kept", fl.f.dir, tmp)
        sink.terminate()
        sink.wait()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
