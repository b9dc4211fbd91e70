"""A controller started while PostgreSQL is down (issue 11).

With an invalid config (a plain tcp:// node endpoint on a non-loopback
address, or a listen URL it cannot parse) it exits at once with a clear
error instead of waiting for the database first.  With a valid config
both endpoints answer "unavailable" at once (not nothing), and it serves
normally as soon as PostgreSQL comes up."""
import os
import time

from storelib import (Env, Proc, binary, check, enroll, error_code, free_port,
                      run, wait_until)


def bad_controller(env, name, node_listen):
    conf = os.path.join(env.dir, "%s.conf" % name)
    with open(conf, "w") as f:
        f.write('database = "%s"\n' % env.pg.conninfo("sluice"))
        f.write("node_listen = %s\n" % node_listen)
        f.write("admin_listen = ipc://%s/%s.sock\n" % (env.dir, name))
    os.chmod(conf, 0o600)
    p = Proc([binary("sluice-controller"), "--config", conf],
             os.path.join(env.dir, "%s.log" % name)).start()
    t0 = time.monotonic()
    rc = p.wait(10)
    return rc, time.monotonic() - t0, p.output()


def main():
    with Env("nopg") as env:
        env.pg.stop("fast")
        rc, took, out = bad_controller(
            env, "plain", "tcp://0.0.0.0:%d" % free_port())
        check(rc == 1 and took < 5, "plain tcp: exit %r after %.1fs" % (
            rc, took))
        check("refusing tcp://0.0.0.0" in out, "says why: %r" % out)
        check("PostgreSQL" not in out, "before connecting: %r" % out)
        rc, took, out = bad_controller(env, "garbage", "nonsense://x")
        check(rc == 1 and took < 5, "bad URL: exit %r after %.1fs" % (
            rc, took))

        c = env.controller(wait=False)
        wait_until(lambda: "waiting for PostgreSQL" in c.log(), 10,
                   "controller waits for PostgreSQL")
        t0 = time.monotonic()
        r = c.admin("node-list", timeout_ms=3000)
        took = time.monotonic() - t0
        check(error_code(r) == "unavailable", "admin: %r" % r)
        check("store is unavailable" in r["error"]["message"], repr(r))
        check(took < 1.5, "answered at once: %.2fs" % took)
        r = c.node("hello", "n1", "x" * 43, timeout_ms=3000)
        check(error_code(r) == "unavailable", "node endpoint: %r" % r)

        env.pg.start()
        wait_until(c.started, 15, "controller starts serving")
        token = enroll(c, "n1")
        check("hello" in c.node("hello", "n1", token), "serves nodes")


run(main)
