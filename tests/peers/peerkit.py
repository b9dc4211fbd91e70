"""peerkit.py - real SMTP software nobody here wrote, against a real fleet.

The peer tests (tests/peers.cmake, docs/testing.md "Real peers") run
Debian's swaks, msmtp, Postfix, Dovecot and Exim as clients of a node or
as the smart host a node delivers to.  Each test exits 77 (CTest: skipped,
with the reason printed) only when its peer is not installed.

    with PeerFleet("swaks") as pf:
        pf.start()                          # PostgreSQL, controller
        up = pf.upstream()                  # tests/upstream/upstream.py
        pf.relay(hop=["--host", "127.0.0.1", "--port", str(up.port),
                      "--tls", "none"])     # hop "down", route "*"
        pf.port                             # the node's relay listener:
                                            # STARTTLS, AUTH for USER only
"""
import os
import shutil
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for _d in ("fleet", "delivery", "dkim", "harness"):
    sys.path.insert(0, os.path.join(HERE, "..", _d))
from dlvkit import make_ca, split_received  # noqa: E402,F401
from fleet import Proc, free_port, wait_until  # noqa: E402,F401
from fleetkit import FleetOps, Upstream  # noqa: E402,F401

SKIP = 77
USER, PASSWORD = "app1", "s3cret-app1"
SENDER = "app1@example.com"
# 8-bit text in the body, undeclared by the header (as mail clients send it)
BODY_8BIT = "Gr\u00fc\u00dfe aus K\u00f6ln \u2013 \u65e5\u672c\u8a9e\r\n"


def require(*paths):
    """Exit 77 (skipped) unless every program exists."""
    missing = [p for p in paths
               if not (shutil.which(p) or os.access(p, os.X_OK))]
    if missing:
        print("skipped: %s not installed (scripts/deps.sh installs them)"
              % ", ".join(missing))
        sys.exit(SKIP)


def port_open(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def message(subject, body=BODY_8BIT, to="user@example.net"):
    """A message as a mail client writes it: CRLF, 8-bit UTF-8 body."""
    return ("From: App One <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Mon, 07 Dec 2026 05:00:00 +0000\r\n"
            "Message-ID: <%s.%d@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n%s"
            % (SENDER, to, subject, subject, os.getpid(), body)
            ).encode("utf-8")


class PeerFleet(FleetOps):
    """One controller, one node "n1" whose relay listener offers STARTTLS
    with a certificate from the test's own CA (ca.crt, for clients that
    verify) and relays for the user USER only (no network is allowed)."""

    def __init__(self, name):
        super().__init__("peer-" + name)
        self.others = []

    def __exit__(self, *exc):
        for t in reversed(self.others):
            try:
                t.stop()
            except Exception:
                pass
        return super().__exit__(*exc)

    def add(self, thing):
        self.others.append(thing)
        return thing

    def upstream(self, *args, name="up"):
        return self.add(Upstream(self.dir, name, *args)).start()

    def relay(self, hop, secret=None, extra_ctl=(), extra=""):
        """Policy (user USER, hop "down" from the `hop add` arguments hop,
        its AUTH secret on stdin, route *, then extra_ctl: (args, stdin)
        pairs), then node n1 (extra: more node.conf lines)."""
        tls_dir = os.path.join(self.dir, "node-tls")
        os.makedirs(tls_dir)
        self.ca, crt, key = make_ca(tls_dir, ("localhost", "127.0.0.1"))
        self.ctl("user", "add", USER, "--password-stdin", "--sender",
                 "*@example.com", input=PASSWORD + "\n")
        self.ctl("hop", "add", "down", *hop,
                 input=None if secret is None else secret + "\n")
        self.ctl("route", "set", "*", "down")
        for args in extra_ctl:
            self.ctl(*args[0], input=args[1])
        v = self.policy_version()
        self.start_relay("n1", extra="tls_cert = %s\ntls_key = %s\n%s"
                         % (crt, key, extra))
        self.wait_node_version("n1", v)
        self.port = self.smtp_ports["n1"]
        return self


class Daemon:
    """A peer daemon we start in the foreground and stop by its PID."""

    def __init__(self, args, log, port, what, env=None):
        self.proc = Proc(args, log, env=env).start()
        self.port = port
        wait_until(lambda: self.alive(what) and port_open(port), 20,
                   "%s listening on %d" % (what, port))

    def alive(self, what):
        if not self.proc.alive():
            raise AssertionError("%s exited:\n%s" % (what,
                                                      self.proc.output()))
        return True

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(args, **kw)
