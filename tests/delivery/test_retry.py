"""delivery_retry: both hops down -> the message is deferred (events for
each hop, then "deferred ... next attempt"), retried on the backoff
schedule, and delivered exactly once when the fallback comes back."""
from dlvkit import (Node, Scenario, Upstream, message, split_received,
                    wait_until)


def main():
    with Scenario("retry") as sc:
        primary = sc.add(Upstream(sc.dir, "primary"))     # not started
        fallback = sc.add(Upstream(sc.dir, "fallback"))   # not yet
        node = sc.add(Node(sc.dir, hops=[
            "primary:host=127.0.0.1,port=%d" % primary.port,
            "fallback:host=127.0.0.1,port=%d" % fallback.port],
            routes=["*=primary;fallback"],
            limits={"retry_min_seconds": 1, "retry_max_seconds": 2})
        ).start()
        data = message("retry")
        qid = node.send("a@example.com", ["b@example.net"], data)
        node.wait_log(r"%s delivery: deferred 1 recipient" % qid)
        log = node.log()
        assert "%s delivery status=deferred to=<b@example.net> " \
            "hop=primary" % qid in log
        assert "%s delivery status=deferred to=<b@example.net> " \
            "hop=fallback" % qid in log
        assert node.queue_len() == 1
        # A second attempt happens on schedule, still failing.
        wait_until(lambda: node.log().count(
            "%s delivery: deferred" % qid) >= 2, 15, "second attempt")
        fallback.start()
        msgs = wait_until(fallback.messages, 20, "delivered via fallback")
        assert split_received(msgs[0]["data"])[1] == data
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        assert len(fallback.messages()) == 1
        print("ok")


if __name__ == "__main__":
    main()
