"""delivery_8bitmime: 8-bit mail and the next hop's 8BITMIME (RFC 6152),
and DSNs for internationalised mail (RFC 6533).  docs/delivery.md,
"8BITMIME".

  C: MAIL FROM:<a@example.com>            (no BODY=8BITMIME declared)
     DATA with UTF-8 / Latin-1 octets in the body
  to a hop offering 8BITMIME:
     upstream must have MAIL ... BODY=8BITMIME and the data byte for byte
  to a hop NOT offering 8BITMIME:
     upstream must have no BODY= and only 7-bit data; the 8-bit parts are
     quoted-printable and decode to the original octets; base64 parts and
     boundaries are untouched
  8-bit octets in a header, to a hop without 8BITMIME:
     not sent; bounced 554 5.6.3; the DSN is RFC 6533-shaped
     (global-delivery-status, utf-8 address types, message/global-headers)
  C: MAIL FROM:<s@intl.test> SMTPUTF8, a UTF-8 Subject, 550 at RCPT:
     DSN RFC 6533-shaped, sent with SMTPUTF8
  C: MAIL ... SMTPUTF8 / RCPT TO:<ü@intl.test>: our Received: says
     "with UTF8SMTP ... for <ü@intl.test>", relayed with SMTPUTF8
"""
import email
import email.policy
import smtplib

from dlvkit import (Node, Scenario, Upstream, split_received, wait_until)

BODY = "Grüße aus Köln, ça va? — 日本語\r\n".encode()
LATIN1 = "déjà vu, naïve façade\r\n".encode("latin-1")


def head(subject, extra=""):
    return ("From: a@example.com\r\nTo: b@example.net\r\n"
            "Subject: %s\r\nMessage-ID: <%s@client.test>\r\n%s\r\n"
            % (subject, subject, extra)).encode()


def send(node, sender, rcpts, data, options=()):
    c = smtplib.SMTP("127.0.0.1", node.port, timeout=30)
    c.ehlo("client.test")
    code, resp = c.mail(sender, list(options))
    assert code == 250, (code, resp)
    for r in rcpts:
        assert c.rcpt(r)[0] == 250
    code, resp = c.data(data)
    assert code == 250, (code, resp)
    c.quit()
    return resp.split()[-1].decode()


def raw(m):
    return m["data"].encode("latin-1")


def check_rfc6533(dsn, rcpt, status):
    data = raw(dsn)
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg
    assert msg.get_param("report-type") == "global-delivery-status", msg
    types = [p.get_content_type() for p in msg.get_payload()]
    assert types == ["text/plain", "message/global-delivery-status",
                     "message/global-headers"], types
    status_part = data.split(b"Content-Type: message/global-delivery-"
                             b"status\r\n\r\n")[1]
    assert b"Final-Recipient: utf-8; %s\r\n" % rcpt.encode() in \
        status_part, status_part
    assert b"Original-Recipient: utf-8; " in status_part
    assert b"Status: %s\r\n" % status.encode() in status_part
    assert b"rfc822;" not in status_part
    return data


def main():
    with Scenario("8bitmime") as sc:
        full = sc.add(Upstream(sc.dir, "full")).start()
        seven = sc.add(Upstream(sc.dir, "seven", "--no-8bitmime")).start()
        seven2 = sc.add(Upstream(sc.dir, "seven2", "--no-8bitmime")).start()
        intl = sc.add(Upstream(sc.dir, "intl", "--smtputf8",
                               "--rcpt-code", "bad@intl.test=550")).start()
        node = sc.add(Node(sc.dir, hops=[
            "full:host=127.0.0.1,port=%d" % full.port,
            "seven:host=127.0.0.1,port=%d" % seven.port,
            "seven2:host=127.0.0.1,port=%d" % seven2.port,
            "intl:host=127.0.0.1,port=%d" % intl.port],
            routes=["*=full", "seven.test=seven", "intl.test=intl",
                    "later.test=seven;full", "nowhere.test=seven;seven2"])
        ).start()

        # 1. undeclared 8-bit to a hop offering 8BITMIME: declared for it
        data = head("eight") + BODY
        send(node, "a@example.com", ["b@full.test"], data)
        m = wait_until(full.messages, 20, "8-bit at full")[0]
        assert "BODY=8BITMIME" in m["params"].upper(), m["params"]
        assert split_received(m["data"])[1] == data

        # 2. the same to a hop without 8BITMIME: quoted-printable
        send(node, "a@example.com", ["c@seven.test"], data)
        m = wait_until(seven.messages, 20, "downgraded at seven")[0]
        assert "BODY=" not in m["params"].upper(), m["params"]
        got = raw(m)
        assert max(got) < 128, "8-bit octets sent to a 7-bit hop"
        assert all(len(ln) <= 78 for ln in got.split(b"\r\n")), got
        msg = email.message_from_bytes(split_received(got)[1],
                                       policy=email.policy.compat32)
        assert msg["Content-Transfer-Encoding"] == "quoted-printable", msg
        assert msg["MIME-Version"] == "1.0"
        assert msg.get_payload(decode=True) == BODY, msg.get_payload()
        assert msg["Subject"] == "eight"

        # 3. multipart: the 8-bit parts converted, base64 untouched
        mp = head("multi", "MIME-Version: 1.0\r\n"
                  "Content-Type: multipart/mixed; boundary=\"=_b\"\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n") + (
            b"preamble\r\n--=_b\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + BODY +
            b"--=_b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
            + LATIN1 + b"--=_b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n"
            b"--=_b--\r\n")
        send(node, "a@example.com", ["d@seven.test"], mp)
        m = wait_until(lambda: seven.messages()[1:], 20, "multipart")[0]
        got = raw(m)
        assert max(got) < 128
        msg = email.message_from_bytes(split_received(got)[1],
                                       policy=email.policy.compat32)
        parts = msg.get_payload()
        # (the CRLF before a boundary belongs to the boundary)
        assert [p.get_payload(decode=True) for p in parts] == \
            [BODY[:-2], LATIN1[:-2], bytes(range(6))], parts
        assert [p["Content-Transfer-Encoding"] for p in parts] == \
            ["quoted-printable", "quoted-printable", "base64"]
        assert msg["Content-Transfer-Encoding"] == "7bit"

        # 4. 8-bit header to the 7-bit hop: bounced, RFC 6533 DSN (it
        # goes to a@example.com via "full", which offers 8BITMIME)
        hdr8 = head("hdr8").replace(b"Subject: hdr8",
                                    "Subject: caf\u00e9".encode()) + b"x\r\n"
        qid = send(node, "a@example.com", ["e@seven.test"], hdr8)
        node.wait_log(r"%s delivery status=bounced to=<e@seven.test>"
                      % qid)
        dsn = wait_until(lambda: [x for x in full.messages()
                                  if x["from"] == ""], 20, "DSN")[0]
        assert dsn["rcpts"] == ["a@example.com"]
        d = check_rfc6533(dsn, "e@seven.test", "5.6.3")
        assert b"does not support 8BITMIME" in d, d
        assert "Subject: caf\u00e9".encode() in d   # the original header
        assert "BODY=8BITMIME" in dsn["params"].upper(), dsn["params"]
        assert len(seven.messages()) == 2   # never sent raw

        # 4b. the same message on a route whose first hop lacks 8BITMIME
        # and whose next one has it: not bounced at the first, delivered
        # by the next as it is (the old code bounced it at "seven")
        qid = send(node, "a@example.com", ["f@later.test"], hdr8)
        m = wait_until(lambda: [x for x in full.messages()
                                if x["rcpts"] == ["f@later.test"]], 20,
                       "8-bit header via the next hop")[0]
        assert "BODY=8BITMIME" in m["params"].upper(), m["params"]
        assert split_received(m["data"])[1] == hdr8
        node.wait_log(r"%s delivery status=deferred to=<f@later.test> "
                      r"hop=seven .*dsn=5\.6\.3" % qid)
        node.wait_log(r"%s delivery status=sent to=<f@later.test> hop=full"
                      % qid)
        assert "%s delivery status=bounced" % qid not in node.log()
        assert len(seven.messages()) == 2
        # ...and when no hop of the route can take it: bounced once, after
        # the last hop, with one DSN
        qid = send(node, "a@example.com", ["g@nowhere.test"], hdr8)
        node.wait_log(r"%s delivery status=bounced to=<g@nowhere.test> "
                      r"hop=seven2 .*dsn=5\.6\.3" % qid)
        node.wait_log(r"%s delivery status=deferred to=<g@nowhere.test> "
                      r"hop=seven " % qid)
        wait_until(lambda: len([x for x in full.messages()
                                if x["from"] == ""]) == 2, 20, "2nd DSN")
        assert seven2.messages() == [] and len(seven.messages()) == 2
        assert "all hops failed" not in node.log()

        # 5. SMTPUTF8 transaction, 550 at RCPT: RFC 6533 DSN via SMTPUTF8
        utf = ("From: s@intl.test\r\nTo: bad@intl.test\r\n"
               "Subject: 日本語のテスト\r\n\r\nhi\r\n").encode()
        send(node, "s@intl.test", ["bad@intl.test"], utf,
             options=["SMTPUTF8", "BODY=8BITMIME"])
        dsn = wait_until(lambda: [x for x in intl.messages()
                                  if x["from"] == ""], 20, "intl DSN")[0]
        assert "SMTPUTF8" in dsn["params"].upper(), dsn["params"]
        d = check_rfc6533(dsn, "bad@intl.test", "5.1.1")
        assert "Subject: 日本語のテスト".encode() in d

        # 6. SMTPUTF8 with a UTF-8 recipient: our Received: names it as
        # it is ("for <ü@intl.test>"), relayed with SMTPUTF8
        send(node, "s@intl.test", ["\u00fc@intl.test"], b"Subject: u\r\n"
             b"\r\nhi\r\n", options=["SMTPUTF8"])
        m = wait_until(lambda: [x for x in intl.messages()
                                if x["from"] == "s@intl.test"], 20,
                       "UTF-8 recipient")[0]
        assert "SMTPUTF8" in m["params"].upper(), m["params"]
        rcv, _ = split_received(m["data"])
        assert rcv["rcpt"] == "\u00fc@intl.test".encode(), rcv["rcpt"]
        assert rcv["proto"] == b"UTF8SMTP"

        # and plain ASCII mail still gets the classic shape
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        print("ok")


if __name__ == "__main__":
    main()
