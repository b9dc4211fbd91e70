#!/usr/bin/env python3
"""node drain end to end (issue 5).

Mail waits on n1 behind an upstream that is down.  `sluicectl node drain
n1`: n1 closes its listeners (a new connection is refused, so a load
balancer moves on), state "draining"; n2 keeps accepting.  The upstream
comes back: n1 delivers its queue and reports itself drained (state
"drained", metrics.drained).  Every message arrived exactly once.  `node
resume n1`: it listens again and accepts mail.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import main_with_upstream, port_open, wait_until  # noqa: E402

N = 6


def refused(port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        return False
    except ConnectionRefusedError:
        return True
    finally:
        s.close()


def main():
    main_with_upstream("drain", run)


def run(f, up):
    v = f.relay_policy(up.port, {"retry_min_seconds": 1,
                                 "retry_max_seconds": 2})
    f.start_relay("n1")
    f.start_relay("n2")
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)
    ids = [f.send("n1", "app@client.test", ["r%d@example.test" % i],
                  "m%d" % i) for i in range(N)]
    wait_until(lambda: f.node("n1")["metrics"]["messages"] == N, 10,
               "n1 reports its queue")

    out = f.ctl("node", "drain", "n1").stdout
    assert "draining" in out, out
    p1 = f.smtp_ports["n1"]
    wait_until(lambda: refused(p1), 10, "n1 refuses new connections")
    n = wait_until(lambda: (f.node("n1")["metrics"]["draining"] and
                            f.node("n1")), 10, "n1 reports draining")
    assert n["state"] == "draining" and not n["metrics"]["drained"], n
    assert "draining" in f.ctl("status").stdout
    # The rest of the fleet takes the traffic.
    f.send("n2", "app@client.test", ["other@example.test"], "n2")

    # The upstream comes back: n1 delivers and says it is drained.
    up.start()
    n = wait_until(lambda: f.node("n1")["state"] == "drained" and
                   f.node("n1"), 30, "n1 drained")
    assert n["metrics"]["drained"] and n["metrics"]["messages"] == 0, n
    assert f.spool("n1") == {}, f.spool("n1")
    assert refused(p1), "a drained node stays closed"
    wait_until(lambda: len(up.messages()) == N + 1, 15, "all delivered")
    rcpts = up.rcpts()
    for i in range(N):
        assert rcpts.count("r%d@example.test" % i) == 1, rcpts
    for qid in ids:
        assert "delivered" in [e["kind"] for e in
                               f.ctl_json("trace", qid)["events"]], qid

    # resume: listening and accepting again
    f.ctl("node", "resume", "n1")
    wait_until(lambda: port_open("127.0.0.1", p1), 10, "n1 listens again")
    wait_until(lambda: f.node("n1")["state"] == "up", 10, "n1 up")
    f.send("n1", "app@client.test", ["after@example.test"], "after")
    wait_until(lambda: "after@example.test" in up.rcpts(), 15,
               "mail after resume delivered")


if __name__ == "__main__":
    main()
