#!/usr/bin/env python3
"""A Message-ID that is not UTF-8 does not freeze a node's delivery record
(issue 11).

A message whose Message-ID carries the octets ff fe c0 goes through a real
node to a real upstream.  Its received and delivered events reach
PostgreSQL (the Message-ID stored as <\\xFF\\xFE\\xC0...>, the raw event
beside it), so do the events of a message sent after it, and
`sluicectl trace` finds it by the escaped form and shows it escaped.
Before, PostgreSQL refused the batch ("invalid byte sequence for encoding
UTF8") and the node resent it forever: no later event was ever stored.
"""
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, wait_until  # noqa: E402


def send(port, msgid):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.test")
    data = (b"From: <a@example.com>\r\nTo: <b@example.net>\r\n"
            b"Subject: bytes\r\nMessage-ID: " + msgid + b"\r\n\r\nhi\r\n")
    s.sendmail("a@example.com", ["b@example.net"], data)
    s.quit()


def main():
    with FleetOps("recordbytes", heartbeat_ms=200) as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("1 passed, 0 failed")


def run(f, up):
    v = f.relay_policy(up.port)
    f.start_relay("n1")
    f.wait_node_version("n1", v)
    port = f.smtp_ports["n1"]
    send(port, b"<\xff\xfe\xc0@bytes.test>")
    send(port, b"<after@bytes.test>")
    wait_until(lambda: len(up.messages()) >= 2, 20, "both delivered")

    def stored():
        return f.pg.psql("SELECT count(*) FROM events WHERE kind IN "
                         "('received', 'delivered')") == "4"
    wait_until(stored, 20, "received and delivered events of both")
    mids = f.pg.psql("SELECT DISTINCT message_id FROM events WHERE "
                     "message_id <> '' ORDER BY 1").split("\n")
    assert mids == ["<\\xFF\\xFE\\xC0@bytes.test>", "<after@bytes.test>"], \
        mids
    # every event of that message keeps its raw bytes, no other does
    raw = f.pg.psql("SELECT count(*) FILTER (WHERE position("
                    "'\\xfffec0'::bytea IN raw) > 0), count(*) FILTER "
                    "(WHERE raw IS NOT NULL), count(*) FILTER (WHERE "
                    "message_id LIKE '<\\\\xFF%') FROM events")
    assert raw == "2|2|2", raw
    out = f.ctl("trace", "<\\xFF\\xFE\\xC0@bytes.test>").stdout
    assert "received" in out and "delivered" in out, out
    assert "msgid=<\\xFF\\xFE\\xC0@bytes.test>" in out, out
    out = f.ctl("trace", "<after@bytes.test>").stdout
    assert "delivered" in out, out
    assert f.pg.psql("SELECT count(*) FROM events_quarantine") == "0"
    print("ok: trace shows\n" + out)


if __name__ == "__main__":
    main()
