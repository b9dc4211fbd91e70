#!/usr/bin/env python3
"""tokenep.py - a loopback OAuth2 token endpoint for the XOAUTH2 tests.

HTTPS (http.server + ssl, a certificate of the test CA).  A POST is
checked as the provider would:

  Microsoft identity platform, client credentials (--path /TENANT/...):
    grant_type=client_credentials, client_id, scope, and either
    client_secret (--client-secret) or client_assertion_type=
    urn:ietf:params:oauth:client-assertion-type:jwt-bearer with a
    client_assertion JWT signed RS256 by the certificate's key
    (--pubkey), naming it by x5t#S256 (--x5t256), aud = the endpoint
    URL (--url), iss = sub = client_id, unexpired, jti never seen.
  Google service account (grant_type urn:ietf:params:oauth:grant-type:
    jwt-bearer): assertion JWT signed by --pubkey, iss = --client-id (the
    client_email), scope, aud = --url, sub = the mailbox, iat..exp at
    most an hour.

A good request gets {"access_token", "token_type": "Bearer",
"expires_in": --expires-in} and the token is appended to --tokens
(JSON lines {"token", "user", "exp"}) for tests/upstream/upstream.py to
check; a bad one HTTP 400/401 with error and error_description.  Every
request goes to --record as {"ev": "token", "ok", "why", "grant"}.
--status CODE answers every request with that HTTP error (an endpoint
that is up but failing).  Python 3 standard library and the openssl
command (signature check) only.
"""
import argparse
import base64
import http.server
import json
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

LOCK = threading.Lock()
JTIS = set()


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jwt(a, jwt):
    """(header, claims) of a JWT whose RS256 signature --pubkey checks."""
    parts = jwt.split(".")
    if len(parts) != 3:
        raise ValueError("JWT is not three parts")
    header, claims = json.loads(b64d(parts[0])), json.loads(b64d(parts[1]))
    if header.get("alg") != "RS256" or header.get("typ") != "JWT":
        raise ValueError("header %r" % header)
    with tempfile.TemporaryDirectory() as d:
        data, sig = os.path.join(d, "data"), os.path.join(d, "sig")
        with open(data, "w") as f:
            f.write(parts[0] + "." + parts[1])
        with open(sig, "wb") as f:
            f.write(b64d(parts[2]))
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify",
                            a.pubkey, "-signature", sig, data],
                           capture_output=True)
        if r.returncode != 0:
            raise ValueError("bad signature")
    now = time.time()
    if not claims.get("exp") or claims["exp"] <= now:
        raise ValueError("expired assertion")
    if claims.get("iat", 0) > now + 60 or claims.get("nbf", 0) > now + 60:
        raise ValueError("assertion from the future")
    if claims.get("aud") != a.url:
        raise ValueError("aud %r is not %r" % (claims.get("aud"), a.url))
    return header, claims


def check(a, path, f):
    """The mailbox the token is for; raises ValueError with the reason."""
    grant = f.get("grant_type")
    if grant == "client_credentials":
        if path != a.path:
            raise ValueError("path %s is not the tenant's %s"
                             % (path, a.path))
        if f.get("client_id") != a.client_id:
            raise ValueError("unknown client_id %r" % f.get("client_id"))
        if f.get("scope") != a.scope:
            raise ValueError("scope %r" % f.get("scope"))
        if "client_secret" in f:
            if f["client_secret"] != a.client_secret or not a.client_secret:
                raise ValueError("AADSTS7000215: Invalid client secret "
                                 "provided.")
        elif f.get("client_assertion_type") == \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            header, claims = verify_jwt(a, f.get("client_assertion", ""))
            if header.get("x5t#S256") != a.x5t256:
                raise ValueError("x5t#S256 %r" % header.get("x5t#S256"))
            if claims.get("iss") != a.client_id or \
                    claims.get("sub") != a.client_id:
                raise ValueError("iss/sub %r/%r" % (claims.get("iss"),
                                                    claims.get("sub")))
            with LOCK:
                if not claims.get("jti") or claims["jti"] in JTIS:
                    raise ValueError("jti missing or replayed")
                JTIS.add(claims["jti"])
        else:
            raise ValueError("no client_secret or client_assertion")
        return a.user
    if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        header, claims = verify_jwt(a, f.get("assertion", ""))
        if claims.get("iss") != a.client_id:
            raise ValueError("iss %r" % claims.get("iss"))
        if claims.get("scope") != a.scope:
            raise ValueError("scope %r" % claims.get("scope"))
        if claims["exp"] - claims.get("iat", 0) > 3600:
            raise ValueError("assertion longer than an hour")
        if not claims.get("sub"):
            raise ValueError("no sub (the mailbox to impersonate)")
        return claims["sub"]
    raise ValueError("unsupported grant_type %r" % grant)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("tokenep: " + (fmt % args) + "\n")

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, obj):
        with LOCK, open(self.server.args.record, "a") as f:
            f.write(json.dumps(obj) + "\n")

    def do_POST(self):
        a = self.server.args
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        f = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        if a.status:
            self.record({"ev": "token", "ok": False, "why": "status",
                         "grant": f.get("grant_type")})
            self.reply(a.status, {"error": "temporarily_unavailable",
                                  "error_description": "test outage"})
            return
        try:
            user = check(a, self.path, f)
        except (ValueError, KeyError) as e:
            self.record({"ev": "token", "ok": False, "why": str(e),
                         "grant": f.get("grant_type")})
            self.reply(401, {"error": "invalid_client",
                             "error_description": str(e)})
            return
        token = secrets.token_urlsafe(40)
        with LOCK, open(a.tokens, "a") as t:
            t.write(json.dumps({"token": token, "user": user,
                                "exp": time.time() + a.expires_in}) + "\n")
        self.record({"ev": "token", "ok": True, "user": user,
                     "grant": f.get("grant_type")})
        self.reply(200, {"token_type": "Bearer",
                         "expires_in": a.expires_in,
                         "ext_expires_in": a.expires_in,
                         "access_token": token})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--url", required=True, help="the endpoint (JWT aud)")
    p.add_argument("--path", default="/")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", default="")
    p.add_argument("--pubkey", help="PEM public key JWTs are signed with")
    p.add_argument("--x5t256", default="")
    p.add_argument("--scope", required=True)
    p.add_argument("--user", default="", help="m365: the mailbox")
    p.add_argument("--expires-in", type=int, default=3599)
    p.add_argument("--status", type=int, default=0)
    p.add_argument("--tokens", required=True)
    p.add_argument("--record", required=True)
    a = p.parse_args()
    srv = Server((a.host, a.port), Handler)
    srv.args = a
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("tokenep listening on %s:%d" % (a.host, a.port), flush=True)
    srv.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
