"""delivery_jitter: retry times keep the documented jitter measured from
the real deferral time (docs/delivery.md, "Retries and expiry").  The hop
is down; retry_min = retry_max = 2 s, so every deferral says "in 2 s" and
the next attempt must come no earlier than 0.9 x 2 s after it (and, the
spool keeping whole seconds, no later than 1.1 x 2 s + 1 s, plus slack
for a loaded machine).  The old whole-second arithmetic retried after
1.0..2.0 s (1.15 s was seen): five intervals in a row all above 1.8 s
have a chance of about 0.2^5 on it.

  node log: QID delivery: deferred 1 recipient, next attempt in 2.4s
            (ms timestamps)  ... the next attempt's deferred event
"""
import datetime
import re

from dlvkit import Node, Scenario, Upstream, message, wait_until

LINE = re.compile(r"^(\S+) sluice-node\[\d+\] (\S+) delivery: deferred 1 "
                  r"recipient, next attempt in ([0-9.]+)s", re.M)


def stamp(s):
    return datetime.datetime.strptime(
        s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def main():
    with Scenario("jitter") as sc:
        hop = sc.add(Upstream(sc.dir, "hop"))   # never started: refused
        node = sc.add(Node(sc.dir, hops=["hop:host=127.0.0.1,port=%d"
                                         % hop.port],
                           routes=["*=hop"],
                           limits={"retry_min_seconds": 2,
                                   "retry_max_seconds": 2},
                           extra="circuit_failures = 1000")).start()
        qid = node.send("a@example.com", ["b@example.net"], message("j"))
        found = wait_until(lambda: [m for m in LINE.findall(node.log())
                                    if m[1] == qid][5:], 30,
                           "six deferrals")
        lines = [m for m in LINE.findall(node.log()) if m[1] == qid][:6]
        for _, _, said in lines:
            assert 1.8 <= float(said) < 3.2, lines
        times = [stamp(t) for t, _, _ in lines]
        gaps = [b - a for a, b in zip(times, times[1:])]
        for g in gaps:
            assert g >= 1.8, ("retried too early", gaps)
            assert g < 4.5, ("retried too late", gaps)
        assert found
        print("ok", ["%.2f" % g for g in gaps])


if __name__ == "__main__":
    main()
