"""delivery_restart: a message deferred because its hop is down survives
a node restart in the spool (state deferred), is retried by the new
process, and is delivered exactly once."""
from dlvkit import (Node, Scenario, Upstream, message, split_received,
                    wait_until)


def main():
    with Scenario("restart") as sc:
        up = sc.add(Upstream(sc.dir, "hop"))        # down for now
        node = sc.add(Node(sc.dir, hops=[
            "hop:host=127.0.0.1,port=%d" % up.port], routes=["*=hop"],
            limits={"retry_min_seconds": 2, "retry_max_seconds": 2})
        ).start()
        data = message("restart")
        qid = node.send("a@example.com", ["b@example.net"], data)
        node.wait_log(r"%s delivery: deferred" % qid)
        node.stop()     # (exit status: the uplink, not delivery)
        q = node.queue()
        assert len(q) == 1 and q[0].startswith(qid) and \
            "deferred" in q[0], q
        up.start()
        node.start()
        msgs = wait_until(up.messages, 20, "delivered after restart")
        assert split_received(msgs[0]["data"])[1] == data
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        # Once: a few more ticks and retry periods change nothing.
        wait_until(lambda: node.log().count("removed") == 1, 5, "removed")
        node.stop()
        node.start()
        wait_until(lambda: "delivery: started" in node.log().split(
            "node dlv: started")[-2], 10, "restarted")
        assert len(up.messages()) == 1, up.messages()
        print("ok")


if __name__ == "__main__":
    main()
