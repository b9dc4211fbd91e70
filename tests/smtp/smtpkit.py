"""smtpkit.py - a sluice-node without a controller, and a raw SMTP client
that speaks in transcripts.

    node = Node("basic", networks=["127.0.0.1/32"]).start()
    c = node.connect()
    c.expect("220 ")
    c.send("EHLO x")               # C: EHLO x
    c.expect("250-", "250 ")       # S: 250-... / S: 250 ...

The node starts from a policy cache written by sluice-mkpolicy (the
controller address is unreachable on purpose).  Every wait polls.
"""
import os
import re
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
from fleet import BUILD, Proc, binary, free_port, wait_until  # noqa: E402,F401
from scratch import scratch_dir  # noqa: E402

MKPOLICY = os.path.abspath(os.path.join(BUILD, "tests", "sluice-mkpolicy"))
SPOOL_LIST = os.path.abspath(os.path.join(BUILD, "tests",
                                          "sluice-spool-list"))
VERBOSE = os.environ.get("SMTP_VERBOSE")


def make_cert(d):
    """A self-signed certificate for localhost, made with the openssl CLI."""
    crt, key = os.path.join(d, "smtp.crt"), os.path.join(d, "smtp.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    return crt, key


class Node:
    def __init__(self, name, networks=(), users=(), limits=None,
                 listeners=("relay",), tls=True, proxy=(), version=1):
        self.dir = scratch_dir("sluice-smtp-%s-" % name)
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool)
        self.name = name
        self.networks = list(networks)
        self.users = list(users)     # (name, password, senders[, rate])
        self.limits = dict(limits or {})
        self.version = version
        self.ports = {}
        self.tls = tls
        self.listen_lines = []
        for role in listeners:
            port = free_port()
            self.ports[role] = port
            extra = " proxy_protocol" if role in proxy else ""
            self.listen_lines.append("listen = 127.0.0.1:%d %s%s"
                                     % (port, role, extra))
        if tls:
            self.crt, self.key = make_cert(self.dir)
        self.write_policy()
        self.conf = os.path.join(self.dir, "node.conf")
        with open(self.conf, "w") as f:
            f.write("name = %s\n" % name)
            f.write("token = test\n")
            f.write("controller = tcp://127.0.0.1:1\n")
            f.write("spool = %s\n" % self.spool)
            f.write("hostname = mx.test\n")
            f.write("heartbeat_ms = 60000\n")
            for line in self.listen_lines:
                f.write(line + "\n")
            if tls:
                f.write("tls_cert = %s\ntls_key = %s\n" % (self.crt,
                                                           self.key))
        self.proc = None
        self.log_path = os.path.join(self.dir, "node.log")

    def write_policy(self):
        args = [MKPOLICY, os.path.join(self.spool, "policy.cache"),
                "--version", str(self.version)]
        for n in self.networks:
            args += ["--network", n]
        for u in self.users:
            spec = "%s:%s:%s" % (u[0], u[1], ",".join(u[2]))
            if len(u) > 3:
                spec += ":%d" % u[3]
            args += ["--user", spec]
        for k, v in self.limits.items():
            args += ["--limit", "%s=%d" % (k, v)]
        subprocess.run(args, check=True)

    def start(self):
        self.proc = Proc([binary("sluice-node"), "--config", self.conf,
                          "--debug"], self.log_path).start()
        for port in self.ports.values():
            wait_until(lambda: self._port_open(port), 15,
                       "node listening on %d" % port)
        wait_until(lambda: "policy version" in self.log(), 15,
                   "node started")
        return self

    def _port_open(self, port):
        if not self.proc.alive():
            raise AssertionError("node died:\n" + self.log())
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.close()
        return True

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.check_sanitizers()

    def check_sanitizers(self):
        """An ASan/UBSan build reports into the log: any report fails."""
        log = self.log()
        for needle in ("AddressSanitizer", "LeakSanitizer",
                       "runtime error:"):
            if needle in log:
                raise AssertionError("%s in %s" % (needle, self.log_path))

    def kill(self):
        if self.proc:
            self.proc.kill()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10):
        return wait_until(lambda: re.search(pattern, self.log()), timeout,
                          "log line matching %r" % pattern)

    def connect(self, role="relay", tls=False, timeout=10, source=None):
        return Client(("127.0.0.1", self.ports[role]), tls=tls,
                      timeout=timeout, source=source)

    def queued(self):
        """Queue ids in the spool, through the spool API (the node must
        not be running: spool_open recovers like a restart)."""
        r = subprocess.run([SPOOL_LIST, self.spool], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("spool_list failed: %s" % r.stderr)
        return set(line.split()[0] for line in r.stdout.splitlines()
                   if line.strip())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        if exc[0] is not None:
            sys.stderr.write("--- node log %s\n%s" % (self.log_path,
                                                      self.log()))


class Client:
    """A line-level SMTP client: send() raw lines, expect() replies."""

    def __init__(self, addr, tls=False, timeout=10, sock=None, source=None):
        self.sock = sock or socket.create_connection(
            addr, timeout=timeout,
            source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        if tls:
            self.sock = self._ctx().wrap_socket(self.sock,
                                                server_hostname="localhost")
        self.buf = b""

    @staticmethod
    def _ctx():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def starttls(self):
        self.sock = self._ctx().wrap_socket(self.sock,
                                            server_hostname="localhost")
        self.buf = b""

    def tls_version(self):
        return self.sock.version()

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        if VERBOSE:
            sys.stderr.write("C: %r\n" % data)
        self.sock.sendall(data)

    def send(self, line):
        self.send_raw(line.encode() + b"\r\n" if isinstance(line, str)
                      else line + b"\r\n")

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        if VERBOSE:
            sys.stderr.write("S: %s\n" % line.decode(errors="replace"))
        return line.decode(errors="replace")

    def reply(self):
        """One whole (possibly multi-line) reply as a list of lines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def expect(self, prefix):
        """S: the next reply's last line starts with prefix."""
        r = self.reply()
        if not r[-1].startswith(prefix):
            raise AssertionError("expected %r, got %r" % (prefix, r))
        return r

    def closed(self, timeout=10):
        """True when the server closed the connection (EOF, no data)."""
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(1)
        except (ConnectionResetError, ssl.SSLError):
            return True
        return d == b""

    def ehlo(self, name="client.test"):
        self.send("EHLO " + name)
        return self.expect("250 ")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def message(subject="test", msgid=None, body="hello\r\n", size=None):
    msgid = msgid or "<%s.%d@client.test>" % (subject.replace(" ", "-"),
                                              time.time_ns())
    head = ("From: a@example.com\r\nTo: b@example.net\r\n"
            "Subject: %s\r\nMessage-ID: %s\r\n\r\n" % (subject, msgid))
    if size is not None:
        line = "x" * 76 + "\r\n"
        body = line * max(1, (size - len(head)) // len(line))
    return head + body


def send_mail(c, sender="a@example.com", rcpts=("b@example.net",),
              body=None, expect="250 "):
    """A whole transaction; returns the final reply's last line."""
    c.send("MAIL FROM:<%s>" % sender)
    c.expect("250 ")
    for r in rcpts:
        c.send("RCPT TO:<%s>" % r)
        c.expect("250 ")
    c.send("DATA")
    c.expect("354 ")
    data = body if body is not None else message()
    c.send_raw(data.encode() if isinstance(data, str) else data)
    c.send_raw(b".\r\n")
    return c.expect(expect)[-1]


def queue_id(reply_line):
    m = re.search(r"queued as (\S+)", reply_line)
    assert m, reply_line
    return m.group(1)


def normal_message_goes_through(c):
    """After every hostile case: a clean transaction still gets a 250."""
    c.send("RSET")
    c.expect("250 ")
    return queue_id(send_mail(c))
