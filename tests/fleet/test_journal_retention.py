#!/usr/bin/env python3
"""acknowledged events come back after a database lost them (issue 20).

A failover to an asynchronous standby that lagged loses the last commits:
events the controller stored and acknowledged, which the node had dropped
from its journal.  Nodes now retain acknowledged events for a window
(journal_retention_s, default 15 minutes) and tell the controller how far
they were acknowledged; a controller whose database has less asks for the
rest again.  Simulated by deleting the newest event rows of a node:
  * tail lost, controller restarted: the rows come back, each once;
  * tail lost while new mail flows (the next batch would leave a hole):
    the gap is filled first, the node's sequence numbers stay contiguous;
  * a node with journal_retention_s = 0 keeps nothing: its lost rows stay
    lost (the window is what heals).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, wait_until  # noqa: E402


def seqs(f, node):
    out = f.pg.psql("SELECT seq FROM events WHERE node_name = '%s' "
                    "ORDER BY seq" % node)
    return [int(x) for x in out.split()]


def settled(f, node, qids):
    """Every message's received and delivered events are stored."""
    got = f.pg.psql("SELECT count(*) FROM events WHERE node_name = '%s' "
                    "AND kind IN ('received', 'delivered')" % node)
    return int(got) >= 2 * len(qids)


def lose_tail(f, node, n):
    """What a failover to a standby that lagged does to the newest rows."""
    top = max(seqs(f, node))
    f.pg.psql("DELETE FROM events WHERE node_name = '%s' AND seq > %d"
              % (node, top - n))
    return top


def send(f, node, count, tag):
    return [f.send(node, "app@client.test", ["r%d@example.test" % i],
                   "%s%d" % (tag, i)) for i in range(count)]


def main():
    with FleetOps("jret", heartbeat_ms=300) as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def run(f, up):
    v = f.relay_policy(up.port)
    f.start_relay("n1")
    f.start_relay("n2", extra="journal_retention_s = 0\n")
    for n in ("n1", "n2"):
        f.wait_node_version(n, v)

    # -- a lost tail comes back after the controller restarts
    q = send(f, "n1", 10, "a")
    wait_until(lambda: settled(f, "n1", q), 15, "n1's events stored")
    before = seqs(f, "n1")
    assert before == list(range(1, len(before) + 1)), before
    c0 = f.controllers[0]
    c0.kill()
    lose_tail(f, "n1", 8)
    assert len(seqs(f, "n1")) == len(before) - 8
    f.controllers.remove(c0)
    f.start_controller()
    wait_until(lambda: seqs(f, "n1") == before, 15,
               "the lost events of n1 back")
    assert "sending 8 retained events again" in f.nodes["n1"].output()

    # -- a lost tail while mail flows: the gap first, no hole
    top = lose_tail(f, "n1", 6)
    q += send(f, "n1", 5, "b")
    wait_until(lambda: settled(f, "n1", q), 15, "n1's new events stored")
    after = seqs(f, "n1")
    assert after == list(range(1, len(after) + 1)), after
    assert len(after) > top, (top, after)
    assert "this database has its events up to seq" in \
        f.controllers[-1].output()

    # -- nothing retained: nothing to send again
    q2 = send(f, "n2", 3, "c")
    wait_until(lambda: settled(f, "n2", q2), 15, "n2's events stored")
    have = seqs(f, "n2")
    lose_tail(f, "n2", 2)
    send(f, "n2", 1, "d")
    wait_until(lambda: len(seqs(f, "n2")) >= len(have) - 2 + 2, 15,
               "n2's new events stored")
    assert not set(have[-2:]) & set(seqs(f, "n2")), seqs(f, "n2")


if __name__ == "__main__":
    main()
