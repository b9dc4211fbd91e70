"""fleetkit.py - helpers for the fleet-operations scenario tests (issue 5).

A FleetOps is the harness Fleet (real PostgreSQL, controller, nodes,
sluicectl) whose controllers take extra config (silent_after_ms,
metrics_listen, ...), with relay nodes that deliver to a test upstream
(tests/upstream/upstream.py).  Every wait polls; nothing sleeps to
synchronise.
"""
import base64
import http.server
import json
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
sys.path.insert(0, os.path.join(HERE, "..", "delivery"))
from fleet import BUILD, Fleet, free_port, wait_until  # noqa: E402,F401
from dlvkit import Upstream, port_open  # noqa: E402,F401

SPOOL_LIST = os.path.abspath(os.path.join(BUILD, "tests", "spool_list"))


class WebhookSink:
    """An HTTP server on loopback that records, in order, the JSON bodies
    the controller's alert webhook posts to it."""

    def __init__(self):
        posts = self.posts = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                assert self.headers.get("Content-Type") == "application/json"
                posts.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server.server_address[1], path)

    def stop(self):
        self.server.shutdown()



class FleetOps(Fleet):
    def __init__(self, name, heartbeat_ms=200, controller_extra=""):
        super().__init__(name=name, heartbeat_ms=heartbeat_ms)
        self.controller_extra = controller_extra
        self.smtp_ports = {}
        self.metrics_ports = {}

    def controller_conf(self, node_url=None, admin_url=None, idx=0):
        path = super().controller_conf(node_url, admin_url, idx)
        with open(path, "a") as f:
            f.write(self.controller_extra)
        return path

    def __exit__(self, *exc):
        super().__exit__(*exc)
        if exc[0] is None:
            self.check_sanitizers()

    def check_sanitizers(self):
        """Fail on any sanitizer report in a controller or node log."""
        procs = list(self.controllers) + list(self.nodes.values())
        for p in procs:
            out = p.output()
            for needle in ("AddressSanitizer", "LeakSanitizer",
                           "runtime error:", "UndefinedBehaviorSanitizer"):
                if needle in out:
                    raise AssertionError("sanitizer report in %s:\n%s" % (
                        p.log_path, out[-6000:]))

    def start_relay(self, name, extra="", controllers=None, token=None):
        """A node with a relay listener and fast delivery timers."""
        port = self.smtp_ports.get(name) or free_port()
        mport = self.metrics_ports.get(name) or free_port()
        self.smtp_ports[name] = port
        self.metrics_ports[name] = mport
        # The delivery timeouts are generous: on a loaded 2-core box a
        # Python upstream can take seconds to greet, and a probe that
        # times out reopens a circuit for minutes (fleet_failback did).
        # A test that wants a timeout to fire sets its own in extra.
        conf = ("listen = 127.0.0.1:%d relay\n"
                "metrics_listen = 127.0.0.1:%d\n"
                "hostname = %s.test\n"
                "delivery_tick_ms = 50\n"
                "delivery_timeout_ms = 15000\n"
                "delivery_connect_timeout_ms = 5000\n"
                "delivery_idle_ms = 1000\n"
                "circuit_failures = 2\n"
                "circuit_cooldown_ms = 1000\n" % (port, mport, name)) + extra
        n = self.start_node(name, token=token, extra=conf,
                            controllers=controllers)
        wait_until(lambda: n.alive() and port_open("127.0.0.1", port), 15,
                   "node %s listening" % name)
        return n

    def relay_policy(self, upstream_port, limits=None):
        self.ctl("network", "allow", "127.0.0.0/8")
        self.ctl("hop", "add", "up", "--host", "127.0.0.1", "--port",
                 str(upstream_port), "--tls", "none")
        self.ctl("route", "set", "*", "up")
        for k, v in (limits or {}).items():
            self.ctl("limit", "set", k, str(v))
        return self.policy_version()

    def send(self, name, sender, rcpts, subject="test"):
        """One message through the node's relay listener; queue id."""
        s = smtplib.SMTP("127.0.0.1", self.smtp_ports[name], timeout=30)
        try:
            s.ehlo("client.test")
            data = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
                    "Message-ID: <%s.%d@client.test>\r\n\r\nhello\r\n" % (
                        sender, rcpts[0], subject, subject, os.getpid()))
            code, resp = s.mail(sender)
            assert code == 250, (code, resp)
            for r in rcpts:
                code, resp = s.rcpt(r)
                assert code == 250, (code, resp)
            code, resp = s.data(data.encode())
            assert code == 250, (code, resp)
            s.quit()
        finally:
            s.close()
        m = re.search(rb"queued as ([0-9A-Za-z]+)", resp)
        return m.group(1).decode() if m else resp.decode()

    def spool(self, name):
        """{queue id: state} of a node's spool, read from disk."""
        d = os.path.join(self.dir, name, "spool")
        r = subprocess.run([SPOOL_LIST, d], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise AssertionError("spool_list: %s" % r.stderr)
        out = {}
        for ln in r.stdout.splitlines():
            m = re.match(r"^(\S+) state=(\S+)", ln)
            if m:
                out[m.group(1)] = m.group(2)
        return out

    def status(self):
        return self.ctl_json("status")

    def node(self, name):
        for n in self.status()["nodes"]:
            if n["name"] == name:
                return n
        return None

    def alerts(self, open_only=False):
        args = ["alerts", "--limit", "1000"]
        if open_only:
            args.append("--open")
        return self.ctl_json(*args)["alerts"]

    def open_alert(self, kind, subject):
        return [a for a in self.alerts(True)
                if a["kind"] == kind and a["subject"] == subject]


def assert_raised_once(alerts):
    """The invariant behind "raised once": for each (kind, subject) the
    episodes never overlap - at most one open, and each raise comes after
    the previous one was cleared.  Returns {(kind, subject): [alerts]}."""
    by = {}
    for a in alerts:
        by.setdefault((a["kind"], a["subject"]), []).append(a)
    for key, rows in by.items():
        rows.sort(key=lambda a: (a["raised_at"], a["id"]))
        assert sum(a["cleared_at"] is None for a in rows) <= 1, rows
        for prev, nxt in zip(rows, rows[1:]):
            assert prev["cleared_at"] is not None, (key, rows)
            assert nxt["raised_at"] >= prev["cleared_at"], (key, rows)
    return by


def http_get(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=5) as r:
        assert r.status == 200, r.status
        ctype = r.headers.get("Content-Type", "")
        assert ctype.startswith("text/plain"), ctype
        return r.read().decode()


_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_prometheus(text):
    """A strict parser of the text exposition format (0.0.4): every sample
    belongs to a family whose HELP and TYPE came first, names and labels
    are valid, values are numbers, a family appears in one block only,
    counters end in _total.  Returns {(name, frozenset(labels)): value}."""
    assert text.endswith("\n"), "exposition must end with a newline"
    samples, families, seen_done = {}, {}, set()
    current = None
    for no, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (no, line)
        assert line.strip() == line and line, "blank/padded " + where
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert parts[0] == "#" and len(parts) >= 3, where
            kind, name = parts[1], parts[2]
            assert kind in ("HELP", "TYPE"), where
            assert _NAME.match(name), "bad name " + where
            assert name.startswith("sluice_"), "not sluice_* " + where
            if name != current:
                assert name not in seen_done and name not in families, \
                    "family %s split or repeated, %s" % (name, where)
                if current is not None:
                    seen_done.add(current)
                current = name
                families[name] = {}
            assert kind not in families[name], "repeated %s %s" % (
                kind, where)
            assert len(parts) == 4 and parts[3], "empty " + where
            if kind == "TYPE":
                assert "HELP" in families[name], "TYPE before HELP " + where
                assert parts[3] in _TYPES, where
                if parts[3] == "counter":
                    assert name.endswith("_total"), "counter name " + where
            families[name][kind] = parts[3]
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        assert m, "bad sample " + where
        name, labels, value = m.group(1), m.group(2), m.group(3)
        # a histogram's samples are NAME_bucket{le=...}, NAME_sum, NAME_count
        is_hist = current is not None and families[current].get(
            "TYPE") == "histogram" and name in (
                current + "_bucket", current + "_sum", current + "_count")
        assert name == current or is_hist, "sample outside its family " + \
            where
        assert "TYPE" in families[current] and "HELP" in families[current], \
            where
        lab = []
        if labels:
            inner = labels[1:-1]
            pos = 0
            while pos < len(inner):
                lm = _LABEL.match(inner, pos)
                assert lm, "bad labels " + where
                lab.append((lm.group(1), lm.group(2)))
                pos = lm.end()
                if pos < len(inner):
                    assert inner[pos] == ",", "bad labels " + where
                    pos += 1
        v = float(value)  # raises on a non-number
        key = (name, frozenset(lab))
        assert key not in samples, "duplicate sample " + where
        samples[key] = v
    return samples


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def main_with_upstream(name, run, **fleet_kw):
    """A test's main: FleetOps(name, **fleet_kw) started, one Upstream "up",
    run(f, up), then "ok"; the upstream stopped whatever happens."""
    with FleetOps(name, **fleet_kw) as f:
        f.start()
        up = Upstream(f.dir, "up")
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def subjects(up):
    """The sorted Subject: of every message an Upstream received."""
    return sorted(re.search(r"Subject: (\S+)", m["data"]).group(1)
                  for m in up.messages())


def starttls_auth(s, user):
    """STARTTLS (any certificate) and AUTH PLAIN with password pw-USER on
    an smtplib session that has said EHLO; nothing when user is None."""
    if user is None:
        return
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("client.test")
    cred = base64.b64encode(("\0%s\0pw-%s" % (user, user)).encode())
    code, resp = s.docmd("AUTH", "PLAIN " + cred.decode())
    assert code == 235, (code, resp)


def submit_auth(port, sender, rcpt, subject, user=None, from_name=""):
    """One message to a node's listener, with STARTTLS + AUTH PLAIN (password
    pw-USER) when user is set; its queue id."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        s.ehlo("client.test")
        starttls_auth(s, user)
        data = ("From: %s<%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
                "Date: Mon, 07 Dec 2026 05:00:00 +0000\r\n"
                "Message-ID: <%s.%d@client.test>\r\n\r\nhello %s\r\n" % (
                    from_name + " " if from_name else "", sender, rcpt,
                    subject, subject, os.getpid(), subject))
        code, resp = s.mail(sender)
        assert code == 250, (code, resp)
        code, resp = s.rcpt(rcpt)
        assert code == 250, (code, resp)
        code, resp = s.data(data.encode())
        assert code == 250, (code, resp)
        s.quit()
    finally:
        s.close()
    return re.search(rb"queued as ([0-9A-Za-z]+)", resp).group(1).decode()
