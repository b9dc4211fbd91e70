"""delivery_provider: provider-aware replies, SES style.

  max_rcpt  hop "ses" takes 2 recipients per transaction: a message to 5
            recipients goes as 3 transactions, never refused.
  454       "454 4.7.0 Throttling failure" slows the hop and the next hop
            takes the mail in the same attempt; no circuit is opened.
  max_size  a message over the hop's max_size is routed past it.
  circuit   a hop that keeps refusing is opened (skipped) after
            circuit_failures, so later mail goes straight to the fallback.
  rate      rate_per_minute 60: four messages to the hop take >= 3 s
            (one token a second, burst of one), none is refused.
"""
import time
from dlvkit import (Node, Scenario, Upstream, free_port, message,
                    wait_until)


def main():
    with Scenario("provider") as sc:
        ses = sc.add(Upstream(sc.dir, "ses")).start()
        thr = sc.add(Upstream(sc.dir, "thr", "--throttle", "1")).start()
        small = sc.add(Upstream(sc.dir, "small")).start()
        fb = sc.add(Upstream(sc.dir, "fb")).start()
        slow = sc.add(Upstream(sc.dir, "slow")).start()
        dead = free_port()
        node = sc.add(Node(sc.dir, hops=[
            "ses:host=127.0.0.1,port=%d,max_rcpt=2" % ses.port,
            "thr:host=127.0.0.1,port=%d" % thr.port,
            "small:host=127.0.0.1,port=%d,max_size=2000" % small.port,
            "dead:host=127.0.0.1,port=%d" % dead,
            "fb:host=127.0.0.1,port=%d" % fb.port,
            "slow:host=127.0.0.1,port=%d,rate=60" % slow.port],
            routes=["split.test=ses", "thr.test=thr;fb",
                    "size.test=small;fb", "dead.test=dead;fb", "slow.test=slow"],
            extra="circuit_failures = 2\ncircuit_cooldown_ms = 60000")
        ).start()
        # max_rcpt: 5 recipients -> 3 transactions.
        rcpts = ["u%d@split.test" % i for i in range(5)]
        node.send("a@example.com", rcpts, message("split"))
        wait_until(lambda: ses.rcpts() == sorted(rcpts), 20, "split")
        sizes = sorted(len(m["rcpts"]) for m in ses.messages())
        assert sizes == [1, 2, 2], sizes
        # 454: fallback in the same attempt.
        qid = node.send("a@example.com", ["u@thr.test"], message("thr"))
        wait_until(lambda: fb.rcpts() == ["u@thr.test"], 20, "throttle fb")
        log = node.log()
        assert "%s delivery status=deferred to=<u@thr.test> hop=thr" % qid \
            in log and "Throttling failure" in log
        assert "%s delivery: deferred" % qid not in log
        # max_size: the big one skips "small".
        node.send("a@example.com", ["s@size.test"], message("small"))
        node.send("a@example.com", ["b@size.test"],
                  message("big", size=5000))
        wait_until(lambda: "b@size.test" in fb.rcpts(), 20, "big via fb")
        wait_until(lambda: small.rcpts() == ["s@size.test"], 20, "small")
        # Circuit: two refusals open "dead"; the third message skips it.
        for i in range(3):
            node.send("a@example.com", ["d%d@dead.test" % i],
                      message("dead %d" % i))
            wait_until(lambda: "d%d@dead.test" % i in fb.rcpts(), 20,
                       "dead %d via fb" % i)
        log = node.log()
        assert log.count("hop=dead relay=127.0.0.1[") == 2, log
        # Rate: 60/min.
        t0 = time.monotonic()
        for i in range(4):
            node.send("a@example.com", ["r%d@slow.test" % i],
                      message("slow %d" % i))
        wait_until(lambda: len(slow.rcpts()) == 4, 20, "rate-limited hop")
        took = time.monotonic() - t0
        assert took >= 2.8, took
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        print("ok (rate: 4 messages in %.1fs)" % took)


if __name__ == "__main__":
    main()
