#!/usr/bin/env python3
"""fleet_failback: the circuit breaker gives a hop back (issue 10).

One node (circuit_failures 1, circuit_cooldown_ms 1500), a controller
and PostgreSQL; the hops are tests/upstream/upstream.py on loopback ports
that start out dead.

  outage    out.test -> solo only.  solo is down: 10 messages are
            deferred (next attempt in 5 min) and the circuit opens.  solo
            returns; after the cool-down `sluicectl queue flush` delivers
            all 10 at once: one probe, the other nine wait for its outcome
            and follow it (none is deferred "all hops failed").
  wake      solo goes down again: a message is deferred (5 min); solo
            returns, a new message probes it after the cool-down, and the
            deferred one follows at once (delivery_wake).
  failback  fb.test -> primary, then fallback.  primary is down: mail goes
            to the fallback and primary's circuit opens.  primary returns:
            within one cool-down a message reaches it again.
  421 RCPT  flaky.test -> flaky, then fallback.  flaky answers 421 to both
            RCPTs of a message: the fallback takes them, flaky is charged
            one failure (not credited a delivery) and its circuit opens, so
            the next message skips it.
Each circuit change is one log line (opened / half-open / closed).
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import (FleetOps, Upstream, free_port, http_get,  # noqa: E402
                      parse_prometheus, sample, wait_until)
from fleet import slack  # noqa: E402

COOLDOWN = 1.5


def metric(f, name, hop):
    s = parse_prometheus(http_get(f.metrics_ports["n1"]))
    return sample(s, name, hop=hop)


def log(f):
    return f.nodes["n1"].output()


def outage(f, solo):
    q = [f.send("n1", "app@client.test", ["u%d@out.test" % i], "o%d" % i)
         for i in range(10)]
    wait_until(lambda: all(f.spool("n1").get(x) == "deferred" for x in q),
               15, "ten deferred messages")
    solo.start()
    # Cool-down over: the circuit is half-open (no longer reported open).
    wait_until(lambda: metric(f, "sluice_hop_circuit_open", "solo") == 0,
               10, "solo's cool-down over")
    mark = len(log(f))
    t0 = time.monotonic()
    r = f.ctl_json("queue", "flush")
    assert r["ok"], r
    wait_until(lambda: len(solo.rcpts()) == 10 and f.spool("n1") == {}, 10,
               "the whole queue delivered after the flush")
    took = time.monotonic() - t0
    assert re.search(r'circuit opened hop=solo node=n1 reason="consecutive '
                     r'failures" reply=".*Connection refused', log(f)), log(f)
    after = log(f)[mark:]
    assert "all hops failed or unavailable" not in after, after
    assert "delivery: deferred" not in after, after
    assert after.count("circuit half-open hop=solo node=n1") == 1, after
    assert re.search(r'circuit half-open hop=solo node=n1 reason="cool-down '
                     r'over, this message is the probe" reply=".*Connection '
                     r'refused', after), after
    assert after.count('circuit closed hop=solo node=n1 reason="probe '
                       'succeeded" reply="250') == 1, after
    assert sorted(solo.rcpts()) == sorted("u%d@out.test" % i
                                          for i in range(10))
    return took


def wake(f, solo):
    """Mail deferred while the circuit was open goes as soon as a probe
    closes it, not at its next retry (5 minutes away)."""
    solo.stop()
    qa = f.send("n1", "app@client.test", ["late@out.test"], "late")
    wait_until(lambda: f.spool("n1").get(qa) == "deferred", 10,
               "deferred while solo is down")
    wait_until(lambda: metric(f, "sluice_hop_circuit_open", "solo") == 1,
               10, "solo open again")
    solo.start()
    wait_until(lambda: metric(f, "sluice_hop_circuit_open", "solo") == 0,
               10, "solo's cool-down over")
    t0 = time.monotonic()
    f.send("n1", "app@client.test", ["probe@out.test"], "probe")
    wait_until(lambda: {"late@out.test", "probe@out.test"} <=
               set(solo.rcpts()) and f.spool("n1") == {}, 10,
               "the deferred message right after the probe")
    return time.monotonic() - t0


def failback(f, primary, fallback):
    f.send("n1", "app@client.test", ["first@fb.test"], "fb0")
    wait_until(lambda: "first@fb.test" in fallback.rcpts(), 10,
               "first message via the fallback")
    primary.start()
    t0 = time.monotonic()
    sent = []
    while not primary.rcpts():
        assert time.monotonic() - t0 < slack(COOLDOWN + 3), \
            "primary got no mail within a cool-down of its return"
        sent.append("m%d@fb.test" % len(sent))
        f.send("n1", "app@client.test", [sent[-1]], "fb")
        time.sleep(0.1)  # pacing of new mail, not synchronisation
    back = time.monotonic() - t0
    assert back < slack(COOLDOWN + 1.5), back
    # Every message went exactly once, through one hop or the other.
    wait_until(lambda: sorted(primary.rcpts() + fallback.rcpts()) ==
               sorted(sent + ["first@fb.test"]), 10, "all delivered once")
    # Closed again: the next message goes to the primary.
    f.send("n1", "app@client.test", ["after@fb.test"], "fb1")
    wait_until(lambda: "after@fb.test" in primary.rcpts(), 10,
               "primary in rotation again")
    assert "circuit opened hop=primary node=n1" in log(f), log(f)
    assert 'circuit closed hop=primary node=n1 reason="probe succeeded"' \
        in log(f), log(f)
    return back


def rcpt421(f, flaky, fallback):
    f.send("n1", "app@client.test", ["r1@flaky.test", "r2@flaky.test"],
           "421")
    wait_until(lambda: {"r1@flaky.test", "r2@flaky.test"} <=
               set(fallback.rcpts()), 10, "421 recipients via the fallback")
    assert flaky.messages() == [], flaky.messages()
    wait_until(lambda: metric(f, "sluice_hop_failures_total", "flaky") == 1,
               10, "flaky charged one failure")
    assert metric(f, "sluice_hop_deliveries_total", "flaky") == 0
    assert metric(f, "sluice_hop_circuit_open", "flaky") == 1
    assert re.search(r'circuit opened hop=flaky node=n1 reason="consecutive'
                     r' failures" reply="421 4.1.1', log(f)), log(f)
    conns = flaky.connections()
    f.send("n1", "app@client.test", ["r3@flaky.test"], "421b")
    wait_until(lambda: "r3@flaky.test" in fallback.rcpts(), 10,
               "next message straight to the fallback")
    assert flaky.connections() == conns


def main():
    with FleetOps("failback") as f:
        f.start()
        solo = Upstream(f.dir, "solo")
        primary = Upstream(f.dir, "primary")
        fallback = Upstream(f.dir, "fallback").start()
        flaky = Upstream(f.dir, "flaky", "--rcpt-code", "r1@flaky.test=421",
                         "--rcpt-code", "r2@flaky.test=421",
                         "--rcpt-code", "r3@flaky.test=421").start()
        try:
            f.ctl("network", "allow", "127.0.0.0/8")
            for name, port in (("solo", solo.port),
                               ("primary", primary.port),
                               ("fallback", fallback.port),
                               ("flaky", flaky.port)):
                f.ctl("hop", "add", name, "--host", "127.0.0.1", "--port",
                      str(port), "--tls", "none")
            f.ctl("route", "set", "out.test", "solo")
            f.ctl("route", "set", "fb.test", "primary", "fallback")
            f.ctl("route", "set", "flaky.test", "flaky", "fallback")
            f.start_relay("n1", extra="circuit_failures = 1\n"
                          "circuit_cooldown_ms = %d\n" % (COOLDOWN * 1000))
            f.wait_node_version("n1", f.policy_version())
            took = outage(f, solo)
            woke = wake(f, solo)
            back = failback(f, primary, fallback)
            rcpt421(f, flaky, fallback)
        finally:
            for u in (solo, primary, fallback, flaky):
                u.stop()
        print("ok (flush delivered 10 in %.2fs; deferred mail %.2fs after "
              "the probe; failback after %.2fs)" % (took, woke, back))


if __name__ == "__main__":
    main()
