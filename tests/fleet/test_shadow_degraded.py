#!/usr/bin/env python3
"""Shadow redundancy's degraded modes and policy (issue 13).

* redundancy = peer with no other node: no_peer = accept takes the mail
  anyway, counts it, and the controller raises shadow_degraded; no_peer =
  defer answers 451 4.3.0 and the message is not queued (its record says
  "withdrawn").
* A second node comes up: it becomes the peer, mail is copied, the alert
  clears, and the copy is in n2's shadow spool until n1 delivers.
* A peer that hangs (SIGSTOP): the session waits redundancy_peer_timeout_ms,
  then falls back (451 under defer), well before the controller would
  notice the silence.
* Per listener role: redundancy_relay = off needs no peer.
* The policy round-trips: `limit set redundancy peer`, export shows
  "redundancy: peer", apply of the exported file changes nothing; a bad
  value is a one-line error.
"""
import os
import signal
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import (SPOOL_LIST, free_port, http_get,  # noqa: E402
                      main_with_upstream, parse_prometheus, sample, wait_until)
from fleet import slack  # noqa: E402


def send(f, name, rcpt, size=0):
    """(code, reply text) of DATA for one message."""
    s = smtplib.SMTP("127.0.0.1", f.smtp_ports[name], timeout=30)
    try:
        s.ehlo("client.test")
        assert s.mail("app@client.test")[0] == 250
        assert s.rcpt(rcpt)[0] == 250
        s.putcmd("data")
        code, _ = s.getreply()
        assert code == 354, code
        s.send(("From: <app@client.test>\r\nTo: <%s>\r\nSubject: t\r\n\r\n"
                "hello\r\n%s.\r\n" % (rcpt, ("x" * 78 + "\r\n") *
                                      (size // 80))).encode())
        code, resp = s.getreply()
        s.quit()
    finally:
        s.close()
    return code, resp.decode()


def shadow_ids(f, name):
    d = os.path.join(f.dir, name, "spool", "shadow")
    r = subprocess.run([SPOOL_LIST, d], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]


def main():
    main_with_upstream("shadowdeg", run)


def run(f, up):
    # -- policy: names in, names out, a bad one refused
    r = f.ctl("limit", "set", "redundancy", "sometimes", check=False)
    assert r.returncode != 0 and "one of off, peer" in r.stderr, r.stderr
    v = f.relay_policy(up.port, {"retry_min_seconds": 1,
                                 "retry_max_seconds": 2,
                                 "redundancy": "peer",
                                 "redundancy_peer_timeout_ms": 300})
    exported = f.ctl("policy", "export").stdout
    assert "  redundancy: peer\n" in exported, exported
    path = os.path.join(f.dir, "policy.yaml")
    with open(path, "w") as fh:
        fh.write(exported)
    assert f.ctl_json("policy", "apply", "-f", path)["changed"] is False
    with open(path, "w") as fh:
        fh.write(exported.replace("redundancy: peer",
                                  "redundancy: peer\n"
                                  "  redundancy_no_peer: accept"))
    # accept is the default: still no change
    assert f.ctl_json("policy", "apply", "-f", path)["changed"] is False

    f.start_relay("n1", extra="shadow_listen = 127.0.0.1:%d\n" % free_port())
    f.wait_node_version("n1", v)

    # -- no peer, accept: 250, counted, alerted
    code, resp = send(f, "n1", "a1@example.test")
    assert code == 250, (code, resp)
    assert "accepted without a shadow copy: no shadow peer" in \
        f.nodes["n1"].output()
    wait_until(lambda: f.open_alert("shadow_degraded", "n1"), 15,
               "shadow_degraded raised")
    sh = f.node("n1")["metrics"]["shadow"]
    assert sh["unprotected"] >= 1 and sh["copied"] == 0, sh

    # -- no peer, defer: 451 4.3.0, not queued, recorded as withdrawn
    f.ctl("limit", "set", "redundancy_no_peer", "defer")
    f.wait_node_version("n1", f.policy_version())
    up.start()
    code, resp = send(f, "n1", "d1@example.test")
    assert code == 451 and resp.startswith("4.3.0"), (code, resp)
    wait_until(lambda: "a1@example.test" in up.rcpts(), 15, "a1 delivered")
    assert "d1@example.test" not in up.rcpts()
    # The upstream records a1 before the node reads its 250 and removes
    # it: the spool empties a moment later (polled, not asserted at once).
    wait_until(lambda: f.spool("n1") == {}, 15, "n1's spool empty")
    evs = wait_until(
        lambda: f.ctl_json("log", "--status", "withdrawn")["events"], 10,
        "withdrawn event")
    assert "no redundant copy" in evs[0]["reply"], evs

    # -- per listener role: relay off needs no peer
    f.ctl("limit", "set", "redundancy_relay", "off")
    f.wait_node_version("n1", f.policy_version())
    code, resp = send(f, "n1", "r1@example.test")
    assert code == 250, (code, resp)
    f.ctl("limit", "set", "redundancy_relay", "inherit")
    f.wait_node_version("n1", f.policy_version())

    # -- a peer comes: copies, and the alert clears
    f.start_relay("n2", extra="shadow_listen = 127.0.0.1:%d\n" % free_port())
    f.wait_node_version("n2", f.policy_version())
    wait_until(lambda: "shadow peer is n2" in f.nodes["n1"].output(), 15,
               "n1 has n2 as its peer")
    up.stop()     # n1 cannot deliver: the copy stays on n2
    code, resp = send(f, "n1", "p1@example.test")
    assert code == 250, (code, resp)
    assert len(shadow_ids(f, "n2")) == 1, shadow_ids(f, "n2")
    # a message past the spool's 256 KiB in memory is copied from the
    # spool after its commit (the other path)
    code, resp = send(f, "n1", "big@example.test", 400 * 1024)
    assert code == 250, (code, resp)
    assert len(shadow_ids(f, "n2")) == 2, shadow_ids(f, "n2")
    wait_until(lambda: not f.open_alert("shadow_degraded", "n1"), 15,
               "shadow_degraded cleared")
    up.start()
    wait_until(lambda: {"p1@example.test", "big@example.test"} <=
               set(up.rcpts()), 15, "p1 and big delivered")
    wait_until(lambda: shadow_ids(f, "n2") == [], 10, "p1's copy released")

    # -- the peer hangs: bounded wait, then defer
    f.nodes["n2"].p.send_signal(signal.SIGSTOP)
    try:
        t = time.time()
        code, resp = send(f, "n1", "h1@example.test")
        took = time.time() - t
    finally:
        f.nodes["n2"].p.send_signal(signal.SIGCONT)
    assert code == 451, (code, resp)
    assert 0.25 <= took < slack(1.8), took
    assert "did not answer within 300 ms" in f.nodes["n1"].output()
    # n2 resumes and takes copies again
    wait_until(lambda: send(f, "n1", "h2@example.test")[0] == 250, 15,
               "copies again after n2 resumed")
    # the counters on /metrics (strictly parsed)
    m = parse_prometheus(http_get(f.metrics_ports["n1"]))
    assert sample(m, "sluice_shadow_unprotected_total") >= 1, m
    assert sample(m, "sluice_shadow_refused_total") >= 2, m
    assert sample(m, "sluice_shadow_copied_total") >= 3, m
    assert sample(m, "sluice_shadow_held_messages") == 0, m
    print("degraded modes ok; withdrawn events %d" % len(evs))


if __name__ == "__main__":
    main()
