#!/usr/bin/env python3
"""a hung controller changes nothing visible (issue 20).

Two controllers on one PostgreSQL, two nodes listing both (controller 0
first, so both nodes start on it).  Under steady mail:
  * controller 0 is stopped (SIGSTOP: its connections stay open) for 12 s:
    the largest gap between two heartbeats of a node, as PostgreSQL saw
    them, stays under heartbeat_ms + 500 ms, events keep reaching the
    store within two heartbeats, and no node_silent alert is raised;
  * after SIGCONT the nodes log that controller 0 answers again, and when
    controller 1 is stopped in turn, the nodes keep their cadence through
    controller 0: it is used again;
  * every message is delivered and has its received event stored.
The store's view comes from triggers the test adds: every heartbeat write
and every event insert is logged with clock_timestamp().

Controller 0 is stopped while its PostgreSQL session is inside an insert
of events (a test trigger makes each insert take 0.3 s, and the test waits
to see controller 0's session running one): its session finishes the
statement on its own, so the insert must commit without the controller.
Before the fix the insert sat in BEGIN ... COMMIT: the stopped controller
held the new rows' index entries, the controller the node raced the batch
to waited on them, and no heartbeat or event was stored for the whole stop
(a CI failure).
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, free_port, wait_until  # noqa: E402

HB_MS = 500
STOP_S = 12

TRIGGERS = """
CREATE TABLE t_hb (node text, at timestamptz);
CREATE FUNCTION t_hb() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.last_heartbeat_at IS DISTINCT FROM OLD.last_heartbeat_at THEN
    INSERT INTO t_hb VALUES (NEW.name, clock_timestamp());
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER t_hb AFTER UPDATE ON nodes FOR EACH ROW EXECUTE FUNCTION t_hb();
CREATE TABLE t_ev (node text, kind text, queue_id text, at timestamptz,
                   stored timestamptz);
CREATE FUNCTION t_ev() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO t_ev VALUES (NEW.node_name, NEW.kind, NEW.queue_id, NEW.at,
                           clock_timestamp());
  RETURN NEW;
END $$;
CREATE TRIGGER t_ev AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION t_ev();
CREATE TABLE t_slow (on_ boolean);
INSERT INTO t_slow VALUES (false);
CREATE FUNCTION t_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT on_ FROM t_slow) THEN PERFORM pg_sleep(0.3); END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER t_slow AFTER INSERT ON events FOR EACH STATEMENT
  EXECUTE FUNCTION t_slow();
"""


class Load(threading.Thread):
    """One message every 100 ms, alternating between the nodes."""

    def __init__(self, f, names):
        super().__init__(daemon=True)
        self.f, self.names = f, names
        self.stop = threading.Event()
        self.sent = []
        self.error = None

    def run(self):
        i = 0
        try:
            while not self.stop.is_set():
                n = self.names[i % len(self.names)]
                self.sent.append(self.f.send(n, "app@client.test",
                                             ["r%d@example.test" % i],
                                             "m%d" % i))
                i += 1
                self.stop.wait(0.1)
        except Exception as e:  # reported by the main thread
            self.error = e


def max_gaps(f, since, until):
    """{node: largest gap in seconds between stored heartbeats from since
    to until, the window's own ends counted as heartbeats: a node whose
    heartbeats stopped inside the window shows the whole silence}."""
    rows = f.pg.psql(
        "SELECT n.node, max(extract(epoch FROM g.at - g.prev)) FROM"
        " (SELECT DISTINCT node FROM t_hb) n CROSS JOIN LATERAL"
        " (SELECT at, lag(at) OVER (ORDER BY at) AS prev FROM"
        "  (SELECT at FROM t_hb WHERE node = n.node AND at BETWEEN"
        "   to_timestamp(%f) AND to_timestamp(%f)"
        "   UNION ALL SELECT to_timestamp(%f)"
        "   UNION ALL SELECT to_timestamp(%f)) w) g"
        " GROUP BY n.node ORDER BY n.node" % (since, until, since, until))
    return {ln.split("|")[0]: float(ln.split("|")[1] or 0)
            for ln in rows.splitlines()}


def max_event_lag(f, since, until):
    return float(f.pg.psql(
        "SELECT coalesce(max(extract(epoch FROM stored - at)), 0) FROM t_ev "
        "WHERE kind = 'received' AND at BETWEEN to_timestamp(%f) AND "
        "to_timestamp(%f)" % (since, until)))


def silent_alerts(f):
    return f.pg.psql("SELECT count(*) FROM alerts WHERE kind = 'node_silent'")


def hold(proc, seconds, what, arm=None):
    """SIGSTOP proc for `seconds` (the scenario's duration), then SIGCONT;
    returns the (start, end) wall-clock window."""
    t0 = time.time()
    os.kill(proc.p.pid, signal.SIGSTOP)
    if arm is not None:
        arm()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert all(n.alive() for n in proc_nodes), what
            time.sleep(0.2)
    finally:
        os.kill(proc.p.pid, signal.SIGCONT)
    return t0, time.time()


proc_nodes = []


def main():
    with FleetOps("hungctl", heartbeat_ms=HB_MS,
                  controller_extra="silent_after_ms = 1500\n"
                  "health_interval_ms = 100\n") as f:
        # each controller's PostgreSQL sessions are named ctl<index>
        base_conf = f.controller_conf

        def conf(node_url=None, admin_url=None, idx=0):
            path = base_conf(node_url, admin_url, idx)
            with open(path) as fh:
                text = fh.read()
            text = re.sub(r'^(database = ".*)"$',
                          r'\1 application_name=ctl%d"' % idx, text,
                          count=1, flags=re.M)
            with open(path, "w") as fh:
                fh.write(text)
            return path
        f.controller_conf = conf
        f.start_pg()
        c0 = f.start_controller()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up, c0)
        finally:
            up.stop()
    print("ok")


def connections(port):
    out = subprocess.run(["ss", "-Htn", "state", "established",
                          "( sport = :%d )" % port], capture_output=True,
                         text=True, check=True).stdout
    return len(out.splitlines())


def run(f, up, c0):
    f.pg.psql(TRIGGERS)
    v = f.relay_policy(up.port)
    # Controller 1 comes up once both nodes run on controller 0, so both
    # start out on controller 0 and must move away when it hangs.
    port1 = free_port()
    url1 = "tcp://127.0.0.1:%d" % port1
    for n in ("n1", "n2"):
        proc_nodes.append(f.start_relay(n, controllers=[f.node_url, url1]))
    for n in ("n1", "n2"):
        f.wait_node_version(n, v)
    c1 = f.start_controller(node_url=url1,
                            admin_url="ipc://%s/admin1.sock" % f.dir,
                            wait=False)
    wait_until(lambda: connections(port1) >= 2, 10,
               "both nodes connected to controller 1")
    load = Load(f, ["n1", "n2"])
    load.start()
    try:
        wait_until(lambda: len(load.sent) >= 5, 10, "load running")
        # -- controller 0, which both nodes use, hangs
        f.pg.psql("UPDATE t_slow SET on_ = true")
        wait_until(lambda: f.pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name"
            " = 'ctl0' AND state = 'active' AND query LIKE 'INSERT INTO "
            "events%'") != "0", 20, "controller 0 inside an events insert",
            interval=0.01)
        t0, t1 = hold(c0, STOP_S, "nodes alive while controller 0 hangs",
                      arm=lambda: f.pg.psql("UPDATE t_slow SET on_ = false"))
        gaps = max_gaps(f, t0, t1)
        lag = max_event_lag(f, t0, t1 - 1)
        print("controller 0 stopped %.1f s: max heartbeat gap %s, "
              "max event lag %.2f s" % (t1 - t0, gaps, lag))
        assert set(gaps) == {"n1", "n2"}, gaps
        for n, g in gaps.items():
            assert g < HB_MS / 1000 + 0.5, (n, g)
        assert lag < 2 * HB_MS / 1000 + 0.5, lag
        for n in ("n1", "n2"):
            wait_until(lambda: "answers again" in f.nodes[n].output(), 10,
                       "%s to see controller 0 answer again" % n)
        # -- now controller 1 hangs: controller 0 is used again
        t2, t3 = hold(c1, 3, "nodes alive while controller 1 hangs")
        gaps = max_gaps(f, t2, t3)
        print("controller 1 stopped %.1f s: max heartbeat gap %s"
              % (t3 - t2, gaps))
        for n, g in gaps.items():
            assert g < HB_MS / 1000 + 0.5, (n, g)
    finally:
        load.stop.set()
        load.join(30)
    assert load.error is None, load.error
    assert len(load.sent) > 100, len(load.sent)
    # every message delivered, with its received event stored
    wait_until(lambda: len(up.messages()) >= len(load.sent), 30,
               "all %d messages at the upstream" % len(load.sent))
    want = set(load.sent)
    wait_until(lambda: want <= set(f.pg.psql(
        "SELECT queue_id FROM events WHERE kind = 'received'").split()),
        15, "received events of every message")
    assert silent_alerts(f) == "0", f.alerts()
    for c in (c0, c1):
        assert c.alive(), c.output()


if __name__ == "__main__":
    main()
