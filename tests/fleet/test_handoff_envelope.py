#!/usr/bin/env python3
"""drain --handoff keeps the message's identity (docs/operations.md,
"drain --handoff"): the queue goes to the peer over the shadow channel with
its whole envelope, so the peer routes it as the node that accepted it would
have.

Two nodes with shadow channels (shadow_listen, mutual TLS with certificates
of the fleet CA; redundancy stays off).  The
policy sends everything to hop A (its upstream up throughout), mail of user
`scanner` to hop S (`route set '*' --user scanner`), mail that came in on
the listener `apps` to hop L, and signs example.com with DKIM.  S and L are
down, so on n1:
  * `scanner`'s message (AUTH over STARTTLS) is deferred, waiting for S;
  * a message on the `apps` listener is deferred, waiting for L;
  * a message from example.com on `apps`, signed once at n1, too;
  * a message of user `holder` (hold flag) is held.
`sluicectl node drain n1 --handoff`: n1 hands the four to n2 and is
drained.  n2 queues them as n1 accepted them: nothing reaches A (today's
SMTP handoff lost the user and the listener: n2 saw a relay client and sent
them to A; and it never moved the held one, so n1 never drained).  S and L
come up: each message arrives once, from n2, at its own upstream; the
signed one carries n1's signature only, which verifies.  The held one
stays held at n2 until `queue release` there, then goes to A.
`sluicectl trace ID` with n1's queue id shows `handed off to n2` on n1 and
the message going on at n2 as received from user scanner, then delivered
through hop S.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fleetkit import (FleetOps, Upstream, free_port, port_open,  # noqa: E402
                      subjects, submit_auth, wait_until)

sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
from smtpkit import make_cert  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "dkim"))
import dkimkit  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "hardening"))
from pki import Pki  # noqa: E402


def main():
    with FleetOps("handoffenv") as f:
        f.start()
        ups = {n: Upstream(f.dir, n) for n in ("A", "S", "L")}
        try:
            run(f, ups)
        finally:
            for u in ups.values():
                u.stop()
    print("ok")


def run(f, ups):
    crt, key = make_cert(f.dir)
    ups["A"].start()  # the default route works: mail that lost its
    #                   identity would go there at once
    f.ctl("network", "allow", "127.0.0.0/8")
    for n, up in ups.items():
        f.ctl("hop", "add", "hop" + n, "--host", "127.0.0.1", "--port",
              str(up.port), "--tls", "none")
    f.ctl("route", "set", "*", "hopA")
    # (the first settles the tie of the other two)
    f.ctl("route", "set", "*", "--user", "scanner", "--listener", "apps",
          "hopS")
    f.ctl("route", "set", "*", "--user", "scanner", "hopS")
    f.ctl("route", "set", "*", "--listener", "apps", "hopL")
    for u in ("scanner", "holder"):
        f.ctl("user", "add", u, "--password-stdin", "--sender", "*",
              input="pw-%s\n" % u)
    f.ctl("user", "set", "holder", "--hold")
    dns = dkimkit.records_of(f.ctl("dkim", "add", "example.com",
                                   "--selector", "s1", "--generate").stdout)
    assert dns, "no TXT record printed"
    for k, v in (("retry_min_seconds", 1), ("retry_max_seconds", 2)):
        f.ctl("limit", "set", k, str(v))
    v = f.policy_version()
    apps_port = free_port()
    pki = Pki(os.path.join(f.dir, "pki"))
    pki.ca("fleet-ca")

    def extra(name):
        pem = pki.leaf(name, "fleet-ca", name, ips=["127.0.0.1"])
        return ("tls_cert = %s\ntls_key = %s\n"
                "shadow_listen = 127.0.0.1:%d\nshadow_ca = %s\n"
                "shadow_cert = %s\nshadow_key = %s\n" % (
                    crt, key, free_port(), pki.path("fleet-ca.crt"), pem,
                    pem))
    f.start_relay("n1", extra=extra("n1") +
                  "listen = 127.0.0.1:%d relay name=apps\n" % apps_port)
    f.start_relay("n2", extra=extra("n2"))
    for n in ("n1", "n2"):
        f.wait_node_version(n, v, timeout=30)
    wait_until(lambda: port_open("127.0.0.1", apps_port), 15,
               "n1's apps listener")

    port = f.smtp_ports["n1"]
    byuser = submit_auth(port, "scan@example.net", "u@example.org",
                         "byuser", user="scanner")
    viaapps = submit_auth(apps_port, "app@example.net", "z@example.org",
                          "apps")
    signed = submit_auth(apps_port, "alice@example.com", "y@example.org",
                         "signed")
    held = submit_auth(port, "h@example.net", "x@example.org", "held",
                       user="holder")
    ids = {byuser, viaapps, signed}
    wait_until(lambda: set(f.spool("n1")) == ids | {held} and
               sorted(f.spool("n1").values()) == ["deferred"] * 3 +
               ["held"], 30, "three messages deferred, one held at n1")
    assert ups["A"].messages() == [], subjects(ups["A"])

    # -- the handoff
    r = f.ctl_json("node", "drain", "n1", "--handoff")
    assert r["handoff"], r
    # n2 routes them as n1 would have: to S and L, which are down; none
    # to A (today's SMTP handoff: three at A at once, the held one never
    # leaves n1)
    wait_until(lambda: ups["A"].messages() or
               (len(f.spool("n2")) == 4 and
                sorted(f.spool("n2").values()) == ["deferred"] * 3 +
                ["held"]), 30, "n2 tried the three, holds the fourth")
    assert ups["A"].messages() == [], subjects(ups["A"])
    n = wait_until(lambda: f.node("n1")["state"] == "drained" and
                   f.node("n1"), 30, "n1 handed off and drained")
    assert n["metrics"]["messages"] == 0, n
    assert f.spool("n1") == {}
    out1 = f.nodes["n1"].output()
    assert "over SMTP" not in out1, out1[-3000:]
    assert "shadow channel" in out1, out1[-3000:]

    ups["S"].start()
    ups["L"].start()
    wait_until(lambda: subjects(ups["S"]) == ["byuser"] and
               subjects(ups["L"]) == ["apps", "signed"], 30,
               "delivered by n2 to the user's and the listener's hops")
    wait_until(lambda: list(f.spool("n2").values()) == ["held"], 15,
               "n2 delivered the three")
    assert ups["A"].messages() == [], subjects(ups["A"])
    for u in ("S", "L"):
        msgs = ups[u].messages()
        assert all(m["helo"] == "n2.test" for m in msgs), \
            [m["helo"] for m in msgs]

    # the signature is n1's (made once, at acceptance) and verifies
    m = [x for x in ups["L"].messages()
         if "Subject: signed" in x["data"]][0]["data"]
    assert len(re.findall(r"(?mi)^DKIM-Signature:", m)) == 1, m[:2000]
    path = os.path.join(f.dir, "signed.eml")
    with open(path, "wb") as fh:
        fh.write(m.encode("latin-1"))
    ok, out = dkimkit.verify(dns, [path], f.dir)
    assert ok, out

    # -- the record: n1's queue id leads to its life at n2
    def trace():
        ev = f.ctl_json("trace", byuser)["events"]
        return ev if any(e["node"] == "n2" and e["kind"] == "delivered"
                         for e in ev) else None
    ev = wait_until(trace, 15, "trace reaches n2's delivery")
    kinds = [(e["node"], e["kind"]) for e in ev]
    off = [e for e in ev if e["kind"] == "handed_off"]
    assert len(off) == 1 and off[0]["node"] == "n1", kinds
    assert "handed off to n2" in off[0]["reply"], off[0]
    peer_qid = off[0]["provider_id"]
    rcv = [e for e in ev if e["node"] == "n2" and e["kind"] == "received"]
    assert len(rcv) == 1, kinds
    assert rcv[0]["queue_id"] == peer_qid, (rcv[0], peer_qid)
    assert rcv[0]["auth_user"] == "scanner", rcv[0]
    assert "handed off from n1 (queue id %s there)" % byuser in \
        rcv[0]["reply"], rcv[0]
    dlv = [e for e in ev if e["node"] == "n2" and e["kind"] == "delivered"]
    assert len(dlv) == 1 and dlv[0]["hop"] == "hopS", dlv
    # (n2's received comes before n1's handed_off: n2 acks once queued)
    assert kinds.index(("n2", "received")) < \
        kinds.index(("n2", "delivered")), kinds
    text = f.ctl("trace", byuser).stdout
    assert "handed off to n2" in text and "user=scanner" in text, text

    # -- the held one: held at n2 (the user's hold flag travelled) until
    # released there; its trace from n1's id says so
    ev = f.ctl_json("trace", held)["events"]
    off = [e for e in ev if e["kind"] == "handed_off"]
    assert len(off) == 1 and "(held)" in off[0]["reply"], ev
    (hq,) = f.spool("n2")
    assert hq == off[0]["provider_id"], (hq, off)
    assert any(e["node"] == "n2" and e["kind"] == "received" and
               e["auth_user"] == "holder" for e in ev), ev
    f.ctl("queue", "release", hq)
    wait_until(lambda: subjects(ups["A"]) == ["held"], 30,
               "the held message after its release at n2")
    wait_until(lambda: f.spool("n2") == {}, 15, "n2's queue empty")


if __name__ == "__main__":
    main()
