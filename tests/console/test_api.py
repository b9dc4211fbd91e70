#!/usr/bin/env python3
"""The web console's HTTPS API (issue 18), on a real fleet.

  * off unless console_listen is set; console_listen without a
    certificate is refused at start; plain HTTP gets no page;
  * static files with a strict CSP; every /api/ path wants a login;
  * login needs the console's own header (login CSRF), a wrong password
    is refused, the cookie is Secure/HttpOnly/SameSite=Strict and
    PostgreSQL keeps only its sha256; logout and operator deletion end
    sessions;
  * every POST needs the session's CSRF token;
  * a viewer reads but gets 403 on a queue action; an operator holds and
    releases a deferred message (the node's spool says so) and the audit
    history names the operator;
  * N refused passwords lock the account, even for the right password,
    until `sluicectl console user unlock`;
  * no response carries a secret: a hop secret, an SMTP password and its
    hash, a DKIM private key, an enrollment token, an operator's password
    or hash, a session token (plain or base64) - across every endpoint
    and every policy version.  Nor does the controller's log.
"""
import base64
import hashlib
import os
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from consolekit import ConsoleFleet, Upstream, free_port, wait_until  # noqa
from fleet import binary  # noqa: E402

HOP_SECRET = "hop-S3CRET-7f1d9c"
USER_PASS = "smtp-PASSW0RD-a41b"
OP_PASS = "operator-pass-93kd"
VIEW_PASS = "viewer-pass-22mx"
LOCK_PASS = "locked-pass-55qq"


def main():
    refused_without_cert()
    with ConsoleFleet("console-api",
                      extra="console_lockout_failures = 3\n") as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def refused_without_cert():
    """console_listen without console_cert/console_key: exit 1 at once."""
    import tempfile
    d = tempfile.mkdtemp(prefix="sluice-console-conf-")
    conf = os.path.join(d, "c.conf")
    with open(conf, "w") as f:
        f.write("database = \"host=/nonexistent dbname=x\"\n"
                "node_listen = tcp://127.0.0.1:%d\n"
                "admin_listen = ipc://%s/a.sock\n"
                "console_listen = 127.0.0.1:%d\n" % (free_port(), d,
                                                     free_port()))
    r = subprocess.run([binary("sluice-controller"), "--config", conf],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r
    assert "console_listen needs console_cert and console_key" in r.stderr, \
        r.stderr


def secrets_setup(f):
    f.ctl("hop", "add", "auth", "--host", "127.0.0.1", "--port",
          str(free_port()), "--tls", "starttls", "--user", "apikey",
          "--secret-stdin", input=HOP_SECRET + "\n")
    f.ctl("user", "add", "app1", "--password-stdin", "--sender", "*",
          input=USER_PASS + "\n")
    key = os.path.join(f.dir, "dkim.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out",
                    key], check=True, capture_output=True)
    pem = open(key).read()
    f.ctl("dkim", "add", "client.test", "--selector", "s1", "--key-stdin",
          input=pem)
    body = "".join(l for l in pem.splitlines() if "-----" not in l)
    return body


def run(f, up):
    f.relay_policy(up.port)
    f.ctl("hop", "add", "down", "--host", "127.0.0.1", "--port",
          str(free_port()), "--tls", "none")
    f.ctl("route", "set", "defer.test", "down")
    dkim_body = secrets_setup(f)
    v = f.policy_version()
    f.start_relay("n1")
    f.wait_node_version("n1", v)
    f.add_operator("op1", "operator", OP_PASS)
    f.add_operator("view1", "viewer", VIEW_PASS)
    f.add_operator("lock1", "viewer", LOCK_PASS)
    ops = f.ctl_json("console", "user", "list")["operators"]
    assert [(o["name"], o["role"]) for o in ops] == [
        ("lock1", "viewer"), ("op1", "operator"), ("view1", "viewer")], ops
    out = f.ctl("console", "user", "add", "x", "--role", "root",
                "--password-stdin", input="long enough\n", check=False)
    assert out.returncode == 1 and "viewer or operator" in out.stderr, out
    out = f.ctl("console", "user", "add", "op1", "--role", "viewer",
                "--password-stdin", input="long enough\n", check=False)
    assert out.returncode == 1 and "already exists" in out.stderr, out
    qid = f.send("n1", "app@client.test", ["u@defer.test"], "deferred")
    f.send("n1", "app@client.test", ["ok@example.com"], "delivered")
    wait_until(lambda: f.spool("n1").get(qid) == "deferred", 20,
               "a deferred message on n1")

    # -- HTTPS only; static files; no API without a login
    s = socket.create_connection(("127.0.0.1", f.console_port), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    try:
        got = s.recv(100)
    except (ConnectionResetError, socket.timeout):
        got = b""
    s.close()
    assert not got.startswith(b"HTTP/"), got
    anon = f.console()
    status, page = anon.request("GET", "/")
    assert status == 200 and b"/app.js" in page, status
    csp = anon.last_headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert anon.last_headers["x-frame-options"] == "DENY"
    assert anon.last_headers["x-content-type-options"] == "nosniff"
    for p in ("/app.js", "/app.css", "/favicon.svg"):
        assert anon.request("GET", p)[0] == 200, p
    assert anon.request("GET", "/nothing")[0] == 404
    for p in ("/api/status", "/api/alerts", "/api/policy", "/api/history",
              "/api/audit", "/api/trace?id=x", "/api/log", "/api/me",
              "/api/commands?ids=1"):
        status, body = anon.get(p)
        assert status == 401 and body["error"]["code"] == "login", (p, body)
    status, body = anon.post("/api/queue/action",
                             {"action": "hold", "queue_id": qid})
    assert status == 401, body

    # -- login
    c = f.console()
    status, body = c.request("POST", "/api/login", {"name": "op1",
                                                    "password": OP_PASS})
    assert status == 400 and c.cookie is None, (status, body)
    status, body = c.login("op1", "not the password")
    assert status == 401 and body["error"]["code"] == "denied", body
    assert c.cookie is None
    status, body = c.login("nobody", OP_PASS)
    assert status == 401 and body["error"]["message"] == \
        "Wrong name or password.", body
    status, me = c.login("op1", OP_PASS)
    assert status == 200 and me["role"] == "operator", me
    flags = [x.strip() for x in c.last_set_cookie.split(";")]
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= \
        set(flags), flags
    token = c.cookie.split("=", 1)[1]
    digests = f.pg.psql("SELECT token_digest FROM console_sessions")
    assert token not in digests, digests
    assert hashlib.sha256(token.encode()).hexdigest() in digests, digests
    status, body = c.get("/api/me")
    assert status == 200 and body["name"] == "op1", body

    # -- CSRF on every POST
    csrf = c.csrf
    c.csrf = None
    status, body = c.post("/api/queue/list", {"state": "deferred"})
    assert status == 403 and body["error"]["code"] == "csrf", body
    c.csrf = csrf[:-1] + ("A" if csrf[-1] != "A" else "B")
    status, body = c.post("/api/queue/action",
                          {"action": "hold", "queue_id": qid})
    assert status == 403 and body["error"]["code"] == "csrf", body
    c.csrf = csrf

    # -- reads
    status, st = c.get("/api/status")
    assert status == 200, st
    n1 = st["status"]["nodes"]["nodes"][0]
    assert n1["name"] == "n1" and n1["state"] == "up", n1
    assert st["status"]["nodes"]["latest_policy_version"] == v
    status, pol = c.get("/api/policy")
    hops = {h["name"]: h for h in pol["policy_get"]["policy"]["hops"]}
    assert hops["auth"]["has_secret"] is True and \
        "secret" not in hops["auth"], hops["auth"]
    status, tr = c.get("/api/trace?id=" + qid)
    kinds = [e["event"]["kind"] for e in tr["events"]["events"]]
    assert kinds[:2] == ["received", "deferred"], kinds
    status, lg = c.get("/api/log?sender=app%40client&since=1h")
    assert status == 200 and len(lg["events"]["events"]) >= 3, lg
    status, body = c.get("/api/log?since=yesterday")
    assert status == 400, body
    listing = c.run_command("/api/queue/list", {"state": "deferred"})
    msgs = listing["commands"]["commands"][0]["result"]["messages"]
    assert [m["queue_id"] for m in msgs] == [qid], listing
    last = listing["last_replies"][qid]
    assert last["kind"] == "deferred" and "refused" in last["reply"], last

    # -- a viewer reads and cannot act
    viewer = f.console()
    assert viewer.login("view1", VIEW_PASS)[0] == 200
    assert viewer.get("/api/status")[0] == 200
    status, body = viewer.post("/api/queue/action",
                               {"action": "hold", "queue_id": qid,
                                "node": "n1"})
    assert status == 403 and body["error"]["code"] == "denied", body
    assert f.spool("n1").get(qid) == "deferred"

    # -- an operator acts; the node does it; the audit names her
    r = c.run_command("/api/queue/action", {"action": "hold",
                                            "queue_id": qid, "node": "n1"})
    assert r["commands"]["commands"][0]["result"]["ok"], r
    wait_until(lambda: f.spool("n1").get(qid) == "held", 10, "held")
    r = c.run_command("/api/queue/action", {"action": "release",
                                            "queue_id": qid, "node": "n1"})
    wait_until(lambda: f.spool("n1").get(qid) == "deferred", 10,
               "released")
    status, body = c.post("/api/queue/action",
                          {"action": "hold", "queue_id": "../etc"})
    assert status == 400, body
    audit = [(a["identity"], a["action"], a["detail"]) for a in f.audit()]
    for row in [("op1 (console 127.0.0.1)", "queue hold",
                 "queue_id=%s node=n1 commands=1" % qid),
                ("op1 (console 127.0.0.1)", "queue release",
                 "queue_id=%s node=n1 commands=1" % qid),
                ("view1 (console 127.0.0.1)",
                 "queue action refused (viewer)", "hold"),
                ("op1 (console 127.0.0.1)", "login", "role=operator"),
                ("- (console 127.0.0.1)", "login refused", "name=op1"),
                ("root (uid 0)", "console user add", "op1 role=operator")]:
        assert row in audit, (row, audit)
    status, body = c.get("/api/audit")
    assert body["console"]["audit"][0]["action"] == "queue release", body

    # -- lockout after 3 refused passwords, until unlocked
    lk = f.console()
    for _ in range(3):
        assert lk.login("lock1", "wrong")[0] == 401
    ops = {o["name"]: o for o in
           f.ctl_json("console", "user", "list")["operators"]}
    assert ops["lock1"]["locked_until"] > 0, ops
    status, body = lk.login("lock1", LOCK_PASS)
    assert status == 403 and body["error"]["code"] == "locked", body
    f.ctl("console", "user", "unlock", "lock1")
    assert lk.login("lock1", LOCK_PASS)[0] == 200
    assert ("- (console 127.0.0.1)", "login refused, account locked",
            "name=lock1") in [(a["identity"], a["action"], a["detail"])
                              for a in f.audit()]

    # -- secrets: every endpoint, every policy version
    for ver in range(1, f.policy_version() + 1):
        assert c.get("/api/policy?version=%d" % ver)[0] == 200
    for p in ("/api/status", "/api/alerts?limit=1000", "/api/history",
              "/api/audit?limit=1000", "/api/trace?id=" + qid,
              "/api/log?since=1d&limit=10000", "/api/me"):
        assert c.get(p)[0] == 200, p
    c.run_command("/api/queue/list", {})
    op_hash = f.pg.psql("SELECT password_hash FROM console_operators "
                        "WHERE name = 'op1'")
    secrets = [HOP_SECRET, USER_PASS, OP_PASS, VIEW_PASS, LOCK_PASS,
               dkim_body, dkim_body[:24], op_hash, "$scrypt$", token,
               f.tokens["n1"]]
    bodies = c.bodies + viewer.bodies + lk.bodies + anon.bodies
    assert len(bodies) > 40, len(bodies)
    for s in secrets:
        for form in (s, base64.b64encode(s.encode()).decode()):
            for b in bodies:
                assert form.encode() not in b, "secret %r in %r" % (
                    s[:12], b[:300])
    for s in (OP_PASS, VIEW_PASS, LOCK_PASS, token):
        assert s not in f.controllers[0].output(), s

    # -- logout and operator removal end sessions
    old = viewer.cookie
    status, body = viewer.post("/api/logout", {})
    assert status == 200 and viewer.cookie is None, body
    viewer.cookie = old
    assert viewer.get("/api/status")[0] == 401
    f.ctl("console", "user", "del", "lock1")
    assert lk.get("/api/status")[0] == 401
    out = f.ctl("console", "user", "del", "lock1", check=False)
    assert out.returncode == 1 and "does not exist" in out.stderr, out


if __name__ == "__main__":
    main()
