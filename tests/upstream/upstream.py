#!/usr/bin/env python3
"""upstream.py - a scriptable SMTP server for sluice's delivery tests.

It plays the hop a node delivers to: a smart host, a provider such as
SendGrid or SES, or an MX.  Every connection, every AUTH command and every accepted message is
appended to a JSON-lines record (--record) so tests can poll it, assert
byte-for-byte delivery and count connections:

  {"ev": "connect", "conn": 3, "port": 2525}
  {"ev": "auth", "conn": 3, "tls": true, "line": "AUTH PLAIN ..."}
  {"ev": "message", "conn": 3, "from": "a@x", "rcpts": ["b@y"],
   "data": "<latin-1 text of the un-dot-stuffed data>", "tls": true,
   "auth": "apikey", "helo": "node1", "params": "BODY=8BITMIME"}

Behaviours (--mode): accept (default), refuse (accept and close at once),
greet421, stall (never greet), drop-after-data (close instead of
answering the final dot).  Per recipient codes: --rcpt-code ADDR=550.
--auth USER:PASS offers AUTH PLAIN/LOGIN (and requires it); --auth-fail
answers 535 to everything.  --tls-cert/--tls-key offer STARTTLS, with
--smtps implicit TLS; --broken-starttls offers STARTTLS and then fails the
handshake.  --throttle N answers "454 4.7.0 Throttling failure"
to the first N MAIL commands.  8BITMIME is offered unless --no-8bitmime;
SMTPUTF8 only with --smtputf8.  --reply STAGE=REPLY answers every command
of a stage (greeting, auth, mail, rcpt, data: the final dot) with a
provider's documented reply, e.g. --reply "mail=554 Message rejected:
Sending paused for this account." (a 4xx/5xx greeting closes the
connection).  --xoauth2-tokens FILE offers AUTH XOAUTH2 and accepts a
bearer token listed in FILE (JSON lines {"token", "user", "exp"}, written
by tests/delivery/tokenep.py) for its user until exp; --xoauth2-revoke N
refuses the first N tokens that would be valid (a revoked token);
--xoauth2-style google answers a refused token with Google's 334 error
challenge before the 535, m365 (default) with 535 5.7.3 at once.  Python
3 standard library only.
"""
import argparse
import base64
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
import uuid

LOCK = threading.Lock()
STATE = {"conns": 0, "throttled": 0}


def record(args, obj):
    if not args.record:
        return
    line = json.dumps(obj) + "\n"
    with LOCK:
        with open(args.record, "a", encoding="utf-8") as f:
            f.write(line)


class Session(socketserver.StreamRequestHandler):
    timeout = 120

    def setup(self):
        super().setup()
        self.args = self.server.args
        self.tls = False
        self.authed = None
        self.helo = None

    def send(self, text):
        self.wfile.write(text.encode("latin-1"))
        self.wfile.flush()

    def line(self):
        raw = self.rfile.readline(65536)
        if not raw:
            raise EOFError
        return raw.decode("latin-1").rstrip("\r\n")

    def starttls(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.args.tls_cert, self.args.tls_key)
        self.request = ctx.wrap_socket(self.request, server_side=True)
        self.rfile = self.request.makefile("rb")
        self.wfile = self.request.makefile("wb")
        self.tls = True

    def ehlo_lines(self):
        a = self.args
        caps = [a.name]
        if not a.no_pipelining:
            caps.append("PIPELINING")
        caps.append("SIZE %d" % a.size if a.size else "SIZE")
        if not a.no_8bitmime:
            caps.append("8BITMIME")
        if a.smtputf8:
            caps.append("SMTPUTF8")
        caps.append("ENHANCEDSTATUSCODES")
        if (a.tls_cert or a.broken_starttls) and not self.tls and \
                not a.smtps and not a.no_starttls:
            caps.append("STARTTLS")
        if a.xoauth2_tokens:
            caps.append("AUTH LOGIN XOAUTH2")
        elif a.auth or a.auth_fail:
            caps.append("AUTH PLAIN LOGIN")
        return "".join("250%s%s\r\n" % ("-" if i < len(caps) - 1 else " ",
                                         c) for i, c in enumerate(caps))

    def handle(self):
        a = self.args
        with LOCK:
            STATE["conns"] += 1
            conn = STATE["conns"]
        record(a, {"ev": "connect", "conn": conn, "port": a.port})
        try:
            if a.smtps:
                self.starttls()
            if a.mode == "refuse":
                return
            if a.mode == "stall":
                self.request.settimeout(a.stall_seconds)
                try:
                    self.rfile.read(1)
                except OSError:
                    pass
                return
            if a.mode == "greet421":
                self.send("421 4.3.2 %s service not available\r\n" % a.name)
                return
            if "greeting" in a.replies:
                self.send(a.replies["greeting"] + "\r\n")
                return
            self.send("220 %s ESMTP upstream\r\n" % a.name)
            self.dialog(conn)
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            pass

    def dialog(self, conn):
        a = self.args
        mail = None
        rcpts = []
        params = ""
        while True:
            ln = self.line()
            verb = ln[:4].upper()
            if verb == "EHLO":
                if a.no_ehlo:
                    self.send("502 5.5.2 no EHLO here\r\n")
                    continue
                self.helo = ln[5:]
                self.send(self.ehlo_lines())
            elif verb == "HELO":
                self.helo = ln[5:]
                self.send("250 %s\r\n" % a.name)
            elif ln.upper() == "STARTTLS" and a.broken_starttls:
                self.send("220 2.0.0 go ahead\r\n")
                self.send("this is not a TLS handshake\r\n")
                return
            elif ln.upper() == "STARTTLS" and a.tls_cert:
                self.send("220 2.0.0 go ahead\r\n")
                self.starttls()
            elif verb == "AUTH" and "auth" in a.replies:
                self.send(a.replies["auth"] + "\r\n")
            elif verb == "AUTH":
                record(a, {"ev": "auth", "conn": conn, "tls": self.tls,
                           "line": ln})
                self.auth(ln)
            elif verb == "MAIL":
                if (a.auth or a.auth_fail or a.xoauth2_tokens) and \
                        not self.authed:
                    self.send("530 5.7.0 authentication required\r\n")
                    continue
                if "mail" in a.replies:
                    record(a, {"ev": "refused", "conn": conn,
                               "stage": "mail"})
                    self.send(a.replies["mail"] + "\r\n")
                    continue
                if STATE["throttled"] < a.throttle:
                    with LOCK:
                        STATE["throttled"] += 1
                    self.send("454 4.7.0 Throttling failure: "
                              "Maximum sending rate exceeded.\r\n")
                    continue
                addr = ln[ln.find("<") + 1:ln.find(">")]
                params = ln[ln.find(">") + 1:].strip()
                mail, rcpts = addr, []
                self.send("250 2.1.0 ok\r\n")
            elif verb == "RCPT":
                if mail is None:
                    self.send("503 5.5.1 MAIL first\r\n")
                    continue
                addr = ln[ln.find("<") + 1:ln.find(">")]
                code = a.rcpt_codes.get(addr.lower())
                if "rcpt" in a.replies:
                    record(a, {"ev": "refused", "conn": conn,
                               "stage": "rcpt"})
                    self.send(a.replies["rcpt"] + "\r\n")
                elif code:
                    self.send("%d %s.1.1 <%s> rejected by test\r\n"
                              % (code, str(code)[0], addr))
                elif a.max_rcpt and len(rcpts) >= a.max_rcpt:
                    self.send("452 4.5.3 too many recipients\r\n")
                else:
                    rcpts.append(addr)
                    self.send("250 2.1.5 ok\r\n")
            elif verb == "DATA":
                if not rcpts:
                    self.send("554 5.5.1 no valid recipients\r\n")
                    continue
                self.send("354 go ahead\r\n")
                data = self.read_data()
                if a.mode == "drop-after-data":
                    return
                if "data" in a.replies:
                    record(a, {"ev": "refused", "conn": conn,
                               "stage": "data"})
                    self.send(a.replies["data"] + "\r\n")
                elif a.data_code:
                    self.send("%d %s.0.0 data rejected by test\r\n"
                              % (a.data_code, str(a.data_code)[0]))
                else:
                    # --provider-reply: a cloud relay's 250 naming its
                    # message id (issue 16), recorded with the message
                    pid, reply = None, "250 2.0.0 ok queued as %d.%d" % (
                        conn, len(rcpts))
                    if a.provider_reply == "ses":
                        pid = "%016x-%s-000000" % (
                            int(time.time() * 1000), uuid.uuid4())
                        reply = "250 Ok %s" % pid
                    elif a.provider_reply == "sendgrid":
                        pid = uuid.uuid4().hex[:22]
                        reply = "250 Ok: queued as %s" % pid
                    record(a, {"ev": "message", "conn": conn, "from": mail,
                               "rcpts": rcpts, "data": data,
                               "tls": self.tls, "auth": self.authed,
                               "helo": self.helo, "params": params,
                               "provider_id": pid})
                    self.send(reply + "\r\n")
                    if a.close_after_message:
                        return
                mail, rcpts = None, []
            elif verb == "RSET":
                mail, rcpts = None, []
                self.send("250 2.0.0 ok\r\n")
            elif verb == "NOOP":
                self.send("250 2.0.0 ok\r\n")
            elif verb == "QUIT":
                self.send("221 2.0.0 bye\r\n")
                return
            else:
                self.send("500 5.5.2 unknown command\r\n")

    def read_data(self):
        out = []
        while True:
            raw = self.rfile.readline(1 << 20)
            if not raw:
                raise EOFError
            if raw == b".\r\n":
                break
            if raw.startswith(b"."):
                raw = raw[1:]
            out.append(raw)
        return b"".join(out).decode("latin-1")

    def auth(self, ln):
        a = self.args
        parts = ln.split()
        mech = parts[1].upper() if len(parts) > 1 else ""
        user = pw = None
        if mech == "XOAUTH2" and a.xoauth2_tokens:
            self.xoauth2(parts[2] if len(parts) > 2 else "")
            return
        if mech == "PLAIN":
            resp = parts[2] if len(parts) > 2 else None
            if resp is None:
                self.send("334 \r\n")
                resp = self.line()
            try:
                _, user, pw = base64.b64decode(resp).decode().split("\0")
            except Exception:
                self.send("501 5.5.2 bad PLAIN\r\n")
                return
        elif mech == "LOGIN":
            self.send("334 VXNlcm5hbWU6\r\n")
            user = base64.b64decode(self.line()).decode()
            self.send("334 UGFzc3dvcmQ6\r\n")
            pw = base64.b64decode(self.line()).decode()
        else:
            self.send("504 5.5.4 mechanism not supported\r\n")
            return
        if not a.auth_fail and a.auth == "%s:%s" % (user, pw):
            self.authed = user
            self.send("235 2.7.0 authenticated\r\n")
        else:
            self.send("535 5.7.8 authentication credentials invalid\r\n")


    def xoauth2_check(self, ir):
        """(user, None) for a good initial response, else (user, why)."""
        a = self.args
        try:
            raw = base64.b64decode(ir, validate=True).decode()
        except Exception:
            return None, "not base64"
        if not raw.startswith("user=") or not raw.endswith("\x01\x01"):
            return None, "not user=...^Aauth=...^A^A: %r" % raw[:40]
        fields = raw[:-2].split("\x01")
        if len(fields) != 2 or not fields[1].startswith("auth=Bearer "):
            return None, "bad fields"
        user, token = fields[0][5:], fields[1][12:]
        issued = {}
        with open(a.xoauth2_tokens) as f:
            for ln in f:
                if ln.strip():
                    t = json.loads(ln)
                    issued[t["token"]] = t
        t = issued.get(token)
        if t is None:
            return user, "unknown token"
        if t.get("user") and t["user"] != user:
            return user, "token is for %s" % t["user"]
        if t["exp"] <= time.time():
            return user, "expired token"
        with LOCK:
            if token in STATE.setdefault("revoked", set()):
                return user, "revoked token"
            if STATE.setdefault("revoke_left", a.xoauth2_revoke) > 0:
                STATE["revoke_left"] -= 1
                STATE["revoked"].add(token)
                return user, "revoked token"
        return user, None

    def xoauth2(self, ir):
        a = self.args
        user, why = self.xoauth2_check(ir)
        record(a, {"ev": "xoauth2", "user": user, "ok": why is None,
                   "why": why, "tls": self.tls})
        if why is None:
            self.authed = user
            self.send("235 2.7.0 Authentication successful\r\n")
        elif a.xoauth2_style == "google":
            err = base64.b64encode(json.dumps(
                {"status": "401", "schemes": "bearer",
                 "scope": "https://mail.google.com/"}).encode()).decode()
            self.send("334 %s\r\n" % err)
            self.line()
            self.send("535-5.7.8 Username and Password not accepted.\r\n"
                      "535 5.7.8 (%s)\r\n" % why)
        else:
            self.send("535 5.7.3 Authentication unsuccessful (%s)\r\n"
                      % why)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--name", default="upstream.test")
    p.add_argument("--record")
    p.add_argument("--mode", default="accept",
                   choices=["accept", "refuse", "greet421", "stall",
                            "drop-after-data"])
    p.add_argument("--stall-seconds", type=float, default=60)
    p.add_argument("--rcpt-code", action="append", default=[],
                   help="ADDR=CODE, e.g. bad@example.com=550")
    p.add_argument("--data-code", type=int, default=0)
    p.add_argument("--auth")
    p.add_argument("--auth-fail", action="store_true")
    p.add_argument("--xoauth2-tokens",
                   help="offer AUTH XOAUTH2; tokens issued (JSON lines)")
    p.add_argument("--xoauth2-revoke", type=int, default=0)
    p.add_argument("--close-after-message", action="store_true",
                   help="close the connection after each 250 to the dot")
    p.add_argument("--xoauth2-style", choices=["m365", "google"],
                   default="m365")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--smtps", action="store_true")
    p.add_argument("--no-starttls", action="store_true")
    p.add_argument("--broken-starttls", action="store_true",
                   help="offer STARTTLS, then answer the handshake with "
                   "garbage")
    p.add_argument("--no-pipelining", action="store_true")
    p.add_argument("--no-ehlo", action="store_true")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--max-rcpt", type=int, default=0)
    p.add_argument("--throttle", type=int, default=0)
    p.add_argument("--no-8bitmime", action="store_true",
                   help="do not offer 8BITMIME (RFC 6152)")
    p.add_argument("--smtputf8", action="store_true",
                   help="offer SMTPUTF8 (RFC 6531)")
    p.add_argument("--provider-reply", choices=["ses", "sendgrid"],
                   help="answer DATA as that provider does, naming an id")
    p.add_argument("--reply", action="append", default=[],
                   help="STAGE=REPLY (greeting, auth, mail, rcpt, data)")
    a = p.parse_args()
    a.replies = {}
    for rp in a.reply:
        stage, text = rp.split("=", 1)
        assert stage in ("greeting", "auth", "mail", "rcpt", "data"), stage
        a.replies[stage] = text
    a.rcpt_codes = {}
    for rc in a.rcpt_code:
        addr, code = rc.rsplit("=", 1)
        a.rcpt_codes[addr.lower()] = int(code)
    srv = Server((a.host, a.port), Session)
    srv.args = a
    print("upstream listening on %s:%d mode=%s" % (a.host, a.port, a.mode),
          flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
