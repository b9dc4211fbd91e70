#!/usr/bin/env python3
"""delivery events reach the controller between heartbeats (issue 21).

A node used to report its journaled events once per heartbeat: with a
1 s heartbeat at 1 500 msg/s the controller and PostgreSQL stored ~4 500
events in one burst a second, which took a core for ~100 ms and showed as
the node's accept-latency p99 (every slow 250 fell in that window), and a
trace lagged by up to a heartbeat.  Events now go out every
event_report_ms (default 100) while the controller answers.

With a 20 s heartbeat, a message's received and delivered events must be
stored while the controller's last_heartbeat_at for the node is still the
one from before the message (tried three times: a heartbeat that happens
to fall in the window proves nothing either way).  The old node, which
reports only with heartbeats, never passes.  A node with
event_report_ms = 0 still reports them, with its next heartbeat.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, wait_until  # noqa: E402


def last_heartbeat(f, node):
    return f.pg.psql("SELECT last_heartbeat_at FROM nodes WHERE name = '%s'"
                     % node).strip()


def stored(f, qid):
    out = f.pg.psql("SELECT kind FROM events WHERE queue_id = '%s'" % qid)
    return set(out.split())


def send_when_ready(f, node, tag):
    """The first message once the node runs the relay policy."""
    last = []

    def attempt():
        try:
            last[:] = [f.send(node, "app@client.test", ["r@example.test"],
                              tag)]
            return True
        except (AssertionError, OSError) as e:
            last[:] = [e]
            return False
    wait_until(attempt, 30, "node %s relaying (%s)" % (node, last))
    return last[0]


def main():
    with FleetOps("evstream", heartbeat_ms=20000) as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def run(f, up):
    f.relay_policy(up.port)
    f.start_relay("n1")
    f.start_relay("n2", extra="event_report_ms = 0\n")
    q = send_when_ready(f, "n1", "warm")
    wait_until(lambda: {"received", "delivered"} <= stored(f, q), 60,
               "n1's first events stored")

    between = None
    for i in range(3):
        hb = last_heartbeat(f, "n1")
        t0 = time.monotonic()
        q = f.send("n1", "app@client.test", ["r@example.test"], "m%d" % i)
        wait_until(lambda: {"received", "delivered"} <= stored(f, q), 60,
                   "n1's events for %s stored" % q)
        took = time.monotonic() - t0
        if last_heartbeat(f, "n1") == hb:
            between = (q, took)
            break
        print("attempt %d: a heartbeat fell in the window; again" % i)
    assert between is not None, \
        "n1's events were stored only with its heartbeats"
    print("events of %s stored %.2f s after the send, no heartbeat "
          "between" % between)

    # event_report_ms = 0: only with heartbeats, but they do arrive.
    q2 = send_when_ready(f, "n2", "n2")
    wait_until(lambda: {"received", "delivered"} <= stored(f, q2), 60,
               "n2's events stored with its heartbeat")
    for n in ("n1", "n2"):
        assert f.nodes[n].alive(), n


if __name__ == "__main__":
    main()
