"""hookkit.py - provider webhook helpers for the issue 16 tests.

Keys are made here with the openssl command (no provider's real keys):
a test CA and a server certificate for 127.0.0.1 (the controller's hooks
listener and the loopback "SNS" server), a P-256 key for SendGrid's
signed event webhook, an RSA key and certificate for SNS signing.  Each
signer follows its provider's documentation; HTTPS posts verify the
controller's certificate against the test CA.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request


def openssl(*args, input=None):
    r = subprocess.run(["openssl"] + list(args), input=input,
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args),
                                                 r.stderr.decode()))
    return r.stdout


class Keys:
    def __init__(self, d):
        self.d = d
        p = self.path
        # test CA and a server certificate for 127.0.0.1 / localhost
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                "2", "-subj", "/CN=hooks test CA", "-keyout", p("ca.key"),
                "-out", p("ca.pem"))
        with open(p("san.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj",
                "/CN=127.0.0.1", "-keyout", p("server.key"), "-out",
                p("server.csr"))
        openssl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"),
                "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2",
                "-extfile", p("san.cnf"), "-out", p("server.pem"))
        # SendGrid: ECDSA P-256; the console shows base64 DER of the key
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout",
                "-out", p("sg.key"))
        self.sg_public = base64.b64encode(openssl(
            "ec", "-in", p("sg.key"), "-pubout", "-outform", "DER")).decode()
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout",
                "-out", p("sg-other.key"))
        # SNS: an RSA key and its certificate, served at SigningCertURL
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                "2", "-subj", "/CN=sns.amazonaws.com", "-keyout",
                p("sns.key"), "-out", p("sns.pem"))
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                "2", "-subj", "/CN=sns.amazonaws.com", "-keyout",
                p("sns-other.key"), "-out", p("sns-other.pem"))

    def path(self, name):
        return os.path.join(self.d, name)

    def sign(self, key, data, digest="sha256"):
        return base64.b64encode(openssl(
            "dgst", "-" + digest, "-sign", self.path(key),
            input=data)).decode()


def sendgrid_headers(keys, body, ts=None, key="sg.key"):
    """X-Twilio-Email-Event-Webhook-*: ECDSA over timestamp + body."""
    ts = str(int(time.time()) if ts is None else ts)
    return {"X-Twilio-Email-Event-Webhook-Timestamp": ts,
            "X-Twilio-Email-Event-Webhook-Signature":
                keys.sign(key, ts.encode() + body)}


def mailgun_signature(key, ts=None, token=None):
    ts = str(int(time.time()) if ts is None else ts)
    token = token or os.urandom(25).hex()
    sig = hmac.new(key.encode(), (ts + token).encode(),
                   hashlib.sha256).hexdigest()
    return {"timestamp": ts, "token": token, "signature": sig}


def sns_canonical(m):
    if m["Type"] == "Notification":
        names = ["Message", "MessageId"] + (
            ["Subject"] if "Subject" in m else []) + [
            "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp",
                 "Token", "TopicArn", "Type"]
    return "".join("%s\n%s\n" % (n, m[n]) for n in names).encode()


def sns_sign(keys, m, version="1", key="sns.key"):
    m["SignatureVersion"] = version
    m["Signature"] = keys.sign(key, sns_canonical(m),
                               "sha1" if version == "1" else "sha256")
    return m


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


class Poster:
    """HTTPS POSTs to the controller's hooks listener."""

    def __init__(self, port, ca):
        self.base = "https://127.0.0.1:%d" % port
        self.ctx = ssl.create_default_context(cafile=ca)

    def post(self, path, body, headers=None):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=body,
                                     method="POST")
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=20) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")


class SnsServer:
    """The loopback stand-in for sns.<region>.amazonaws.com: serves the
    signing certificate and records SubscribeURL visits (HTTPS)."""

    def __init__(self, keys):
        self.hits = []
        hits = self.hits
        with open(keys.path("sns.pem"), "rb") as f:
            cert = f.read()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                if self.path.endswith(".pem"):
                    body = cert
                else:
                    body = b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(keys.path("server.pem"), keys.path("server.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket,
                                             server_side=True)
        self.port = self.server.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def stop(self):
        self.server.shutdown()
