#!/usr/bin/env python3
"""alerts raised and cleared by the controller (issue 5).

Heartbeats every 300 ms, silent_after_ms 900 (three heartbeats):
  * a node killed -> node_silent within three heartbeats (plus one health
    tick); restarted -> the alert is cleared, with a timestamp;
  * the upstream stopped -> the hop's circuit opens on the node that has
    mail for it -> hop_circuit_open and route_down (its only hop), and
    queue_backlog (threshold set to 1 by `limit set`); the upstream back
    -> the mail is delivered, every alert cleared;
  * every alert was raised exactly once: one row per episode;
  * the alert webhook received each raise and clear once, as JSON.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import (FleetOps, Upstream, WebhookSink,  # noqa: E402
                      assert_raised_once, wait_until)
from fleet import slack  # noqa: E402


HOOK = None   # the WebhookSink, made in main()


def main():
    global HOOK
    HOOK = WebhookSink()
    with FleetOps("alerts", heartbeat_ms=300,
                  controller_extra="silent_after_ms = 900\n"
                  "health_interval_ms = 100\n"
                  "alert_webhook = %s\n" % HOOK.url("/sluice/alerts")) as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    HOOK.stop()
    print("ok")


def run(f, up):
    v = f.relay_policy(up.port, {"retry_min_seconds": 1,
                                 "retry_max_seconds": 2,
                                 "alert_queue_backlog_messages": 1})
    f.start_relay("n1")
    f.start_relay("n2")
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)
    assert f.alerts(True) == [], f.alerts(True)

    # -- a node killed: silent within three heartbeats
    f.nodes["n1"].kill()
    t0 = time.monotonic()
    wait_until(lambda: f.open_alert("node_silent", "n1"), 5,
               "node_silent alert for n1")
    took = time.monotonic() - t0
    # 900 ms of silence, then a health tick and a poll (slack for load).
    assert took < slack(0.9 + 2.0), took
    st = f.ctl("status").stdout
    assert "node_silent" in st and "silent" in st, st
    assert f.node("n1")["state"] == "silent"
    f.restart_node("n1")
    wait_until(lambda: not f.open_alert("node_silent", "n1"), 10,
               "node_silent cleared")
    a = [x for x in f.alerts() if x["kind"] == "node_silent" and
         x["subject"] == "n1"]
    assert a and a[-1]["cleared_at"] is not None, a
    assert a[-1]["cleared_at"] >= a[-1]["raised_at"], a

    # -- the upstream goes away: circuit open, route down, backlog
    up.stop()
    for i in range(3):
        f.send("n2", "app@client.test", ["r%d@example.test" % i], "c%d" % i)
    wait_until(lambda: f.open_alert("hop_circuit_open", "n2/up"), 15,
               "hop_circuit_open alert")
    wait_until(lambda: f.open_alert("route_down", "n2/*"), 10,
               "route_down alert")
    wait_until(lambda: f.open_alert("queue_backlog", "n2"), 10,
               "queue_backlog alert")
    out = f.ctl("alerts").stdout
    assert "hop_circuit_open" in out and "n2/up" in out, out

    # -- it comes back: delivered, every alert cleared
    up.start()
    wait_until(lambda: len(up.messages()) == 3, 30, "mail delivered")
    wait_until(lambda: f.alerts(True) == [], 15, "every alert cleared")

    # -- raised once: episodes of one (kind, subject) never overlap, and
    # each raise and clear is one log line
    rows = f.alerts()
    seen = assert_raised_once(rows)
    for key in (("node_silent", "n1"), ("hop_circuit_open", "n2/up"),
                ("route_down", "n2/*"), ("queue_backlog", "n2")):
        assert key in seen, (key, rows)
    assert all(x["cleared_at"] is not None for x in rows), rows
    # the webhook saw every raise and every clear, once
    def hook_matches():
        got = sorted((p["event"], p["kind"], p["subject"])
                     for p in HOOK.posts)
        want = sorted([("raised", a["kind"], a["subject"]) for a in rows] +
                      [("cleared", a["kind"], a["subject"]) for a in rows])
        return got == want or (got, want)
    wait_until(lambda: hook_matches() is True, 5, "webhook posts")
    assert all(p["at"] > 0 and p["message"] for p in HOOK.posts), HOOK.posts
    log = f.controllers[0].output()
    assert log.count("alert: raised kind=node_silent subject=n1 ") == \
        len(seen[("node_silent", "n1")]), log


if __name__ == "__main__":
    main()
