"""consolekit.py - helpers for the web console tests (issue 18).

A ConsoleFleet is a FleetOps (real PostgreSQL, controller, relay nodes,
test upstream) whose controller serves the console over HTTPS with a
certificate from a throwaway CA.  A Console is one browser-like client:
its own cookie, the CSRF token it got at login, every response body kept
(the secrets test searches them all).
"""
import http.client
import json
import os
import ssl
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fleet"))
from fleetkit import FleetOps, Upstream, free_port, wait_until  # noqa
from dlvkit import make_ca  # noqa: E402


def make_ca_for_console(d):
    """A CA and a certificate for 127.0.0.1 (the console's HTTPS)."""
    cdir = os.path.join(d, "console-tls")
    os.makedirs(cdir, exist_ok=True)
    return make_ca(cdir, names=("127.0.0.1", "localhost"))


class ConsoleFleet(FleetOps):
    def __init__(self, name, extra=""):
        super().__init__(name)
        self.console_port = free_port()
        self.ca, crt, key = make_ca_for_console(self.dir)
        self.controller_extra = (
            "console_listen = 127.0.0.1:%d\n"
            "console_cert = %s\nconsole_key = %s\n"
            "console_poll_ms = 500\n" % (self.console_port, crt, key)) + extra

    def add_operator(self, name, role, password):
        self.ctl("console", "user", "add", name, "--role", role,
                 "--password-stdin", input=password + "\n")

    def console(self):
        return Console(self.console_port, self.ca)

    def audit(self):
        return self.ctl_json("console", "audit", "--limit", "1000")["audit"]


class Console:
    def __init__(self, port, ca):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.cookie = None
        self.csrf = None
        self.bodies = []        # every response body, for the secrets test
        self.last_headers = {}

    def request(self, method, path, form=None, headers=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port,
                                        context=self.ctx, timeout=30)
        h = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookie:
            h["Cookie"] = self.cookie
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        self.last_headers = {k.lower(): v for k, v in r.getheaders()}
        self.last_set_cookie = r.getheader("Set-Cookie")
        if self.last_set_cookie:
            self.cookie = self.last_set_cookie.split(";")[0]
            if self.cookie.endswith("="):
                self.cookie = None
        self.bodies.append(data)
        return r.status, data

    def get(self, path):
        status, data = self.request("GET", path)
        return status, (json.loads(data) if data.startswith(b"{") else data)

    def post(self, path, form, csrf=True):
        h = {"X-Requested-With": "sluice-console"}
        if csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        status, data = self.request("POST", path, form, h)
        return status, json.loads(data)

    def login(self, name, password):
        status, body = self.post("/api/login",
                                 {"name": name, "password": password},
                                 csrf=False)
        if status == 200:
            self.csrf = body["csrf"]
        return status, body

    def run_command(self, path, form, timeout=20):
        """A queue command, then its status polled until every node
        answered; the last /api/commands reply."""
        status, body = self.post(path, form)
        assert status == 200, (status, body)
        ids = ",".join(str(c["id"]) for c in body["commands"]["commands"])
        out = {}

        def done():
            s, b = self.get("/api/commands?ids=" + ids)
            assert s == 200, (s, b)
            out["r"] = b
            return all(c["done"] for c in b["commands"]["commands"])
        wait_until(done, timeout, "console command %s" % path)
        return out["r"]
