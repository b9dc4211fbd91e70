"""delivery_immediate: delivery is driven by the due-time index, not by a
poll.  The node's housekeeping tick is set to its maximum (60 s), so a
delivery that waited for a tick could not happen before it fires:
  - a new message is delivered as soon as its commit is durable, on the
    session the pool keeps to the hop (a second message reuses it: one
    connection for both);
  - a deferred message is retried on its backoff schedule (1 s here), and
    delivered when its hop comes back;
  - at a restart the index is rebuilt from the spool: a message queued
    while the hop was down goes at its next attempt after the restart."""
from dlvkit import Node, Scenario, Upstream, message, wait_until

TICK = "delivery_tick_ms = 60000\n"


def main():
    with Scenario("immediate") as sc:
        up = sc.add(Upstream(sc.dir, "up")).start()
        later = sc.add(Upstream(sc.dir, "later"))      # not started
        node = sc.add(Node(sc.dir, hops=[
            "up:host=127.0.0.1,port=%d" % up.port,
            "later:host=127.0.0.1,port=%d" % later.port],
            routes=["down.example=later", "*=up"],
            limits={"retry_min_seconds": 1, "retry_max_seconds": 2},
            extra=TICK)).start()
        # 1. new mail goes at once, on the pooled session.
        a = node.send("a@example.com", ["b@example.net"], message("first"))
        wait_until(lambda: len(up.messages()) == 1, 20,
                   "the first message delivered before any tick")
        b = node.send("a@example.com", ["c@example.net"], message("second"))
        wait_until(lambda: len(up.messages()) == 2, 20,
                   "the second message delivered before any tick")
        conns = {m["conn"] for m in up.messages()}
        assert len(conns) == 1, up.events()
        # The upstream has the message before the node logs the 250.
        for qid in (a, b):
            node.wait_log(r"%s delivery status=sent" % qid)
        # 2. deferred mail is retried on its schedule.
        c = node.send("a@example.com", ["x@down.example"], message("third"))
        node.wait_log(r"%s delivery: deferred 1 recipient" % c)
        wait_until(lambda: node.log().count(
            "%s delivery: deferred" % c) >= 2, 20,
            "a second attempt on the backoff schedule, not on a tick")
        # 3. after a restart the index is rebuilt from the spool.
        node.stop()
        node.start()
        later.start()
        msgs = wait_until(later.messages, 20,
                          "the deferred message delivered after restart")
        assert msgs[0]["rcpts"] == ["x@down.example"], msgs
        node.wait_log(r"%s delivery status=sent" % c)
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        assert len(up.messages()) == 2 and len(later.messages()) == 1
        print("ok")


if __name__ == "__main__":
    main()
