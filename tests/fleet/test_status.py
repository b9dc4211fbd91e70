#!/usr/bin/env python3
"""status and /metrics reflect a known load (issue 5).

One node relays ok.test to an upstream that accepts everything, and
defer.test to a hop nobody listens on (connection refused: deferred).  N messages to ok.test are delivered, M to
defer.test stay deferred.  Then:
  * `sluicectl status --json`: accepted N+M, delivered N, queue M (all
    deferred), throughput per minute from the history, hop "up" closed;
  * `sluicectl status`: the node row, 80 columns at most;
  * `sluicectl queue summary`: defer.test with M messages;
  * node and controller /metrics: strict Prometheus text, same numbers.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import (FleetOps, Upstream, free_port, http_get,  # noqa: E402
                      parse_prometheus, sample, wait_until)

N, M = 5, 3


def main():
    mport = free_port()
    with FleetOps("status", controller_extra="metrics_listen = "
                  "127.0.0.1:%d\n" % mport) as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up, mport)
        finally:
            up.stop()
    print("ok")


def run(f, up, mport):
    f.relay_policy(up.port)
    f.ctl("hop", "add", "down", "--host", "127.0.0.1", "--port",
          str(free_port()), "--tls", "none")
    f.ctl("route", "set", "defer.test", "down")
    v = f.policy_version()
    f.start_relay("n1")
    f.wait_node_version("n1", v)
    for i in range(N):
        f.send("n1", "app@client.test", ["r%d@ok.test" % i], "ok%d" % i)
    for r in ("a", "b", "c")[:M]:
        f.send("n1", "app@client.test", ["%s@defer.test" % r], "defer" + r)
    wait_until(lambda: len(up.messages()) == N, 20, "N deliveries")

    # The queue shape is computed once a heartbeat period and the hops'
    # health every delivery tick: either may trail the counters by one
    # report.
    def settled():
        n = f.node("n1")
        m = n["metrics"]
        return (m["accepted"] == N + M and m["delivered"] == N and
                m["messages"] == M and m["deferred"] == M and
                [s["domain"] for s in m["shape"]] == ["defer.test"] and
                any(h["name"] == "up" and h["delivered"] == N
                    for h in m["hops"]) and
                n) or None
    n = wait_until(settled, 20, "status to show the load")
    m = n["metrics"]
    assert n["state"] == "up", n
    assert m["active"] == 0 and m["held"] == 0, m
    assert m["deferred_attempts"] >= M, m
    # Throughput comes from the per-minute history: every message of this
    # test arrived within the last two minutes.
    assert n["accepted_per_min"] >= 1, n
    assert n["delivered_per_min"] >= 1, n
    hops = {h["name"]: h for h in m["hops"]}
    assert "up" in hops and not hops["up"]["circuit_open"], m["hops"]
    assert hops["down"]["failed"] >= 1, m["hops"]
    shape = {s["domain"]: s for s in m["shape"]}
    assert shape["defer.test"]["messages"] == M, shape
    assert shape["defer.test"]["deferred"] == M, shape
    assert "ok.test" not in shape, shape

    # The human view fits 80 columns.
    out = f.ctl("status").stdout
    assert "n1" in out and "up" in out, out
    for line in out.splitlines():
        assert len(line) <= 80, "too wide: %r" % line
    row = [ln for ln in out.splitlines() if ln.startswith("n1 ")][0]
    assert row.split()[3] == str(M), row     # QUEUE column
    print(out)
    summ = f.ctl("queue", "summary").stdout
    print(summ)
    assert "defer.test" in summ and "TOTAL" in summ, summ
    qs = f.ctl_json("queue", "summary")
    dom = {d["domain"]: d for d in qs["nodes"][0]["domains"]}
    assert dom["defer.test"]["messages"] == M, qs

    # Node /metrics: strict format, the same numbers.
    s = parse_prometheus(http_get(f.metrics_ports["n1"]))
    assert sample(s, "sluice_messages_accepted_total") == N + M
    assert sample(s, "sluice_deliveries_total") == N
    assert sample(s, "sluice_queue_messages") == M
    assert sample(s, "sluice_queue_state_messages", state="deferred") == M
    assert sample(s, "sluice_hop_circuit_open", hop="up") == 0, s

    # Controller /metrics: the fleet as PostgreSQL knows it.
    def ctl_metrics():
        s = parse_prometheus(http_get(mport))
        return s if sample(s, "sluice_node_queue_messages",
                           node="n1") == M else None
    s = wait_until(ctl_metrics, 10, "controller /metrics")
    assert sample(s, "sluice_node_messages_accepted_total",
                  node="n1") == N + M
    assert sample(s, "sluice_node_deliveries_total", node="n1") == N
    assert sample(s, "sluice_fleet_nodes", state="up") == 1
    assert sample(s, "sluice_node_up", node="n1") == 1
    assert sample(s, "sluice_node_hop_circuit_open", node="n1",
                  hop="up") == 0
    assert sample(s, "sluice_controller_policy_version") == v

    # The parser is strict: a few broken expositions must fail it.
    for bad in ("sluice_x 1\n",
                "# HELP sluice_x h\n# TYPE sluice_x gauge\nsluice_x one\n",
                "# TYPE sluice_x gauge\n# HELP sluice_x h\nsluice_x 1\n",
                "# HELP sluice_x h\n# TYPE sluice_x counter\nsluice_x 1\n"):
        try:
            parse_prometheus(bad)
        except (AssertionError, ValueError):
            continue
        raise AssertionError("parser accepted %r" % bad)


if __name__ == "__main__":
    main()
