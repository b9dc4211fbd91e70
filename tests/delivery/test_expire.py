"""delivery_expire: a message whose only hop stays down is retried on the
backoff schedule until max_queue_lifetime_seconds (60, the policy's
minimum), then bounces: an "expired" event, a DSN with status 5.4.7 and
the last remote reply, and the message leaves the spool.  The DSN goes
out through a route of its own (sender domain bounce.test)."""
from dlvkit import Node, Scenario, Upstream, free_port, message, wait_until


def main():
    with Scenario("expire") as sc:
        back = sc.add(Upstream(sc.dir, "back")).start()
        node = sc.add(Node(sc.dir, hops=[
            "down:host=127.0.0.1,port=%d" % free_port(),
            "back:host=127.0.0.1,port=%d" % back.port],
            routes=["*=down", "bounce.test=back"],
            limits={"retry_min_seconds": 5, "retry_max_seconds": 20,
                    "max_queue_lifetime_seconds": 60},
            extra="circuit_failures = 1000")).start()
        qid = node.send("s@bounce.test", ["r@example.net"], message("exp"))
        node.wait_log(r"%s delivery: deferred" % qid)
        wait_until(lambda: "%s delivery status=expired" % qid in node.log(),
                   90, "expiry", interval=0.5)
        dsn = wait_until(back.messages, 20, "DSN")[0]
        assert dsn["from"] == "" and dsn["rcpts"] == ["s@bounce.test"]
        assert "Status: 5.4.7" in dsn["data"], dsn["data"]
        assert "Connection refused" in dsn["data"], dsn["data"]
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        attempts = node.log().count("%s delivery: deferred" % qid)
        # 5, 10, 20, 20 ... s apart, the last one capped at expiry.
        assert 3 <= attempts <= 8, attempts
        print("ok: %d attempts before expiry" % attempts)


if __name__ == "__main__":
    main()
