"""delivery_dsn: the upstream answers 550 5.1.1 for one recipient of
three.  The other two are delivered; the rejected one bounces with an
RFC 3464 DSN (multipart/report, null sender) to the envelope sender, and
the message leaves the spool.  A message from the null sender that
bounces produces no DSN.  A 552 to DATA bounces every recipient."""
from dlvkit import Node, Scenario, Upstream, message, wait_until


def main():
    with Scenario("dsn") as sc:
        up = sc.add(Upstream(sc.dir, "up", "--rcpt-code",
                             "bad@example.net=550")).start()
        data_rej = sc.add(Upstream(sc.dir, "datarej", "--data-code",
                                   "552")).start()
        node = sc.add(Node(sc.dir, hops=[
            "up:host=127.0.0.1,port=%d" % up.port,
            "datarej:host=127.0.0.1,port=%d" % data_rej.port],
            routes=["*=up", "big.test=datarej"])).start()
        qid = node.send("sender@example.com",
                        ["ok1@example.net", "bad@example.net",
                         "ok2@example.net"], message("dsn"))
        # Two deliveries: the message to ok1/ok2, then the DSN.
        wait_until(lambda: len(up.messages()) == 2, 20, "message + DSN")
        first, dsn = up.messages()
        assert sorted(first["rcpts"]) == ["ok1@example.net",
                                          "ok2@example.net"], first
        assert dsn["from"] == "", dsn
        assert dsn["rcpts"] == ["sender@example.com"], dsn
        body = dsn["data"]
        for needle in ("multipart/report; report-type=delivery-status",
                       "Final-Recipient: rfc822; bad@example.net",
                       "Action: failed", "Status: 5.1.1",
                       "Diagnostic-Code: smtp; 550 5.1.1",
                       "Reporting-MTA: dns; relay.test",
                       "Content-Type: text/rfc822-headers",
                       "Subject: dsn", "Auto-Submitted: auto-replied"):
            assert needle in body, (needle, body)
        assert "ok1@example.net" not in body.split("Reporting-MTA")[1]
        log = node.log()
        assert "%s delivery status=bounced to=<bad@example.net>" % qid in log
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")

        # Null sender: bounces silently.
        node.send("", ["bad@example.net"], message("null"))
        wait_until(lambda: node.log().count("status=bounced") == 2, 20,
                   "second bounce")
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        assert len(up.messages()) == 2

        # 552 to DATA: final for every recipient of the transaction.
        node.send("s2@example.com", ["x@big.test", "y@big.test"],
                  message("big"))
        wait_until(lambda: len(up.messages()) == 3, 20, "DSN for 552")
        dsn2 = up.messages()[2]
        assert "Final-Recipient: rfc822; x@big.test" in dsn2["data"]
        assert "Final-Recipient: rfc822; y@big.test" in dsn2["data"]
        assert dsn2["rcpts"] == ["s2@example.com"]
        print("ok")


if __name__ == "__main__":
    main()
