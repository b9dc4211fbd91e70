#!/usr/bin/env python3
"""peer_swaks: Debian's swaks (Perl, Net::SSLeay) submits to a node.

  - EHLO in clear offers STARTTLS and 8BITMIME, no AUTH; swaks asked for
    AUTH without TLS gives up (the node never takes a password in clear)
  - STARTTLS, AUTH PLAIN: 235, MAIL/RCPT 250, the 8-bit UTF-8 body 250
    "queued as"; the upstream gets exactly that message after the node's
    Received: field (with ESMTPSA: TLS + AUTH, RFC 3848), declared
    BODY=8BITMIME, the envelope unchanged
  - a wrong password: 535, nothing relayed
swaks 20201014 has no option for MAIL parameters, so it sends the 8-bit
body undeclared (as many scripts do); the node notes the 8-bit octets at
ingress and declares BODY=8BITMIME itself to a server that offers it
(docs/delivery.md "8BITMIME").
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerkit import (PASSWORD, SENDER, USER, PeerFleet, message,  # noqa
                     require, run, split_received, wait_until)


def swaks(pf, *args, data=None):
    argv = ["swaks", "--server", "127.0.0.1:%d" % pf.port, "--ehlo",
            "client.test", "--from", SENDER, "--to", "user@example.net",
            "--timeout", "60"] + list(args)
    if data is not None:
        path = os.path.join(pf.dir, "swaks.eml")
        with open(path, "wb") as f:
            f.write(data)
        argv += ["--data", "@" + path]
    r = run(argv, text=True, errors="replace")
    return r.returncode, r.stdout + r.stderr


def main():
    require("swaks")
    with PeerFleet("swaks") as pf:
        pf.start()
        up = pf.upstream()
        pf.relay(["--host", "127.0.0.1", "--port", str(up.port),
                  "--tls", "none"])

        # AUTH before STARTTLS: not offered, swaks gives up before MAIL.
        rc, out = swaks(pf, "--auth", "PLAIN", "--auth-user", USER,
                        "--auth-password", PASSWORD,
                        "--quit-after", "RCPT")
        assert rc != 0, out
        assert re.search(r"(?m)^<-  250-STARTTLS", out), out
        assert re.search(r"(?m)^<-  250-8BITMIME", out), out
        assert not re.search(r"(?m)^<-  250.AUTH", out), out
        assert "AUTH PLAIN" not in out, out

        # STARTTLS + AUTH PLAIN + an 8-bit body.
        data = message("swaks")
        rc, out = swaks(pf, "--tls", "--auth", "PLAIN", "--auth-user",
                        USER, "--auth-password", PASSWORD, data=data)
        assert rc == 0, out
        assert re.search(r"(?m)^<-  220 2\.0\.0", out), out   # STARTTLS
        assert re.search(r"(?m)^<~  250.AUTH PLAIN", out), out
        assert re.search(r"(?m)^<~  235 ", out), out
        assert re.search(r"(?m)^ ~> MAIL FROM:<%s>$" % SENDER, out), out
        m = re.search(r"(?m)^<~  250 .*queued as ([0-9A-Za-z]+)", out)
        assert m, out
        qid = m.group(1)

        msg = wait_until(lambda: up.messages(), 20, "the message upstream")
        assert len(msg) == 1, msg
        msg = msg[0]
        assert msg["from"] == SENDER and msg["rcpts"] == \
            ["user@example.net"], msg
        assert "BODY=8BITMIME" in msg.get("params", "").upper(), msg
        rec, rest = split_received(msg["data"])
        # swaks ends the data with one more CRLF of its own before the dot
        assert rest in (data, data + b"\r\n"), (rest, data)
        assert rec.group("proto") == b"ESMTPSA", rec.group(0)
        assert rec.group("qid").decode() == qid, (rec.group(0), qid)

        # A wrong password: 535, nothing relayed.
        rc, out = swaks(pf, "--tls", "--auth", "PLAIN", "--auth-user",
                        USER, "--auth-password", "wrong", data=data)
        assert rc != 0, out
        assert re.search(r"(?m)^<~\* 535 ", out), out
        assert len(up.messages()) == 1
    print("ok")


if __name__ == "__main__":
    main()
