#!/usr/bin/env python3
"""fleet_reply_scope: each provider reply takes its documented path
(issue 10, docs/delivery.md "Reply scopes").

One node, a controller, PostgreSQL.  Each hop is tests/upstream/upstream.py
answering one stage with a provider's documented reply; every route is
"HOP fallback".  Per reply:

  S: 554 Message rejected: Sending paused for this account.   (SES, MAIL)
     account: fallback delivers, no bounce, alert hop_account
  S: 550 Unauthenticated senders not allowed                 (SendGrid, MAIL,
     the hop has no credentials) hop-config: fallback, no bounce, alert
     hop_config
  S: 421 Domain ... is not allowed to send: Free accounts ... (Mailgun, RCPT)
     account: fallback, alert
  S: 454 Throttling failure: Daily message quota exceeded.    (SES, MAIL)
     hop-throttle: fallback; the hop is paused for the provider's window
     (3600 s) on /metrics, in the heartbeat (`sluicectl status`, `node
     show`), in `route explain`; the next message does not touch it
  S: 554 5.2.0 STOREDRV...SubmissionQuotaExceededException    (M365, dot)
     hop-throttle, window 3600 s
  S: 432 4.3.2 Concurrent connections limit exceeded          (M365,
     greeting) hop-throttle at the session: not counted as a failure
  S: 550 5.4.5 Daily SMTP relay limit exceeded for user.      (Google, MAIL)
     hop-throttle
  S: 550 5.1.1 user unknown                                   (RCPT)
     recipient: bounced, one DSN to the sender, the hop not charged
The throttles are spread to the fleet: route explain says "PAUSED
fleet-wide (throttled on n1, ...)".  With a second node that never used
the hops, route explain names n1 as the only node with the hop-config
alert instead of saying "on every node", and n2 reports the pause.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import (FleetOps, Upstream, http_get, parse_prometheus,  # noqa
                      sample, wait_until)
from fleet import slack  # noqa: E402

HOPS = {
    # name: (stage=reply, scope, window)
    "sespause": ("mail=554 Message rejected: Sending paused for this "
                 "account.", "account", 0),
    "sgnoauth": ("mail=550 Unauthenticated senders not allowed",
                 "hop-config", 0),
    "mgsandbox": ("rcpt=421 Domain sandbox1.mailgun.org is not allowed to "
                  "send: Free accounts are for test purposes only.",
                  "account", 0),
    "sesquota": ("mail=454 Throttling failure: Daily message quota "
                 "exceeded.", "hop-throttle", 3600),
    "m365quota": ("data=554 5.2.0 STOREDRV.Submission.Exception:"
                  "SubmissionQuotaExceededException", "hop-throttle", 3600),
    "m365conn": ("greeting=432 4.3.2 Concurrent connections limit exceeded",
                 "hop-throttle", 60),
    "gwsrelay": ("mail=550 5.4.5 Daily SMTP relay limit exceeded for user.",
                 "hop-throttle", 3600),
    "unknown": ("rcpt=550 5.1.1 <x@unknown.test> user unknown",
                "recipient", 0),
}


def metrics(f):
    return parse_prometheus(http_get(f.metrics_ports["n1"]))


def hop_report(f, hop):
    n = f.ctl_json("node", "show", "n1")
    for h in n.get("metrics", n).get("hops", []):
        if h["name"] == hop:
            return h
    return None


def run(f, ups, fb):
    f.ctl("network", "allow", "127.0.0.0/8")
    f.ctl("hop", "add", "fallback", "--host", "127.0.0.1", "--port",
          str(fb.port), "--tls", "none")
    for name, up in ups.items():
        f.ctl("hop", "add", name, "--host", "127.0.0.1", "--port",
              str(up.port), "--tls", "none")
        f.ctl("route", "set", "%s.test" % name, name, "fallback")
    f.ctl("route", "set", "client.test", "fallback")  # DSNs come back here
    f.start_relay("n1", extra="circuit_failures = 5\n")
    f.wait_node_version("n1", f.policy_version())

    qids = {}
    for name in HOPS:
        qids[name] = f.send("n1", "app@client.test", ["x@%s.test" % name],
                            name)
    # Every hop-scoped reply fails over to the fallback in the same
    # attempt; the recipient-scoped one bounces.
    want = sorted("x@%s.test" % n for n, v in HOPS.items()
                  if v[1] != "recipient")
    wait_until(lambda: sorted(r for r in fb.rcpts()
                              if r != "app@client.test") == want, 20,
               "hop-scoped mail via the fallback")
    wait_until(lambda: "app@client.test" in fb.rcpts(), 20, "the DSN")
    log = f.nodes["n1"].output()
    dsns = [m for m in fb.messages() if m["from"] == ""]
    assert len(dsns) == 1 and "x@unknown.test" in dsns[0]["data"], dsns
    assert "5.1.1" in dsns[0]["data"], dsns[0]["data"]
    for name, (_, scope, _) in HOPS.items():
        if scope != "recipient":
            assert "%s delivery status=bounced" % qids[name] not in log, log
    assert "%s delivery status=bounced to=<x@unknown.test> hop=unknown" \
        % qids["unknown"] in log, log

    # Counted as the scope says.
    wait_until(lambda: sample(metrics(f), "sluice_hop_throttled",
                              hop="m365conn") == 1, 10, "m365conn paused")
    s = metrics(f)
    for name, (_, scope, window) in HOPS.items():
        failed = sample(s, "sluice_hop_failures_total", hop=name) or 0
        thr = sample(s, "sluice_hop_throttled", hop=name) or 0
        alert = sample(s, "sluice_hop_alert", hop=name, scope=scope)
        if scope == "hop-throttle":
            assert failed == 0 and thr == 1, (name, failed, thr)
            assert sample(s, "sluice_hop_throttle_window_seconds",
                          hop=name) == window, (name, s)
            assert sample(s, "sluice_hop_throttled_seconds",
                          hop=name) > window - slack(30), name
        elif scope in ("account", "hop-config"):
            assert failed == 1 and thr == 0 and alert == 1, (name, s)
        else:
            assert failed == 0 and thr == 0, (name, failed, thr)
            assert sample(s, "sluice_hop_failures_total",
                          hop=name) is not None, name
    assert re.search(r'hop alert hop=sgnoauth node=n1 scope=hop-config '
                     r'provider=sendgrid reply="550 Unauthenticated', log)
    assert re.search(r'hop throttled hop=sesquota node=n1 window=3600s '
                     r'provider=ses', log), log

    # The heartbeat carries it: node show, status, route explain, alerts.
    wait_until(lambda: (hop_report(f, "sesquota") or {}).get("throttled"),
               10, "sesquota throttled in the heartbeat")
    h = hop_report(f, "sesquota")
    assert h["throttle_window_s"] == 3600 and h["throttled_for_s"] > 3500, h
    h = hop_report(f, "sgnoauth")
    assert h["alert_scope"] == "hop-config" and \
        "Unauthenticated" in h["alert_reply"], h
    out = f.ctl("status").stdout
    assert "PAUSED" in out, out
    out = f.ctl("node", "show", "n1").stdout
    assert re.search(r"sesquota\s+closed\s+paused 3[0-9]{3}s", out), out
    # The controller spreads the pause to the fleet (fleet_pause tests
    # that with two nodes): route explain says so once n1 is told.
    wait_until(lambda: "fleet-wide" in f.ctl_json(
        "route", "explain", "x@sesquota.test")["groups"][0]["hops"][0]
        ["health"], 10, "the pause fleet-wide")
    ex = f.ctl_json("route", "explain", "x@sesquota.test")
    health = ex["groups"][0]["hops"][0]["health"]
    assert health == "PAUSED fleet-wide (throttled on n1, provider " \
        "window 3600s)", health
    ex = f.ctl_json("route", "explain", "x@sgnoauth.test")
    health = ex["groups"][0]["hops"][0]["health"]
    assert health == "ALERT hop-config on every node", health
    # A second node that never used the hops: for the alert (not spread)
    # not "every node" any more; the pause it gets from the controller.
    f.start_relay("n2")
    f.wait_node_version("n2", f.policy_version())
    wait_until(lambda: f.ctl_json("node", "show", "n2").get("metrics", {})
               .get("messages") is not None and "the only node" in
               f.ctl_json("route", "explain", "x@sgnoauth.test")["groups"]
               [0]["hops"][0]["health"], 10, "n2 reporting")
    ex = f.ctl_json("route", "explain", "x@sgnoauth.test")
    health = ex["groups"][0]["hops"][0]["health"]
    assert health == "ALERT hop-config on n1 (the only node that used " \
        "it)", health
    wait_until(lambda: f.ctl_json("route", "explain", "x@sesquota.test")
               ["groups"][0]["hops"][0]["nodes_fleet_paused"] == 2, 10,
               "n2 paused by the fleet")
    wait_until(lambda: f.open_alert("hop_config", "n1/sgnoauth"), 15,
               "hop_config alert")
    wait_until(lambda: f.open_alert("hop_account", "n1/sespause"), 15,
               "hop_account alert")
    assert f.open_alert("hop_account", "n1/mgsandbox")
    assert not f.open_alert("hop_config", "n1/unknown")

    # A paused hop is behind the fallback: the next message does not
    # touch it.
    conns = ups["sesquota"].connections()
    f.send("n1", "app@client.test", ["y@sesquota.test"], "again")
    wait_until(lambda: "y@sesquota.test" in fb.rcpts(), 10, "y via fb")
    assert ups["sesquota"].connections() == conns
    wait_until(lambda: f.spool("n1") == {}, 10, "queue empty")


def main():
    with FleetOps("reply_scope") as f:
        f.start()
        fb = Upstream(f.dir, "fallback").start()
        ups = {}
        try:
            for name, (reply, _, _) in HOPS.items():
                ups[name] = Upstream(f.dir, name, "--reply", reply).start()
            run(f, ups, fb)
        finally:
            fb.stop()
            for u in ups.values():
                u.stop()
    print("ok")


if __name__ == "__main__":
    main()
