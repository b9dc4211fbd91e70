"""delivery_basic: primary up -> delivered via primary, byte for byte,
over STARTTLS (required, verified against the test CA) with AUTH, and the
message leaves the spool.  Also dot-stuffing and a message to several
recipients in one pipelined transaction, and a 200 KB message of lines
that all start with a dot (the data goes out in 64 KB reads: line starts
fall on both sides of every read boundary).

  C: EHLO relay.test / STARTTLS / EHLO / AUTH PLAIN ... / MAIL / RCPT x2 /
     DATA (one write)
  upstream must have: the exact data, both recipients, tls=true,
  auth=apikey
"""
from dlvkit import (Node, Scenario, Upstream, make_ca, message,
                    split_received, wait_until)


def main():
    with Scenario("basic") as sc:
        ca, crt, key = make_ca(sc.dir, ("localhost",))
        up = sc.add(Upstream(sc.dir, "primary", "--tls-cert", crt,
                             "--tls-key", key, "--auth", "apikey:s3cret")
                    ).start()
        node = sc.add(Node(sc.dir, hops=[
            "primary:host=localhost,port=%d,tls=require,verify=1,"
            "user=apikey,secret=s3cret" % up.port],
            routes=["*=primary"], extra="tls_ca_file = %s" % ca)).start()
        data = message("basic", body="line one\r\n.leading dot\r\n"
                       "..two dots\r\nlast\r\n")
        qid = node.send("a@example.com", ["b@example.net", "c@example.org"],
                        data)
        msgs = wait_until(up.messages, 20, "message at primary")
        m = msgs[0]
        rcv, got = split_received(m["data"])
        assert got == data, (m["data"], data)
        # RFC 5321 4.4 / RFC 3848: our trace field, no AUTH user in it
        assert rcv["helo"] == b"client.test" and rcv["ip"] == b"127.0.0.1"
        assert rcv["by"] == b"relay.test" and rcv["proto"] == b"ESMTP"
        assert rcv["qid"].decode() == qid and rcv["rcpt"] is None
        assert sorted(m["rcpts"]) == ["b@example.net", "c@example.org"]
        assert m["from"] == "a@example.com"
        assert m["tls"] is True and m["auth"] == "apikey", m
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        assert len(up.messages()) == 1
        big = message("dots", body="".join(
            "." * (1 + i % 7) + "x" * (i % 61) + "\r\n"
            for i in range(7000)))
        assert len(big) > 3 * 65536
        node.send("a@example.com", ["d@example.net"], big)
        m = wait_until(lambda: up.messages()[1:], 20, "big message")[0]
        assert split_received(m["data"])[1] == big
        assert "%s delivery status=sent to=<b@example.net> hop=primary" \
            % qid in node.log(), node.log()
        # Opportunistic STARTTLS whose handshake fails: the same server
        # again in plain text (RFC 7435 spirit, as Postfix does).
        opp = sc.add(Upstream(sc.dir, "opp", "--broken-starttls")).start()
        node.stop()
        node2 = sc.add(Node(sc.dir + "/n2", hops=[
            "opp:host=127.0.0.1,port=%d,tls=starttls" % opp.port],
            routes=["*=opp"])).start()
        node2.send("a@example.com", ["o@example.net"], message("opp"))
        m = wait_until(opp.messages, 20, "plain-text retry")[0]
        assert m["tls"] is False and m["rcpts"] == ["o@example.net"]
        assert "TLS failed, retrying without TLS" in node2.log()
        print("ok")


if __name__ == "__main__":
    main()
