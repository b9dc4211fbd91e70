"""Migrations from zero on an empty database; a second controller on the
same database (started at the same time as a third) is safe: all come up
and schema_migrations has exactly one row per migration."""
import glob
import os

from storelib import Env, check, run, wait_until

MIGRATIONS = sorted(glob.glob(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "controller",
    "migrations", "*.sql")))


def main():
    with Env("migrations") as env:
        c1 = env.controller()
        rows = env.pg.psql("SELECT version, name FROM schema_migrations "
                           "ORDER BY version").splitlines()
        want = ["%d|%s" % (int(os.path.basename(m)[:3]),
                           os.path.basename(m)[:-4]) for m in MIGRATIONS]
        check(rows == want, "schema_migrations %r, want %r" % (rows, want))
        check("applied migration 001_initial" in c1.log(),
              "first start applies the migrations")
        for t in ("nodes", "policy_versions", "policy_head", "events"):
            check(env.pg.psql("SELECT to_regclass('%s') IS NOT NULL" % t)
                  == "t", "table %s exists" % t)
        check(env.pg.psql("SELECT version FROM policy_head") == "0",
              "empty head is version 0")

        # Two more at once on the same database: the advisory lock
        # serialises them, nothing is applied twice.
        c2 = env.controller(wait=False)
        c3 = env.controller(wait=False)
        for c in (c2, c3):
            wait_until(c.started, 15,
                       "second controller start")
            check("applied migration" not in c.log(),
                  "no migration applied twice: %s" % c.log())
        check(env.pg.psql("SELECT count(*) FROM schema_migrations") ==
              str(len(MIGRATIONS)), "one row per migration")
        for c in (c1, c2, c3):
            check("node_list" in c.admin("node-list"), "all serve")
        # Two controllers from zero at the same moment on a fresh database.
        env.pg.create_db("race")
        r1 = env.controller(wait=False, db="race")
        r2 = env.controller(wait=False, db="race")
        for c in (r1, r2):
            wait_until(c.started, 15, "racing controller start")
        applied = sum(c.log().count("applied migration") for c in (r1, r2))
        check(applied == len(MIGRATIONS), "each migration applied once, "
              "by one of the two (%d)" % applied)
        check(env.pg.psql("SELECT count(*) FROM schema_migrations",
                          db="race") == str(len(MIGRATIONS)),
              "one row per migration after the race")
        # The admin socket is owner-only.
        sock = c1.admin_url[len("ipc://"):]
        check(os.stat(sock).st_mode & 0o777 == 0o600, "admin socket 0600")
        # Unknown config keys are refused with file:line.
        bad = env.controller("listen_everywhere = yes\n", wait=False)
        check(bad.proc.wait(10) != 0, "unknown key refused")
        check(":4: unknown key 'listen_everywhere'" in bad.log(),
              "file:line in the refusal: %s" % bad.log())
        env.controllers.remove(bad)
        # Clean stop with exit 0.
        for c in (c1, c2, c3, r1, r2):
            check(c.proc.stop() == 0, "SIGTERM exits 0")


run(main)
