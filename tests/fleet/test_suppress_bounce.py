#!/usr/bin/env python3
"""fleet_suppress_bounce: the suppression list's "accept and bounce" mode
(issue 16).  A controller, one relay node, one test upstream.

  mode      `suppress mode` prints refuse (the default); `suppress mode
            bounce` sets it (a new policy version); a mode that is neither
            is one line of error and changes nothing.
  bounce    a message to two suppressed recipients (a bounce and a manual
            entry) and one other is accepted whole (250 at every RCPT);
            the other is delivered, the suppressed never reach the hop;
            the sender gets one DSN naming the suppression for each (5.1.1
            for the bounce, 5.7.1 for the manual); trace shows bounced.
  files     `policy export` writes suppression_mode: bounce; applying it is
            no change; a file without the key keeps the mode; a file with
            suppression_mode: refuse shows in diff and puts the node back
            to 550 at RCPT; a bad value is refused with its line.
"""
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, wait_until  # noqa: E402


def rcpt_codes(f, rcpts):
    s = smtplib.SMTP("127.0.0.1", f.smtp_ports["n1"], timeout=30)
    try:
        s.ehlo("client.test")
        s.mail("app@client.test")
        out = [s.rcpt(r) for r in rcpts]
        s.rset()
        s.quit()
    finally:
        s.close()
    return out


def one_line_error(r, what):
    assert r.returncode == 1, (what, r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("sluicectl: "),\
        (what, r.stderr)


def main():
    with FleetOps("supbounce") as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def run(f, up):
    f.relay_policy(up.port)
    f.ctl("suppress", "add", "gone@up.test", "--reason", "bounce")
    f.ctl("suppress", "add", "angry@up.test")
    # -- mode
    assert f.ctl("suppress", "mode").stdout == "refuse\n"
    v = f.policy_version()
    one_line_error(f.ctl("suppress", "mode", "drop", check=False), "bad")
    assert f.policy_version() == v
    f.ctl("suppress", "mode", "bounce")
    assert f.policy_version() == v + 1
    assert f.ctl("suppress", "mode").stdout == "bounce\n"
    assert f.ctl_json("suppress", "list")["mode"] == "bounce"
    f.start_relay("n1")
    f.wait_node_version("n1", f.policy_version())

    # -- bounce: accepted, never sent, a DSN per suppressed recipient
    assert [c for c, _ in rcpt_codes(
        f, ["Gone@up.test", "angry@up.test"])] == [250, 250]
    qid = f.send("n1", "app@client.test",
                 ["gone@up.test", "ok@up.test", "angry@up.test"], "sup")
    dsn = wait_until(lambda: next((m for m in up.messages()
                                   if m["from"] == ""), None), 20, "DSN")
    assert dsn["rcpts"] == ["app@client.test"], dsn
    body = dsn["data"]
    for needle in ("Final-Recipient: rfc822; gone@up.test",
                   "Final-Recipient: rfc822; angry@up.test",
                   "Status: 5.1.1", "Status: 5.7.1",
                   "recipient address suppressed (bounce)",
                   "recipient address suppressed (manual)",
                   "Subject: sup"):
        assert needle in body, (needle, body)
    assert "ok@up.test" not in body.split("Reporting-MTA")[1], body
    wait_until(lambda: any("ok@up.test" in m["rcpts"]
                           for m in up.messages()), 20, "ok delivered")
    ev = wait_until(lambda: (lambda e: e if len(
        [x for x in e if x["kind"] in ("bounced", "delivered")]) == 3
        else None)(f.ctl_json("trace", qid)["events"]), 20, "trace")
    got = {e["recipient"]: (e["kind"], e["reply"]) for e in ev
           if e["kind"] in ("bounced", "delivered")}
    assert got["ok@up.test"][0] == "delivered", got
    assert got["gone@up.test"][0] == "bounced" and \
        "suppressed (bounce)" in got["gone@up.test"][1], got
    assert got["angry@up.test"][0] == "bounced", got
    wait_until(lambda: f.spool("n1") == {}, 20, "spool empty")
    # never sent to the hop
    for m in up.messages():
        assert "gone@up.test" not in m["rcpts"], m
        assert "angry@up.test" not in m["rcpts"], m

    # -- files
    exp = f.ctl("policy", "export").stdout
    assert "\nsuppression_mode: bounce\n" in exp, exp
    path = os.path.join(f.dir, "p.yaml")
    open(path, "w").write(exp)
    assert "no changes" in f.ctl("policy", "apply", "-f", path).stdout
    legacy = os.path.join(f.dir, "legacy.yaml")
    open(legacy, "w").write(exp.replace("suppression_mode: bounce\n", ""))
    assert "no changes" in f.ctl("policy", "apply", "-f", legacy).stdout
    assert f.ctl("suppress", "mode").stdout == "bounce\n"
    bad = os.path.join(f.dir, "bad.yaml")
    open(bad, "w").write(exp.replace("suppression_mode: bounce",
                                     "suppression_mode: maybe"))
    r = f.ctl("policy", "apply", "-f", bad, check=False)
    one_line_error(r, "bad mode in file")
    assert "bad.yaml:" in r.stderr and "suppression_mode" in r.stderr, \
        r.stderr
    refuse = os.path.join(f.dir, "refuse.yaml")
    open(refuse, "w").write(exp.replace("suppression_mode: bounce",
                                        "suppression_mode: refuse"))
    d = f.ctl_json("policy", "diff", "-f", refuse)["changes"]
    assert [(c["op"], c["kind"], c["name"], c["detail"]) for c in d] == [
        ("~", "setting", "suppression_mode", "bounce -> refuse")], d
    f.ctl("policy", "apply", "-f", refuse)
    assert f.ctl("suppress", "mode").stdout == "refuse\n"
    f.wait_node_version("n1", f.policy_version())
    (c1, m1), (c2, _) = rcpt_codes(f, ["gone@up.test", "ok@up.test"])
    assert c1 == 550 and b"5.1.1" in m1 and b"suppressed" in m1, (c1, m1)
    assert c2 == 250


if __name__ == "__main__":
    main()
