#!/usr/bin/env python3
"""fleet-wide queue control on deferred messages (issue 5).

defer.test is routed to a hop nobody listens on: its mail is deferred
(next attempt in minutes).  Through sluicectl (command -> heartbeat ->
node -> result -> sluicectl), asserted on the node's spool (read from
disk by tests/spool/spool_list) and in the delivery record (trace):
  * queue list with --state / --to filters, on every node and on one;
  * hold -> held on disk, "held" in the record; release -> not held;
  * delete -> gone from the spool, "deleted" in the record;
  * retry after the route is fixed -> delivered at once;
  * flush -> every deferred message delivered;
  * an unknown id -> exit 1, one line.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, free_port, wait_until  # noqa: E402


def main():
    with FleetOps("queue") as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def kinds(f, qid):
    return [e["kind"] for e in f.ctl_json("trace", qid)["events"]]


def run(f, up):
    f.relay_policy(up.port)
    f.ctl("hop", "add", "down", "--host", "127.0.0.1", "--port",
          str(free_port()), "--tls", "none")
    f.ctl("route", "set", "defer.test", "down")
    v = f.policy_version()
    f.start_relay("n1")
    f.start_relay("n2")
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)
    q = [f.send("n1", "app@client.test", ["u%d@defer.test" % i], "d%d" % i)
         for i in range(4)]
    other = f.send("n2", "app@client.test", ["x@defer.test"], "other")
    wait_until(lambda: all(f.spool("n1").get(x) == "deferred" for x in q),
               15, "four deferred messages on n1")
    wait_until(lambda: f.spool("n2").get(other) == "deferred", 15,
               "one deferred message on n2")

    # -- list: every live node answers
    ls = f.ctl_json("queue", "list")
    got = {(m["node"], m["queue_id"]): m for m in ls["messages"]}
    assert ls["total"] == 5, ls
    for x in q:
        assert got[("n1", x)]["state"] == "deferred", got
        assert got[("n1", x)]["recipients"][0].endswith("@defer.test")
    assert ("n2", other) in got, got
    assert sorted(n["node"] for n in ls["nodes"]) == ["n1", "n2"], ls
    assert f.ctl_json("queue", "list", "--node", "n2")["total"] == 1
    assert f.ctl_json("queue", "list", "--to", "other.test")["total"] == 0
    assert f.ctl_json("queue", "list", "--to", "DEFER.test")["total"] == 5
    assert f.ctl_json("queue", "list", "--state", "held")["total"] == 0
    out = f.ctl("queue", "list", "--node", "n1").stdout
    assert all(x in out for x in q) and "4 messages queued" in out, out

    # -- hold / release
    r = f.ctl_json("queue", "hold", q[0])
    assert r["ok"] and [n for n in r["nodes"] if n["ok"]][0]["node"] == "n1"
    wait_until(lambda: f.spool("n1").get(q[0]) == "held", 10, "held on disk")
    held = f.ctl_json("queue", "list", "--state", "held")
    assert [m["queue_id"] for m in held["messages"]] == [q[0]], held
    wait_until(lambda: "held" in kinds(f, q[0]), 10, "held in the record")
    out = f.ctl("queue", "hold", q[0], check=False)
    assert out.returncode == 1 and "already held" in out.stderr, out
    assert f.ctl("queue", "release", q[0]).stdout.strip() == \
        "%s: released on n1" % q[0]
    wait_until(lambda: f.spool("n1").get(q[0]) in ("active", "deferred"),
               10, "released on disk")
    wait_until(lambda: "released" in kinds(f, q[0]), 10,
               "released in the record")

    # -- delete
    r = f.ctl_json("queue", "delete", q[1])
    assert r["ok"], r
    wait_until(lambda: q[1] not in f.spool("n1"), 10, "deleted from disk")
    wait_until(lambda: "deleted" in kinds(f, q[1]), 10,
               "deleted in the record")

    # -- retry: fix the route, retry one message, it goes at once
    f.ctl("route", "set", "defer.test", "up")
    f.wait_node_version("n1", f.policy_version())
    f.wait_node_version("n2", f.policy_version())
    f.ctl("queue", "retry", q[2], "--node", "n1")
    wait_until(lambda: q[2] not in f.spool("n1"), 10, "retried, delivered")
    wait_until(lambda: "delivered" in kinds(f, q[2]), 10,
               "delivered in the record")
    assert f.spool("n1").get(q[3]) == "deferred", f.spool("n1")

    # -- flush: every deferred message, every node
    r = f.ctl_json("queue", "flush")
    assert r["ok"] and len(r["nodes"]) == 2, r
    wait_until(lambda: f.spool("n1") == {} and f.spool("n2") == {}, 15,
               "queues empty after flush")
    rcpts = up.rcpts()
    for want in ("u0@defer.test", "u2@defer.test", "u3@defer.test",
                 "x@defer.test"):
        assert rcpts.count(want) == 1, rcpts
    assert "u1@defer.test" not in rcpts, rcpts

    # -- an id nobody has: one line, exit 1
    r = f.ctl("queue", "hold", "NOSUCHID", check=False)
    assert r.returncode == 1, r
    assert r.stderr.strip() == \
        "sluicectl: NOSUCHID is not queued on any node", r.stderr


if __name__ == "__main__":
    main()
