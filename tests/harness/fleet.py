"""fleet.py - run real sluice processes for scenario tests.

Controller, nodes and sluicectl are the built binaries (SLUICE_BUILD points
at the CMake build directory).  Every process is started by PID and stopped
by PID; every wait polls a condition with a deadline instead of sleeping.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg import PgServer, free_port  # noqa: E402
from scratch import scratch_dir  # noqa: E402

BUILD = os.environ.get("SLUICE_BUILD", os.path.join(
    os.path.dirname(__file__), "..", "..", "build"))


def binary(name):
    sub = {"sluice-node": "node", "sluice-controller": "controller",
           "sluicectl": "ctl"}[name]
    return os.path.abspath(os.path.join(BUILD, sub, name))


# Every deadline of wait_until is multiplied by this (SLUICE_WAIT_SCALE,
# default 3): the deadlines in the tests are what an idle machine needs
# with a margin, and CI's 2-core box runs two tests at a time next to
# their PostgreSQL servers, controllers and sanitizer builds.  A condition
# that holds returns at once whatever the scale; only a failure waits
# longer.  Timed *measurements* (a rate over a window) are not waits and
# do not use this.
WAIT_SCALE = float(os.environ.get("SLUICE_WAIT_SCALE", "3"))


def slack(seconds):
    """An upper bound on a measured duration (a property such as "silent
    within three heartbeats"), scaled like every wait_until deadline: it
    still fails a hang or a missing timeout, not a loaded machine."""
    return seconds * WAIT_SCALE


def wait_until(cond, timeout=10.0, what="condition", interval=0.05):
    """Poll cond() until it returns a true value; fail with `what`."""
    timeout *= WAIT_SCALE
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except Exception as e:  # condition not ready yet
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                         % (timeout, what, last))


class Proc:
    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log_path = log_path
        self.env = env
        self.p = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.args, stdout=self.log,
                                  stderr=subprocess.STDOUT, env=self.env)
        return self

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p is None or self.p.poll() is not None:
            return self.p.returncode if self.p else None
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    def kill(self):
        return self.stop(signal.SIGKILL)

    def wait(self, timeout=10):
        return self.p.wait(timeout)

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Fleet:
    """A controller on a private PostgreSQL plus any number of nodes."""

    def __init__(self, name="fleet", heartbeat_ms=200, pg=None):
        self.dir = scratch_dir("sluice-%s-" % name)
        # PostgreSQL runs as the postgres user when we are root: it must be
        # able to reach its directory below this one.
        os.chmod(self.dir, 0o755)
        self.heartbeat_ms = heartbeat_ms
        self.pg = pg or PgServer(base=os.path.join(self.dir, "pg"))
        if pg is None:
            os.makedirs(self.pg.base)
        self.node_url = "tcp://127.0.0.1:%d" % free_port()
        self.admin_url = "ipc://%s/admin.sock" % self.dir
        self.controllers = []
        self.nodes = {}
        self.tokens = {}
        self.extras = {}

    # -- PostgreSQL and controllers
    def start_pg(self):
        self.pg.start()
        if self.pg.psql("SELECT count(*) FROM pg_database WHERE "
                        "datname = 'sluice'", db="postgres") == "0":
            self.pg.create_db("sluice")
        return self

    def controller_conf(self, node_url=None, admin_url=None, idx=0):
        path = os.path.join(self.dir, "controller%d.conf" % idx)
        with open(path, "w") as f:
            f.write("database = \"%s\"\n" % self.pg.conninfo())
            f.write("node_listen = %s\n" % (node_url or self.node_url))
            f.write("admin_listen = %s\n" % (admin_url or self.admin_url))
        os.chmod(path, 0o640)   # it names the database: not for everyone
        return path

    def start_controller(self, node_url=None, admin_url=None, wait=True):
        idx = len(self.controllers)
        conf = self.controller_conf(node_url, admin_url, idx)
        c = Proc([binary("sluice-controller"), "--config", conf],
                 os.path.join(self.dir, "controller%d.log" % idx)).start()
        self.controllers.append(c)
        if wait:
            wait_until(lambda: self.ctl("node", "list", check=False)
                       .returncode == 0, what="controller admin endpoint")
        return c

    def start(self):
        self.start_pg()
        self.start_controller()
        return self

    # -- sluicectl
    def ctl(self, *args, input=None, check=True, json_out=False, env=None):
        argv = [binary("sluicectl"), "--admin", self.admin_url]
        if json_out:
            argv.append("--json")
        argv += list(args)
        e = dict(os.environ)
        if env:
            e.update(env)
        r = subprocess.run(argv, input=input, capture_output=True, text=True,
                           env=e, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError("sluicectl %s failed (%d): %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def ctl_json(self, *args, **kw):
        return json.loads(self.ctl(*args, json_out=True, **kw).stdout)

    # -- nodes
    def add_node(self, name):
        return self.ctl_json("node", "add", name)["token"]

    def node_conf(self, name, token, extra="", controllers=None):
        ndir = os.path.join(self.dir, name)
        os.makedirs(os.path.join(ndir, "spool"), exist_ok=True)
        path = os.path.join(ndir, "node.conf")
        with open(path, "w") as f:
            f.write("name = %s\n" % name)
            f.write("token = %s\n" % token)
            for url in controllers or [self.node_url]:
                f.write("controller = %s\n" % url)
            f.write("spool = %s\n" % os.path.join(ndir, "spool"))
            f.write("heartbeat_ms = %d\n" % self.heartbeat_ms)
            f.write(extra)
        os.chmod(path, 0o640)   # it holds the enrollment token
        return path

    def start_node(self, name, token=None, extra="", controllers=None):
        if token is None:
            token = self.add_node(name)
        self.tokens[name] = token
        self.extras[name] = (extra, controllers)
        conf = self.node_conf(name, token, extra, controllers)
        n = Proc([binary("sluice-node"), "--config", conf],
                 os.path.join(self.dir, name, "node.log")).start()
        self.nodes[name] = n
        return n

    def restart_node(self, name, sig=None):
        """Stop (SIGTERM, or sig) and start again with the same config."""
        if sig is None:
            self.nodes[name].stop()
        else:
            self.nodes[name].stop(sig)
        extra, controllers = self.extras[name]
        return self.start_node(name, self.tokens[name], extra, controllers)

    def node_status(self, name):
        for n in self.ctl_json("node", "list")["nodes"]:
            if n["name"] == name:
                return n
        return None

    def wait_node_version(self, name, version, timeout=10):
        return wait_until(
            lambda: (self.node_status(name) or {}).get("policy_version", 0)
            >= version and self.node_status(name)["state"] == "up",
            timeout, "node %s to run policy version %d" % (name, version))

    def policy_version(self):
        return self.ctl_json("policy", "history")["versions"][0]["version"]

    def stop(self):
        for n in self.nodes.values():
            n.stop()
        for c in self.controllers:
            c.stop()
        self.pg.stop("immediate")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        if exc[0] is not None:
            for c in self.controllers:
                sys.stderr.write("--- %s\n%s" % (c.log_path, c.output()))
            for name, n in self.nodes.items():
                sys.stderr.write("--- %s\n%s" % (n.log_path, n.output()))
