"""pg.py - a real, throwaway PostgreSQL for tests.

initdb into a temporary directory, listen on a Unix socket there (and on a
loopback TCP port), trust authentication for the role "sluice".  PostgreSQL
refuses to run as root, so as root the server runs as the "postgres" system
user (created by Debian's postgresql package).

A server outlives the process that started it (pg_ctl daemonizes it), and
CTest kills a test that runs past its TIMEOUT with SIGKILL (its whole
process tree, no chance to clean up): so start() also leaves a guard, a
small detached process that waits for the test's process to go away and
then stops that server by the PID in its postmaster.pid (an immediate
shutdown).  After a normal stop the guard finds no server and just exits.

Used two ways:
  * suite fixture: `pg.py start STATE_FILE` / `pg.py stop STATE_FILE` (CTest
    FIXTURES_SETUP/CLEANUP), tests read the state file via SLUICE_TEST_PG;
  * per test: PgServer().start() for tests that stop and restart PostgreSQL.
"""
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

from scratch import scratch_dir  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"


_given_ports = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A loopback TCP port free now, and never one this process was given
    before: a test picks several ports before it starts the servers that
    bind them, and the kernel may hand a just-closed port out again.

    Chosen below the kernel's ephemeral range (ip_local_port_range): a
    port from bind(0) is an ephemeral one, and under load another test's
    outgoing connection took it between the pick and the server's bind
    (store_start_without_pg's PostgreSQL: "Address already in use" at
    ctest -j6).  Below that range, test processes claim their ports
    (_claim) so that two of them never pick the same one."""
    low = _ephemeral_low()
    top = max(low, 2048)
    bottom = max(1024, top - 22000)
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(bottom, top)
        if port in _given_ports or not _claim(port):
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _given_ports.add(port)
        return port
    raise RuntimeError("no fresh loopback port")


_CLAIMS = "/tmp/sluice-test-ports"
_CLAIM_TTL = 3600


def _claim(port):
    """Tests run in parallel processes, each picking ports well before
    its servers bind them: two picking the same random port (a birthday
    collision over a few dozen picks) made fleet_quota's PostgreSQL fail
    with "Address already in use".  A port is claimed by creating a file
    named after it (O_EXCL: one process wins); a claim older than an hour,
    longer than any test runs, is stale and may be taken again."""
    path = os.path.join(_CLAIMS, str(port))
    try:
        os.makedirs(_CLAIMS, mode=0o1777, exist_ok=True)
    except OSError:
        return True  # no claims possible here: the bind check only
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644))
            return True
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime < _CLAIM_TTL:
                    return False
                os.unlink(path)  # stale: one of the racers re-creates it
            except OSError:
                return False
        except OSError:
            return True
    return False


class PgServer:
    def __init__(self, base=None, port=None):
        self.base = base or scratch_dir("sluice-pg-")
        self.data = os.path.join(self.base, "data")
        self.sock = self.base
        self.port = port or free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, args, **kw):
        if self.as_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        return subprocess.run(args, check=True, **kw)

    def conninfo(self, db="sluice"):
        return "host=%s port=%d user=sluice dbname=%s" % (
            self.sock, self.port, db)

    def start(self, owner=None):
        """owner: the PID whose exit stops the server (default: this
        process; the suite fixture passes 0: no guard)."""
        owner = os.getpid() if owner is None else owner
        if owner and not getattr(self, "_guarded", False):
            start_guard(owner, self.data)
            self._guarded = True
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chmod(self.base, 0o755)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        if not os.path.exists(self.data):
            self._run([PG_BIN + "/initdb", "-D", self.data, "-U", "sluice",
                       "--auth=trust", "--no-sync", "-E", "UTF8",
                       "--locale=C"], stdout=subprocess.DEVNULL)
        self._run([PG_BIN + "/pg_ctl", "-D", self.data, "-w", "-s",
                   "-l", os.path.join(self.base, "log"), "-o",
                   "-k %s -p %d -h 127.0.0.1 -F -c max_connections=200 "
                   "-c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off" % (self.sock, self.port),
                   "start"])
        return self

    def stop(self, mode="fast"):
        args = [PG_BIN + "/pg_ctl", "-D", self.data, "-w", "-s", "-m", mode,
                "stop"]
        if self.as_root:
            args = ["runuser", "-u", "postgres", "--"] + args
        subprocess.run(args, stderr=subprocess.DEVNULL)

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, sql, db="sluice"):
        out = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
             self.conninfo(db), "-c", sql], check=True,
            capture_output=True, text=True)
        return out.stdout.strip()

    def create_db(self, name):
        self.psql('CREATE DATABASE "%s"' % name, db="postgres")
        return self.conninfo(name)

    def state(self):
        return {"base": self.base, "port": self.port}

    @classmethod
    def from_state(cls, st):
        return cls(base=st["base"], port=st["port"])


def _start_time(pid):
    """The kernel's start time of pid (tells a PID reused from it);
    None once it has exited (a zombie too)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if st[0] in ("Z", "X") else st[19]


def start_guard(owner, data):
    """A detached process (double fork, own session: out of the reach of
    CTest's kill of the test's process tree) that stops the PostgreSQL of
    data once owner has exited."""
    subprocess.run([sys.executable, os.path.abspath(__file__), "guard",
                    "%d:%s" % (owner, _start_time(owner)), data],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)


def _guard(owner, data):
    pid, started = owner.split(":", 1)
    pid = int(pid)
    names = {os.fsencode(data), os.fsencode(os.path.abspath(data))}
    data = os.path.abspath(data)
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.chdir("/")
    while _start_time(pid) == started:
        time.sleep(0.5)
    try:
        with open(os.path.join(data, "postmaster.pid")) as f:
            pm = int(f.readline())
        with open("/proc/%d/cmdline" % pm, "rb") as f:
            cmd = f.read().split(b"\0")
    except (OSError, ValueError):
        return                  # stopped already: the normal case
    # Only the postmaster of this data directory, nothing else with a
    # recycled PID.
    if os.path.basename(cmd[0]) == b"postgres" and names & set(cmd):
        os.kill(pm, signal.SIGQUIT)     # immediate shutdown


def suite_pg():
    """The suite's shared server (CTest fixture), or None."""
    path = os.environ.get("SLUICE_TEST_PG")
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return PgServer.from_state(json.load(f))


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "guard":
        _guard(path, sys.argv[3])
        return
    if cmd == "start":
        pg = PgServer().start(owner=0)  # stopped by the CLEANUP fixture
        with open(path, "w") as f:
            json.dump(pg.state(), f)
        print("postgresql up: %s" % pg.conninfo())
    elif cmd == "stop":
        with open(path) as f:
            PgServer.from_state(json.load(f)).destroy()
        os.unlink(path)
    else:
        sys.exit("usage: pg.py start|stop STATE_FILE | "
                 "guard PID:START DATA_DIR")


if __name__ == "__main__":
    main()
