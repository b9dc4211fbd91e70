#!/usr/bin/env python3
"""peer_msmtp: Debian's msmtp (GnuTLS, GNU SASL) as an application's
sendmail, submitting through a node with STARTTLS and AUTH PLAIN.

  - msmtp verifies the node's certificate against the test's CA (a node
    certificate that did not chain, or named another host, fails here)
  - `msmtp -t` (recipients from the header), exit 0; the upstream gets
    the message after the node's Received: (ESMTPSA) byte for byte, with
    BODY=8BITMIME declared by the node
  - a wrong password: msmtp exits non-zero with the node's 535; nothing
    relayed
  - a client that trusts another CA refuses the node: exit non-zero,
    nothing relayed
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerkit import (PASSWORD, SENDER, USER, PeerFleet, make_ca,  # noqa
                     message, require, run, split_received, wait_until)


def msmtp_conf(pf, name, password, ca):
    path = os.path.join(pf.dir, name + ".msmtprc")
    with open(path, "w") as f:
        f.write("defaults\n"
                "logfile %s\n"
                "account app\n"
                "host 127.0.0.1\n"
                "port %d\n"
                "domain client.test\n"
                "tls on\n"
                "tls_starttls on\n"
                "tls_trust_file %s\n"
                "tls_host_override localhost\n"
                "auth plain\n"
                "user %s\n"
                "password %s\n"
                "from %s\n"
                "timeout 60\n"
                "account default : app\n"
                % (os.path.join(pf.dir, name + ".log"), pf.port, ca, USER,
                   password, SENDER))
    os.chmod(path, 0o600)     # msmtp refuses a readable file with a password
    return path


def msmtp(pf, conf, data):
    r = run(["msmtp", "-C", conf, "-t"], input=data)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def main():
    require("msmtp")
    with PeerFleet("msmtp") as pf:
        pf.start()
        up = pf.upstream()
        pf.relay(["--host", "127.0.0.1", "--port", str(up.port),
                  "--tls", "none"])

        data = message("msmtp")
        rc, out = msmtp(pf, msmtp_conf(pf, "good", PASSWORD, pf.ca), data)
        assert rc == 0, (rc, out)
        msgs = wait_until(lambda: up.messages(), 20, "the message upstream")
        assert len(msgs) == 1, msgs
        m = msgs[0]
        assert m["from"] == SENDER and m["rcpts"] == ["user@example.net"], m
        assert "BODY=8BITMIME" in m.get("params", "").upper(), m
        rec, rest = split_received(m["data"])
        assert rest == data, (rest, data)
        assert rec.group("proto") == b"ESMTPSA", rec.group(0)

        rc, out = msmtp(pf, msmtp_conf(pf, "badpw", "wrong", pf.ca), data)
        assert rc != 0 and "535" in out, (rc, out)

        other = os.path.join(pf.dir, "other-ca")
        os.makedirs(other)
        other_ca = make_ca(other)[0]
        rc, out = msmtp(pf, msmtp_conf(pf, "untrusted", PASSWORD, other_ca),
                        data)
        assert rc != 0 and "TLS" in out.upper(), (rc, out)
        assert len(up.messages()) == 1, up.messages()
    print("ok")


if __name__ == "__main__":
    main()
