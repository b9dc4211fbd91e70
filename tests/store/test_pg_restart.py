"""PostgreSQL stopped and restarted under a running controller: while it
is down both endpoints answer "unavailable" (promptly, no crash); after it
is back the same controller process serves again, without a restart."""
from storelib import Env, check, enroll, error_code, run, wait_until


def main():
    with Env("pgrestart") as env:
        c = env.controller()
        token = enroll(c, "n1")
        check("hello" in c.node("hello", "n1", token), "hello before")
        pid = c.proc.p.pid

        env.pg.stop("fast")
        for _ in range(3):
            r = c.node("hello", "n1", token)
            check(error_code(r) == "unavailable", "node while down: %r" % r)
            r = c.admin("node-list")
            check(error_code(r) == "unavailable", "admin while down: %r" % r)
        r = c.node("events", "n1", token, 1, 2)
        check(error_code(r) == "unavailable", "events while down")
        check("cannot connect to PostgreSQL" in c.log() or
              "lost PostgreSQL" in c.log(), "loss is logged")

        env.pg.start()
        wait_until(lambda: "hello" in c.node("hello", "n1", token), 15,
                   "node endpoint back")
        wait_until(lambda: "node_list" in c.admin("node-list"), 15,
                   "admin endpoint back")
        r = c.node("events", "n1", token, 1, 2)
        check(r["report_events"]["acked_seq"] == 2, "events after: %r" % r)
        r = c.admin("policy-apply", 0, "after restart", "test",
                    "net:10.0.0.0/8")
        check(r.get("policy_apply", {}).get("version") == 1,
              "apply after restart: %r" % r)
        check(c.proc.alive() and c.proc.p.pid == pid, "same process")

        # A second outage, this time an immediate (crash-like) stop.
        env.pg.stop("immediate")
        check(error_code(c.node("hello", "n1", token)) == "unavailable",
              "down again")
        env.pg.start()
        wait_until(lambda: "hello" in c.node("hello", "n1", token), 15,
                   "back again")
        check("connected to PostgreSQL again" in c.log(), "recovery logged")

        # A controller started while PostgreSQL is down waits for it.
        env.pg.stop("fast")
        c2 = env.controller(wait=False)
        wait_until(lambda: "cannot connect to PostgreSQL" in c2.log(), 10,
                   "second controller waits")
        check(c2.proc.alive() and "controller started" not in c2.log(),
              "no endpoints before the schema is checked")
        env.pg.start()
        wait_until(c2.started, 15, "second controller starts")
        check("hello" in c2.node("hello", "n1", token), "serves")


run(main)
