"""dlvkit.py - helpers for the delivery scenario tests.

A Node here is a sluice-node running from a policy cache written by
sluice-dlvpolicy (hops and routes, no controller), with a relay listener
for injecting mail.  An Upstream is tests/upstream/upstream.py, whose
JSON-lines record the tests poll (never sleep) to see what arrived.
"""
import json
import os
import re
import smtplib
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from fleet import BUILD, Proc, binary, free_port, wait_until  # noqa: E402
from scratch import scratch_dir  # noqa: E402

DLVPOLICY = os.path.abspath(os.path.join(BUILD, "tests", "sluice-dlvpolicy"))
SPOOL_LIST = os.path.abspath(os.path.join(BUILD, "tests", "spool_list"))
UPSTREAM = os.path.abspath(os.path.join(HERE, "..", "upstream",
                                        "upstream.py"))
TOKENEP = os.path.join(HERE, "tokenep.py")


def port_open(host, port):
    try:
        s = socket.create_connection((host, port), timeout=1)
        s.close()
        return True
    except OSError:
        return False


def make_ca(d, names=("localhost",)):
    """A CA and a server certificate for names, signed by it."""
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, "srv.key"), os.path.join(d, "srv.csr"),
                     os.path.join(d, "srv.crt"))
    ext = os.path.join(d, "ext.cnf")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj",
        "/CN=sluice test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=%s" % names[0])
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(
            ("IP:" if re.match(r"^[0-9.]+$", n) else "DNS:") + n
            for n in names) + "\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey",
        ca_key, "-CAcreateserial", "-out", crt, "-days", "2", "-extfile",
        ext)
    return ca_crt, crt, key


class Upstream:
    def __init__(self, d, name, *args, port=None, host="127.0.0.1"):
        self.dir = d
        self.name = name
        self.host = host
        self.port = port or free_port()
        self.record = os.path.join(d, "%s.jsonl" % name)
        self.args = list(args)
        self.proc = None

    def start(self, *extra):
        args = [sys.executable, UPSTREAM, "--host", self.host, "--port",
                str(self.port), "--record", self.record, "--name",
                self.name] + self.args + list(extra)
        self.proc = Proc(args, os.path.join(self.dir, "%s.log" % self.name)
                         ).start()
        wait_until(lambda: port_open(self.host, self.port), 10,
                   "upstream %s listening" % self.name)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def events(self):
        try:
            with open(self.record, encoding="utf-8") as f:
                return [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            return []

    def messages(self):
        return [e for e in self.events() if e["ev"] == "message"]

    def connections(self):
        return len([e for e in self.events() if e["ev"] == "connect"])

    def rcpts(self):
        return sorted(r for m in self.messages() for r in m["rcpts"])


def jsonl(path):
    """The records of a JSON-lines file ([] before it exists)."""
    try:
        with open(path) as f:
            return [json.loads(ln) for ln in f if ln.strip()]
    except FileNotFoundError:
        return []


class TokenEndpoint:
    """tests/delivery/tokenep.py: a loopback HTTPS OAuth2 token endpoint
    (XOAUTH2 hops); its tokens file is what upstream.py accepts."""

    def __init__(self, d, name, *args):
        self.dir = d
        self.name = name
        self.port = free_port()
        self.tokens = os.path.join(d, "%s.tokens" % name)
        self.record = os.path.join(d, "%s.jsonl" % name)
        self.args = list(args)
        self.proc = None

    def url(self, path):
        return "https://localhost:%d%s" % (self.port, path)

    def start(self, path, *extra):
        self.proc = Proc([sys.executable, TOKENEP, "--port", str(self.port),
                          "--url", self.url(path), "--path", path,
                          "--tokens", self.tokens, "--record", self.record]
                         + self.args + list(extra),
                         os.path.join(self.dir, "%s.log" % self.name)
                         ).start()
        wait_until(lambda: port_open("127.0.0.1", self.port), 10,
                   "token endpoint %s listening" % self.name)
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def requests(self):
        return jsonl(self.record)


class Node:
    def __init__(self, d, hops, routes, limits=None, extra=""):
        self.dir = d
        self.spool = os.path.join(d, "spool")
        os.makedirs(self.spool, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(d, "node.conf")
        self.log_path = os.path.join(d, "node.log")
        limits = dict(limits or {})
        limits.setdefault("retry_min_seconds", 1)
        limits.setdefault("retry_max_seconds", 2)
        args = [DLVPOLICY, os.path.join(self.spool, "policy.cache"),
                "--network", "127.0.0.0/8"]
        for h in hops:
            args += ["--hop", h]
        for r in routes:
            args += ["--route", r]
        for k, v in limits.items():
            args += ["--limit", "%s=%d" % (k, v)]
        subprocess.run(args, check=True)
        # Generous delivery timeouts (a loaded machine can keep a Python
        # upstream from greeting for seconds); a test that wants one to
        # fire sets its own in extra (the last value of a key wins).
        with open(self.conf, "w") as f:
            f.write("name = dlv\ntoken = test\n"
                    "controller = tcp://127.0.0.1:1\n"
                    "spool = %s\nhostname = relay.test\n"
                    "heartbeat_ms = 60000\n"
                    "listen = 127.0.0.1:%d relay\n"
                    "delivery_tick_ms = 50\n"
                    "delivery_timeout_ms = 15000\n"
                    "delivery_connect_timeout_ms = 5000\n"
                    "delivery_idle_ms = 2000\n"
                    "circuit_cooldown_ms = 1000\n"
                    "%s\n" % (self.spool, self.port, extra))
        self.proc = None

    def start(self):
        self.proc = Proc([binary("sluice-node"), "--config", self.conf,
                          "--debug"], self.log_path).start()
        wait_until(lambda: self.alive() and port_open("127.0.0.1",
                                                      self.port),
                   15, "node listening")
        return self

    def alive(self):
        if not self.proc.alive():
            raise AssertionError("node died:\n" + self.log())
        return True

    def stop(self):
        if self.proc:
            rc = self.proc.stop()
            self.proc = None
            return rc

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def send(self, sender, rcpts, data, smtp=None):
        """Relays one message through the node's listener; data is
        bytes with CRLF line ends.  Returns the queue id."""
        own = smtp is None
        if own:
            smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
            smtp.ehlo("client.test")
        code, resp = smtp.mail(sender)
        assert code == 250, (code, resp)
        for r in rcpts:
            code, resp = smtp.rcpt(r)
            assert code == 250, (code, resp)
        code, resp = smtp.data(data)
        assert code == 250, (code, resp)
        if own:
            smtp.quit()
        m = re.search(rb"queued as ([0-9A-Za-z]+)", resp)
        return m.group(1).decode() if m else resp.decode()

    def queue(self):
        """Queued messages, one line each (tests/spool/spool_list)."""
        r = subprocess.run([SPOOL_LIST, self.spool], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError("spool_list: %s" % r.stderr)
        return [ln for ln in r.stdout.splitlines()
                if ln.strip() and not ln.startswith("#")]

    def wait_log(self, pattern, timeout=15):
        return wait_until(lambda: self.alive() and
                          re.search(pattern, self.log()), timeout,
                          "node log matching %r" % pattern)

    def wait_queue_empty(self, timeout=20):
        return wait_until(lambda: self.alive() and re.search(
            r"removed", self.log()) and self.queue_len() == 0, timeout,
            "queue empty")

    def queue_len(self):
        return len(self.queue())

    def events(self):
        """Delivery events as the node logged them (journal lines)."""
        return re.findall(r"(\S+) delivery status=(\S+) to=<([^>]*)> "
                          r"hop=(\S+) relay=(\S+)", self.log())


RECEIVED_RE = re.compile(
    rb"Received: from (?P<helo>\S+) \(\[(?P<ip>[^\]]+)\]\)\r\n"
    rb"\tby (?P<by>\S+) \(sluice\) with (?P<proto>[A-Z0-9]+) "
    rb"id (?P<qid>[0-9A-F]+)(?:\r\n\tfor <(?P<rcpt>[^>]*)>)?;\r\n"
    rb"\t(?P<date>(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    rb"\d\d:\d\d:\d\d \+0000)\r\n")


def split_received(data):
    """The relayed data starts with the node's own Received: field
    (docs/smtp.md): returns (its regex match, the client's data).
    data: bytes or the upstream record's latin-1 str."""
    if isinstance(data, str):
        data = data.encode("latin-1")
    m = RECEIVED_RE.match(data)
    assert m, "no well-formed Received: first: %r" % data[:400]
    return m, data[m.end():]


def message(subject="test", body="hello\r\n", msgid=None, size=None):
    msgid = msgid or "<%d.%f@client.test>" % (os.getpid(), time.time())
    head = ("From: a@example.com\r\nTo: b@example.net\r\n"
            "Subject: %s\r\nMessage-ID: %s\r\n\r\n" % (subject, msgid))
    if size:
        line = "0123456789" * 7 + "\r\n"
        body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode()


class Scenario:
    """A temp dir and a list of things to stop, whatever happens."""

    def __init__(self, name):
        self.dir = scratch_dir("sluice-dlv-%s-" % name)
        self.things = []

    def add(self, thing):
        self.things.append(thing)
        return thing

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for t in reversed(self.things):
            try:
                t.stop()
            except Exception:
                pass
        if exc[0] is not None:
            for t in self.things:
                if isinstance(t, Node):
                    sys.stderr.write("--- node log\n%s\n" % t.log()[-20000:])
            sys.stderr.write("--- scenario dir %s\n" % self.dir)
