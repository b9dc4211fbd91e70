#!/usr/bin/env python3
"""fleet_pause: a throttling reply pauses the hop fleet-wide (issue 10,
docs/delivery.md "Reply scopes").

Two nodes, a controller, PostgreSQL.  Route "primary fallback"; the
primary answers SES's "454 4.7.0 Throttling failure: Maximum sending
rate exceeded." to its first MAIL only (window 1 s, then the back-off).

  1. n1 sends a message: the primary throttles it, the fallback takes it;
     n1 pauses the primary (throttle_ms 8 s) and reports it in its
     heartbeat.
  2. The controller spreads the pause: n2 reports the primary as paused
     fleet-wide (by n1) without having used it; `status` and `route
     explain` say "fleet-wide".
  3. n2 sends a message: it goes to the fallback, the primary sees no new
     connection (on the old code n2 tried the primary first).
  4. When the window is over both nodes deliver to the primary again.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, wait_until  # noqa

EXTRA = "throttle_ms = 8000\n"


def hop_report(f, node, hop):
    n = f.ctl_json("node", "show", node)
    for h in n.get("metrics", n).get("hops", []):
        if h["name"] == hop:
            return h
    return None


def run(f, primary, fb):
    f.ctl("network", "allow", "127.0.0.0/8")
    f.ctl("hop", "add", "primary", "--host", "127.0.0.1", "--port",
          str(primary.port), "--tls", "none")
    f.ctl("hop", "add", "fallback", "--host", "127.0.0.1", "--port",
          str(fb.port), "--tls", "none")
    f.ctl("route", "set", "*", "primary", "fallback")
    f.start_relay("n1", extra=EXTRA)
    f.start_relay("n2", extra=EXTRA)
    v = f.policy_version()
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)

    # 1. n1 meets the throttle and fails over.
    f.send("n1", "app@client.test", ["a@dest.test"], "first")
    wait_until(lambda: "a@dest.test" in fb.rcpts(), 15, "a via fallback")
    t_throttle = time.monotonic()
    assert primary.messages() == [], primary.messages()
    log1 = f.nodes["n1"].output()
    assert re.search(r"hop throttled hop=primary node=n1", log1), log1

    # 2. The pause reaches n2 through the controller.
    wait_until(lambda: (hop_report(f, "n2", "primary") or {})
               .get("fleet_paused"), 6, "n2 told of the pause")
    h = hop_report(f, "n2", "primary")
    assert h["throttled"] and h["fleet_paused_by"] == "n1", h
    assert h["own_throttled_for_s"] == 0 and 0 < h["throttled_for_s"] <= 9, h
    assert h["delivered"] == 0 and h["failed"] == 0, h
    log2 = f.nodes["n2"].output()
    assert re.search(r"hop paused fleet-wide hop=primary node=n2 by=n1",
                     log2), log2
    ex = f.ctl_json("route", "explain", "x@dest.test")
    health = ex["groups"][0]["hops"][0]["health"]
    assert health == "PAUSED fleet-wide (throttled on n1, provider " \
        "window 1s)", health
    out = f.ctl("status").stdout
    assert re.search(r"hop primary PAUSED fleet-wide, \d+s left \(provider "
                     r"window 1s\): throttled on n1", out), out

    # 3. n2 does not try the paused hop.
    conns = primary.connections()
    f.send("n2", "app@client.test", ["b@dest.test"], "second")
    wait_until(lambda: "b@dest.test" in fb.rcpts(), 10, "b via fallback")
    assert time.monotonic() - t_throttle < 8, "too slow to judge the pause"
    assert primary.connections() == conns, primary.events()

    # 4. Both resume after the window.
    for n in ("n1", "n2"):
        wait_until(lambda: not (hop_report(f, n, "primary") or {})
                   .get("throttled"), 20, "%s pause over" % n)
    f.send("n1", "app@client.test", ["c@dest.test"], "third")
    f.send("n2", "app@client.test", ["d@dest.test"], "fourth")
    wait_until(lambda: primary.rcpts() == ["c@dest.test", "d@dest.test"],
               15, "c and d via the primary")
    assert "c@dest.test" not in fb.rcpts() and \
        "d@dest.test" not in fb.rcpts(), fb.rcpts()
    ex = f.ctl_json("route", "explain", "x@dest.test")
    health = ex["groups"][0]["hops"][0]["health"]
    assert "PAUSED" not in health, health


def main():
    with FleetOps("fleet_pause") as f:
        f.start()
        primary = Upstream(f.dir, "primary", "--throttle", "1").start()
        fb = Upstream(f.dir, "fallback").start()
        try:
            run(f, primary, fb)
        finally:
            primary.stop()
            fb.stop()
    print("ok")


if __name__ == "__main__":
    main()
