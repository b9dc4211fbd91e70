#!/usr/bin/env python3
"""drain --handoff over the shadow channel: an ack that comes too late
costs no duplicate (docs/operations.md, "Exactly once").

n1 holds N deferred messages (the upstream is down); n2, its peer with a
shadow channel, is stopped (SIGSTOP) - the controller still counts it live
(silent_after_ms is long).  `drain n1 --handoff`: n1 sends the messages to
n2's shadow listener, where they wait in the socket; n2 does not answer
within n1's delivery_timeout_ms, so n1 defers them and keeps them.  n2
continues (SIGCONT): it queues what it read and acks late (n1 no longer
waits for those acks).  n1's next attempt sends them again; n2 recognises
each one ("taken before") and answers with the queue id it gave the first
time, so n1 removes them and n2 holds each message once.  The upstream
comes up: every message arrives exactly once.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import free_port, main_with_upstream, wait_until  # noqa: E402

N = 5


def main():
    main_with_upstream("handoffonce", run,
                       controller_extra="silent_after_ms = 60000\n")


def run(f, up):
    v = f.relay_policy(up.port, {"retry_min_seconds": 1,
                                 "retry_max_seconds": 2})
    f.start_relay("n1", extra="delivery_timeout_ms = 1000\n"
                  "shadow_listen = 127.0.0.1:%d\n" % free_port())
    f.start_relay("n2", extra="shadow_listen = 127.0.0.1:%d\n" % free_port())
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)
    ids = [f.send("n1", "app@client.test", ["o%d@example.test" % i],
                  "o%d" % i) for i in range(N)]
    wait_until(lambda: len(f.spool("n1")) == N and
               set(f.spool("n1").values()) == {"deferred"}, 15,
               "n1's mail deferred")

    n2 = f.nodes["n2"]
    os.kill(n2.p.pid, signal.SIGSTOP)
    try:
        f.ctl_json("node", "drain", "n1", "--handoff")
        wait_until(lambda: n1_timed_out(f) >= N, 30,
                   "n1's handoffs timed out")
        assert len(f.spool("n1")) == N, f.spool("n1")
    finally:
        os.kill(n2.p.pid, signal.SIGCONT)

    wait_until(lambda: f.node("n1")["state"] == "drained", 30,
               "n1 handed off (again) and drained")
    assert f.spool("n1") == {}
    assert len(f.spool("n2")) == N, f.spool("n2")   # once each
    out2 = n2.output()
    assert "again: taken before" in out2, out2[-3000:]
    up.start()
    wait_until(lambda: len(up.messages()) >= N, 20, "all delivered")
    wait_until(lambda: f.spool("n2") == {}, 15, "n2's queue empty")
    rcpts = sorted(m["rcpts"][0] for m in up.messages())
    assert rcpts == sorted("o%d@example.test" % i for i in range(N)), rcpts
    # n1's record: each message handed off once, to one queue id at n2
    for qid in ids:
        off = [e for e in f.ctl_json("trace", qid)["events"]
               if e["kind"] == "handed_off"]
        assert len(off) == 1 and off[0]["provider_id"], off


def n1_timed_out(f):
    out = f.nodes["n1"].output()
    return out.count("did not answer within 1000 ms")


if __name__ == "__main__":
    main()
