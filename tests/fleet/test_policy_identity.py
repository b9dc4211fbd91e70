#!/usr/bin/env python3
"""a policy version is its number and its content (issue 20).

A failover to a lagging standby can lose the latest policy version; the
next apply then reuses its number with other content.  Simulated on the
database under two running nodes that miss the rollback (n1 stopped with
SIGSTOP, n2 shut down and restarted from its policy cache):
  * reused number: both nodes notice that version N's content hash differs
    from the one they run, fetch it, and enforce the new content (a third
    recipient is refused); the controller logs it and raises
    policy_mismatch for each node, cleared once they fetched;
  * lost number (head rolled back, no new apply): the node is told, the
    controller says "which this database does not have".
"""
import os
import signal
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, wait_until  # noqa: E402


def rcpt_codes(f, name, n):
    s = smtplib.SMTP("127.0.0.1", f.smtp_ports[name], timeout=30)
    try:
        s.ehlo("client.test")
        assert s.mail("app@client.test")[0] == 250
        return [s.rcpt("r%d@example.test" % i)[0] for i in range(n)]
    finally:
        s.close()


def content(f, v):
    return f.pg.psql("SELECT content_hash FROM policy_versions "
                     "WHERE version = %d" % v)


def lose_head(f, v):
    """What a failover to a standby that lagged behind version v does."""
    f.pg.psql("BEGIN; DELETE FROM policy_versions WHERE version = %d; "
              "UPDATE policy_head SET version = %d; COMMIT" % (v, v - 1))


def open_mismatch(f, name):
    return f.pg.psql("SELECT count(*) FROM alerts WHERE kind = "
                     "'policy_mismatch' AND subject = '%s' AND "
                     "cleared_at IS NULL" % name) != "0"


def episodes(f, name):
    return int(f.pg.psql("SELECT count(*) FROM alerts WHERE kind = "
                         "'policy_mismatch' AND subject = '%s'" % name))


def main():
    with FleetOps("polid", heartbeat_ms=300,
                  controller_extra="silent_after_ms = 4000\n"
                  "health_interval_ms = 100\n") as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def run(f, up):
    f.relay_policy(up.port)
    f.ctl("limit", "set", "max_recipients", "50")
    v = f.policy_version()
    a = content(f, v)
    for n in ("n1", "n2"):
        f.start_relay(n)
    for n in ("n1", "n2"):
        f.wait_node_version(n, v)
        assert rcpt_codes(f, n, 3) == [250, 250, 250]

    # -- the database loses version v; the next apply reuses the number
    n1 = f.nodes["n1"]
    os.kill(n1.p.pid, signal.SIGSTOP)
    try:
        f.nodes["n2"].stop()
        lose_head(f, v)
        f.ctl("limit", "set", "max_recipients", "2")
        assert f.policy_version() == v
        b = content(f, v)
        assert a and b and a != b, (a, b)
    finally:
        os.kill(n1.p.pid, signal.SIGCONT)
    f.restart_node("n2")
    for n in ("n1", "n2"):
        wait_until(lambda: "fetching it" in f.nodes[n].output(), 10,
                   "%s to fetch version %d's new content" % (n, v))
        wait_until(lambda: rcpt_codes(f, n, 3)[2] != 250, 10,
                   "%s to enforce the new version %d" % (n, v))
        assert rcpt_codes(f, n, 3)[:2] == [250, 250]
    log = f.controllers[0].output()
    for n in ("n1", "n2"):
        assert ("node %s runs policy version %d with content %s" %
                (n, v, a[:12])) in log, log[-3000:]
        assert episodes(f, n) == 1, f.alerts()
        wait_until(lambda: not open_mismatch(f, n), 10,
                   "policy_mismatch of %s cleared" % n)

    # -- the database loses version v again, and nothing replaces it
    os.kill(n1.p.pid, signal.SIGSTOP)
    try:
        lose_head(f, v)
    finally:
        os.kill(n1.p.pid, signal.SIGCONT)
    f.wait_node_version("n1", v - 1)
    wait_until(lambda: rcpt_codes(f, "n1", 3) == [250, 250, 250], 10,
               "n1 back on version %d" % (v - 1))
    wait_until(lambda: "node n1 runs policy version %d (content %s), which "
               "this database does not have" % (v, b[:12])
               in f.controllers[0].output(), 10, "the controller to say so")
    assert episodes(f, "n1") == 2, f.alerts()
    wait_until(lambda: not open_mismatch(f, "n1"), 10,
               "policy_mismatch of n1 cleared")


if __name__ == "__main__":
    main()
