#!/usr/bin/env python3
"""The Grafana dashboard and the Prometheus rules match the code (issue 18).

A real fleet (controller with metrics_listen, one relay node) relays a
message; both /metrics are scraped and parsed strictly (fleetkit's
parser).  Then:
  * grafana/sluice-dashboard.json loads, has unique panel ids, every
    panel has a query, and every metric a query names is exported by the
    node or the controller (histograms by their _bucket/_sum/_count);
    the panels cover throughput, queue depth and age, outcomes by hop,
    circuit state, AUTH failures, spool commit latency, control-plane lag;
  * prometheus/sluice-alerts.yml parses (YAML), every rule has an alert
    name, an expression with balanced brackets naming exported metrics,
    a severity, a summary and the built-in alert kind it stands for;
    together they cover every built-in kind, and the thresholds are the
    policy limits' defaults (lib/limit_table.c);
  * the node's spool commit histogram counted the commit.
promtool checks the rules too when it is installed.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "fleet"))
from fleetkit import (FleetOps, Upstream, free_port, http_get,  # noqa: E402
                      parse_prometheus, wait_until)

BUILTIN = {"node_silent", "queue_backlog", "oldest_message",
           "auth_failures", "hop_circuit_open", "route_down", "hop_config",
           "hop_account", "policy_mismatch"}
METRIC = re.compile(r"\bsluice_[a-z0-9_]+\b")


def exported(texts):
    names = set()
    for t in texts:
        parse_prometheus(t)
        for m in re.finditer(r"^# TYPE (\S+) (\S+)$", t, re.M):
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names |= {m.group(1) + s for s in ("_bucket", "_sum",
                                                   "_count")}
    return names


def balanced(expr):
    stack, pairs = [], {")": "(", "]": "[", "}": "{"}
    for ch in re.sub(r'"(?:[^"\\]|\\.)*"', "", expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def check_dashboard(names):
    d = json.load(open(os.path.join(ROOT, "grafana", "sluice-dashboard.json")))
    assert d["title"] and d["uid"] and d["schemaVersion"] >= 30, d.keys()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), ids
    used, titles = set(), []
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        titles.append(p["title"].lower())
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert balanced(t["expr"]), t["expr"]
            found = METRIC.findall(t["expr"])
            assert found, (p["title"], t["expr"])
            for m in found:
                assert m in names, "panel %r: %s is not exported" % (
                    p["title"], m)
                used.add(m)
    for topic in ("throughput", "queue depth", "oldest message age",
                  "by hop", "circuit", "auth failures",
                  "spool commit latency", "control-plane lag"):
        assert any(topic in t for t in titles), (topic, titles)
    return used


def limit_defaults():
    src = open(os.path.join(ROOT, "lib", "limit_table.c")).read()
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'\{"(alert_[a-z_]+)",\s*(\d+),', src)}


def check_rules(names):
    path = os.path.join(ROOT, "prometheus", "sluice-alerts.yml")
    doc = yaml.safe_load(open(path))
    rules = [r for g in doc["groups"] for r in g["rules"]]
    kinds = set()
    for r in rules:
        assert re.match(r"^Sluice[A-Za-z]+$", r["alert"]), r
        assert balanced(r["expr"]), r["expr"]
        found = METRIC.findall(r["expr"])
        assert found or "up{" in r["expr"], r["expr"]
        for m in found:
            assert m in names, "rule %s: %s is not exported" % (r["alert"],
                                                                m)
        assert r["labels"]["severity"] in ("warning", "critical"), r
        assert r["annotations"]["summary"], r
        kinds.add(r["labels"]["sluice_kind"])
    assert BUILTIN <= kinds, BUILTIN - kinds
    by_kind = {r["labels"]["sluice_kind"]: r["expr"] for r in rules
               if "up{" not in r["expr"]}
    lim = limit_defaults()
    assert lim["alert_queue_backlog_messages"] == 10000, lim
    assert "> %d" % lim["alert_queue_backlog_messages"] in \
        by_kind["queue_backlog"]
    assert "> %d" % lim["alert_oldest_message_seconds"] in \
        by_kind["oldest_message"]
    assert "> %d" % lim["alert_auth_failures_per_minute"] in \
        by_kind["auth_failures"]
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "rules", path],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    return len(rules)


def main():
    cport = free_port()
    with FleetOps("grafana", controller_extra="metrics_listen = "
                  "127.0.0.1:%d\n" % cport) as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            f.relay_policy(up.port)
            v = f.policy_version()
            f.start_relay("n1")
            f.wait_node_version("n1", v)
            q = f.send("n1", "app@client.test", ["a@example.com"], "g")
            wait_until(lambda: f.spool("n1").get(q) is None, 15,
                       "message delivered")
            node = http_get(f.metrics_ports["n1"])
            wait_until(lambda: "sluice_node_hop_circuit_open{" in
                       http_get(cport), 15, "the controller knows n1's hops")
            ctl = http_get(cport)
        finally:
            up.stop()
    s = parse_prometheus(node)
    count = s[("sluice_spool_commit_seconds_count", frozenset())]
    inf = s[("sluice_spool_commit_seconds_bucket",
             frozenset({("le", "+Inf")}))]
    assert count >= 1 and inf == count, (count, inf)
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in s.items()
                     if k[0] == "sluice_spool_commit_seconds_bucket")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
    # the one message is in a segment; too few messages to recycle one
    assert s[("sluice_spool_segments", frozenset())] >= 1
    assert s[("sluice_spool_segments_recycled_total", frozenset())] == 0
    # accept latency: exactly the one message, in a bucket at or below
    # +Inf, the sum its time (positive, under the test's own deadline)
    acc = s[("sluice_smtp_accept_seconds_count", frozenset())]
    assert acc == 1, acc
    assert s[("sluice_smtp_accept_seconds_bucket",
              frozenset({("le", "+Inf")}))] == 1
    assert 0 < s[("sluice_smtp_accept_seconds_sum", frozenset())] < 15
    names = exported([node, ctl])
    used = check_dashboard(names)
    n = check_rules(names)
    print("ok: %d metrics exported, %d used by the dashboard, %d rules" % (
        len(names), len(used), n))


if __name__ == "__main__":
    main()
