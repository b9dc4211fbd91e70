"""hookrecv.py - a loopback HTTPS receiver for sluice's outbound event
webhooks, as a consumer would write one: it checks X-Sluice-Timestamp (5
minutes of skew) and X-Sluice-Signature (HMAC-SHA256 over timestamp "."
body, constant-time compare), answers 401 to anything else, and drops
repeats by event id (sg_event_id in the SendGrid shape) while counting
them.  One secret per path.  stop() closes the port; start() opens it
again on the same port."""
import hashlib
import hmac
import http.server
import json
import socket
import ssl
import threading
import time


def verify(secret, headers, body):
    """The receiver's check, as in docs/webhooks.md."""
    ts = headers.get("X-Sluice-Timestamp", "")
    sig = headers.get("X-Sluice-Signature", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
        return False
    want = "v1=" + hmac.new(secret, ts.encode() + b"." + body,
                            hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


class Receiver:
    def __init__(self, cert_pem, secrets, port=0):
        self.secrets = secrets          # path -> bytes
        self.cert_pem = cert_pem
        self.port = port
        self.lock = threading.Lock()
        self.events = {p: {} for p in secrets}  # path -> id -> event
        self.dups = {p: 0 for p in secrets}
        self.posts = {p: 0 for p in secrets}
        self.refused = 0
        self.delay = 0.0
        self.server = None
        self.conns = set()

    def start(self):
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with rcv.lock:
                    rcv.conns.add(self.connection)

            def finish(self):
                super().finish()
                with rcv.lock:
                    rcv.conns.discard(self.connection)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                secret = rcv.secrets.get(self.path)
                if secret is None or not verify(secret, self.headers,
                                                 body):
                    with rcv.lock:
                        rcv.refused += 1
                    return self.answer(401)
                if rcv.delay:
                    time.sleep(rcv.delay)
                doc = json.loads(body)
                evs = doc if isinstance(doc, list) else doc["events"]
                with rcv.lock:
                    rcv.posts[self.path] += 1
                    for e in evs:
                        eid = e.get("event_id") or e["sg_event_id"]
                        if eid in rcv.events[self.path]:
                            rcv.dups[self.path] += 1
                        rcv.events[self.path][eid] = e
                self.answer(200)

            def answer(self, code):
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_pem)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                              Handler)
        srv.daemon_threads = True
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        self.port = srv.server_address[1]
        self.server = srv
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            conns, self.conns = self.conns, set()
        for c in conns:  # kept-alive connections go down too
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def ids(self, path):
        with self.lock:
            return set(self.events[path])
