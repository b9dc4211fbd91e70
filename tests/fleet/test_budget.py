#!/usr/bin/env python3
"""fleet-wide hop budgets (issue 5).

Hop "up" has rate 240/min and max-conn 4 for the whole fleet.  Two nodes
with deep queues share it: each gets about half, and their summed send
rate stays within 240/min (tolerance: +25% and the token buckets' initial
bursts).  One node stops: once it is silent the other's share grows to the
whole 240/min and its own rate roughly doubles.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, wait_until  # noqa: E402

RATE = 240          # per minute, fleet-wide
PER_S = RATE / 60.0
N = 80              # messages per node


def main():
    with FleetOps("budget", heartbeat_ms=300,
                  controller_extra="silent_after_ms = 900\n") as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def share_logged(f, name, rate):
    pat = r"hop up share max_conn=\d+ rate=%d/min" % rate
    return re.search(pat, f.nodes[name].output())


def delivered_in(up, seconds):
    """Messages the upstream received during the next `seconds` (a rate
    measurement, polled; not a synchronisation)."""
    start = len(up.messages())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
    return len(up.messages()) - start


def run(f, up):
    f.relay_policy(up.port)
    f.ctl("hop", "add", "up", "--host", "127.0.0.1", "--port",
          str(up.port), "--tls", "none", "--rate", str(RATE),
          "--max-conn", "4")
    v = f.policy_version()
    f.start_relay("n1")
    f.start_relay("n2")
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)
    # Two live nodes, equal (empty) queues: half each.
    wait_until(lambda: share_logged(f, "n1", RATE // 2) and
               share_logged(f, "n2", RATE // 2), 10, "half shares")

    for i in range(N):
        f.send("n1", "app@client.test", ["a%d@example.test" % i], "a%d" % i)
        f.send("n2", "app@client.test", ["b%d@example.test" % i], "b%d" % i)
    window = 6.0
    got = delivered_in(up, window)
    limit = PER_S * window * 1.25 + 4
    print("two nodes: %d in %.0fs (budget %.0f, limit %.0f)" % (
        got, window, PER_S * window, limit))
    assert got <= limit, (got, limit)
    assert got >= PER_S * window * 0.5, got

    # n2 goes away: after silent_after_ms n1 gets the whole budget.
    f.nodes["n2"].stop()
    wait_until(lambda: share_logged(f, "n1", RATE), 10, "n1's share grows")
    left = N - sum(1 for m in up.messages()
                   if m["rcpts"][0].startswith("a"))
    assert left > PER_S * 6, "n1 ran out of mail to measure with"
    window = 4.0
    got = delivered_in(up, window)
    print("one node: %d in %.0fs (budget %.0f)" % (got, window,
                                                    PER_S * window))
    assert got >= PER_S * window * 0.75, got
    assert got <= PER_S * window * 1.25 + 3, got
    # every message of n1 arrives, once
    wait_until(lambda: sum(1 for m in up.messages()
                           if m["rcpts"][0].startswith("a")) == N, 60,
               "n1's queue delivered")
    rcpts = up.rcpts()
    assert all(rcpts.count("a%d@example.test" % i) == 1 for i in range(N))


if __name__ == "__main__":
    main()
