"""delivery_received: the trace field and loop detection (RFC 5321 4.4,
6.3; docs/smtp.md "Received: and loops").

  C: EHLO client.test / MAIL / RCPT b@example.net / DATA (no Received:)
  upstream must have: "Received: from client.test ([127.0.0.1])
    by relay.test (sluice) with ESMTP id QID for <b@example.net>; DATE"
    first, then the client's data byte for byte
  two recipients: no "for" clause
  49 Received: fields in: accepted, relayed with 50
  50 and 51 Received: fields in:
  S: 554 5.4.6 Message refused: too many Received: fields (mail loop)
     and nothing queued; the session goes on (RSET-free next MAIL works)
"""
import email.utils
import smtplib
import time

from dlvkit import (Node, Scenario, Upstream, message, split_received,
                    wait_until)


def looping(n, subject):
    hops = "".join("Received: from hop%d.example ([192.0.2.%d])\r\n\tby "
                   "hop%d.example with ESMTP id X%d; Sun, 06 Dec 2026 "
                   "10:00:00 +0000\r\n" % (i, i % 250, i + 1, i)
                   for i in range(n))
    return hops.encode() + message(subject)


def main():
    with Scenario("received") as sc:
        up = sc.add(Upstream(sc.dir, "hop")).start()
        node = sc.add(Node(sc.dir, hops=["hop:host=127.0.0.1,port=%d"
                                         % up.port],
                           routes=["*=hop"])).start()
        data = message("trace")
        before = time.time()
        qid = node.send("a@example.com", ["b@example.net"], data)
        m = wait_until(up.messages, 20, "message at the hop")[0]
        rcv, rest = split_received(m["data"])
        assert rest == data, m["data"]
        assert rcv["helo"] == b"client.test" and rcv["ip"] == b"127.0.0.1"
        assert rcv["by"] == b"relay.test" and rcv["proto"] == b"ESMTP"
        assert rcv["qid"].decode() == qid, (rcv["qid"], qid)
        assert rcv["rcpt"] == b"b@example.net", rcv["rcpt"]
        at = email.utils.parsedate_to_datetime(rcv["date"].decode())
        assert before - 2 <= at.timestamp() <= time.time() + 1, at
        # exactly one field of ours, none of the client's
        assert m["data"].count("Received:") == 1

        # Two recipients: no "for" (RFC 5321 7.2: do not disclose the
        # other recipients in each copy).
        node.send("a@example.com", ["c@example.net", "d@example.net"],
                  message("two"))
        m = wait_until(lambda: up.messages()[1:], 20, "second")[0]
        rcv, _ = split_received(m["data"])
        assert rcv["rcpt"] is None and rcv["proto"] == b"ESMTP"

        # 49 hops so far: ours makes 50, the limit; accepted.
        data = looping(49, "hop49")
        node.send("a@example.com", ["e@example.net"], data)
        m = wait_until(lambda: up.messages()[2:], 20, "49-hop message")[0]
        assert split_received(m["data"])[1] == data
        assert m["data"].count("\r\nReceived: ") + 1 == 50
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")

        # 50 and 51: a loop.  Refused after the dot, nothing queued.
        c = smtplib.SMTP("127.0.0.1", node.port, timeout=30)
        c.ehlo("client.test")
        for n in (50, 51):
            assert c.mail("a@example.com")[0] == 250
            assert c.rcpt("f@example.net")[0] == 250
            code, resp = c.data(looping(n, "loop%d" % n))
            assert code == 554 and resp.startswith(b"5.4.6 "), (code, resp)
            assert b"mail loop" in resp, resp
        # the session is still usable
        assert c.mail("a@example.com")[0] == 250
        assert c.rcpt("g@example.net")[0] == 250
        assert c.data(message("after"))[0] == 250
        c.quit()
        wait_until(lambda: len(up.messages()) == 4, 20, "after the loops")
        assert up.messages()[3]["rcpts"] == ["g@example.net"]
        assert node.log().count("smtp accepted") == 4, node.log()
        assert node.log().count("5.4.6") == 2
        assert not any("f@example.net" in r for r in up.rcpts())
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        print("ok")


if __name__ == "__main__":
    main()
