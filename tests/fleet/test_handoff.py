#!/usr/bin/env python3
"""node drain --handoff (issue 5).

n1 holds deferred mail (the upstream is down).  `sluicectl node drain n1
--handoff`: n1 closes its listeners and hands every queued message to the
other live node's relay listener (n2: it has no shadow channel, so this
is the SMTP handoff, which n1's log says once; test_handoff_envelope.py
has the shadow channel's), each one acknowledged by n2 before it leaves
n1's spool; n1 reports drained without waiting for the upstream.
The upstream comes back: every message reaches it exactly once, through
n2 (the upstream sees n2's EHLO).  `node resume n1`: n1's own routes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import main_with_upstream, port_open, wait_until  # noqa: E402

N = 8


def main():
    main_with_upstream("handoff", run)


def run(f, up):
    v = f.relay_policy(up.port, {"retry_min_seconds": 1,
                                 "retry_max_seconds": 2})
    f.start_relay("n1")
    f.start_relay("n2")
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)
    ids = [f.send("n1", "app@client.test", ["h%d@example.test" % i],
                  "h%d" % i) for i in range(N)]
    wait_until(lambda: len(f.spool("n1")) == N and
               set(f.spool("n1").values()) == {"deferred"}, 15,
               "n1's mail deferred")

    r = f.ctl_json("node", "drain", "n1", "--handoff")
    assert r["handoff"], r
    n = wait_until(lambda: f.node("n1")["state"] == "drained" and
                   f.node("n1"), 30, "n1 handed off and drained")
    assert n["metrics"]["handoff"] and n["metrics"]["messages"] == 0, n
    assert f.spool("n1") == {}
    assert len(f.spool("n2")) == N, f.spool("n2")   # n2 has it all now
    up.start()
    wait_until(lambda: len(up.messages()) == N, 20, "all delivered")
    msgs = up.messages()
    assert sorted(m["rcpts"][0] for m in msgs) == \
        sorted("h%d@example.test" % i for i in range(N)), msgs
    assert all(m["helo"] == "n2.test" for m in msgs), \
        [m["helo"] for m in msgs]
    for qid in ids:
        kinds = [(e["kind"], e.get("hop", "")) for e in
                 f.ctl_json("trace", qid)["events"]]
        assert ("delivered", "handoff-1") in kinds, kinds
    wait_until(lambda: f.spool("n2") == {}, 15, "n2 delivered it all")
    out = f.nodes["n1"].output()
    assert "handing off %d queued messages to 1 peer" % N in out
    # n2 has no shadow channel: plain SMTP, and n1 says what that costs
    assert out.count("over SMTP") == 1 and \
        "route conditions on user, client and listener" in out, out[-3000:]

    # resume: n1 listens again and delivers on its own routes
    f.ctl("node", "resume", "n1")
    wait_until(lambda: f.node("n1")["state"] == "up" and
               port_open("127.0.0.1", f.smtp_ports["n1"]), 10, "n1 up")
    f.send("n1", "app@client.test", ["after@example.test"], "after")
    wait_until(lambda: any(m["rcpts"] == ["after@example.test"] and
                           m["helo"] == "n1.test" for m in up.messages()),
               15, "n1 delivers itself again")


if __name__ == "__main__":
    main()
