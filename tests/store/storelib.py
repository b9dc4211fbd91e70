"""storelib.py - shared by the store tests: a throwaway PostgreSQL, a
controller process started and stopped by PID, and rpc_probe (the C nng
client in this directory) to talk to both endpoints."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))
from fleet import Proc, binary, wait_until, BUILD  # noqa: E402,F401
from pg import PgServer, free_port  # noqa: E402
from scratch import scratch_dir  # noqa: E402

PROBE = os.path.abspath(os.path.join(BUILD, "tests", "store", "rpc_probe"))


class Env:
    """PostgreSQL in a temp dir plus controllers on it."""

    def __init__(self, name):
        self.dir = scratch_dir("sluice-store-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.pg = PgServer(base=os.path.join(self.dir, "pg"))
        os.makedirs(self.pg.base)
        self.controllers = []

    def __enter__(self):
        self.pg.start()
        self.pg.create_db("sluice")
        return self

    def __exit__(self, *exc):
        bad = []
        for c in self.controllers:
            # 0 on SIGTERM; sanitizer reports (leaks at exit) make it not 0.
            if c.proc.stop() != 0:
                bad.append(c)
        self.pg.stop("immediate")
        if exc[0] is not None:
            for c in self.controllers:
                sys.stderr.write("--- %s\n%s" % (c.proc.log_path,
                                                 c.proc.output()))
        elif bad:
            for c in bad:
                sys.stderr.write("--- %s\n%s" % (c.proc.log_path,
                                                 c.proc.output()))
            raise AssertionError("controller did not exit 0 on SIGTERM")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def controller(self, extra="", wait=True, db="sluice"):
        c = Controller(self, len(self.controllers), extra, db)
        self.controllers.append(c)
        c.start(wait)
        return c


class Controller:
    def __init__(self, env, idx, extra="", db="sluice"):
        self.env = env
        self.node_url = "tcp://127.0.0.1:%d" % free_port()
        self.admin_url = "ipc://%s/admin%d.sock" % (env.dir, idx)
        self.conf = os.path.join(env.dir, "controller%d.conf" % idx)
        with open(self.conf, "w") as f:
            f.write('database = "%s"\n' % env.pg.conninfo(db))
            f.write("node_listen = %s\n" % self.node_url)
            f.write("admin_listen = %s\n" % self.admin_url)
            f.write(extra)
        self.proc = Proc([binary("sluice-controller"), "--config",
                          self.conf],
                         os.path.join(env.dir, "controller%d.log" % idx))

    def start(self, wait=True):
        self.proc.start()
        if wait:
            wait_until(self.started, 15, "controller start")
            wait_until(lambda: "node_list" in self.admin("node-list"),
                       10, "admin endpoint")
        return self

    def started(self):
        if not self.proc.alive():
            raise SystemExit("controller exited: %s" % self.log())
        return "controller started" in self.log()

    def log(self):
        return self.proc.output()

    def node(self, *args, timeout_ms=5000):
        return probe(self.node_url, "node", *args, timeout_ms=timeout_ms)

    def admin(self, *args, timeout_ms=5000):
        return probe(self.admin_url, "admin", *args, timeout_ms=timeout_ms)


def probe(url, kind, *args, timeout_ms=5000):
    """The reply as a dict ({"noreply": ...} when none came)."""
    env = dict(os.environ, RPC_PROBE_TIMEOUT_MS=str(timeout_ms))
    r = subprocess.run([PROBE, url, kind] + [str(a) for a in args],
                       capture_output=True, text=True, env=env,
                       timeout=timeout_ms / 1000 + 30)
    if r.returncode not in (0, 3):
        raise AssertionError("rpc_probe %s %s failed (%d): %s%s" % (
            kind, " ".join(map(str, args)), r.returncode, r.stdout,
            r.stderr))
    return json.loads(r.stdout)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def error_code(reply):
    return (reply.get("error") or {}).get("code")


def enroll(c, name):
    r = c.admin("node-add", name)
    check("node_add" in r, "node add %s: %r" % (name, r))
    return r["node_add"]["token"]


def run(main):
    t0 = time.monotonic()
    main()
    print("ok (%.1fs)" % (time.monotonic() - t0))
