"""delivery_reuse: 200 messages to one hop with max_conn 2 use at most 2
connections (cached sessions, RSET-free reuse after each transaction,
PIPELINING), and every message arrives once."""
import smtplib

from dlvkit import Node, Scenario, Upstream, message, wait_until

N = 200


def main():
    with Scenario("reuse") as sc:
        up = sc.add(Upstream(sc.dir, "hop")).start()
        node = sc.add(Node(sc.dir, hops=[
            "hop:host=127.0.0.1,port=%d,max_conn=2" % up.port],
            routes=["*=hop"], extra="delivery_idle_ms = 60000")).start()
        probes = up.connections()   # the harness's "is it listening?"
        s = smtplib.SMTP("127.0.0.1", node.port, timeout=30)
        s.ehlo("client.test")
        for i in range(N):
            node.send("a@example.com", ["r%d@example.net" % i],
                      message("reuse %d" % i), smtp=s)
        s.quit()
        wait_until(lambda: len(up.messages()) == N, 60,
                   "%d messages upstream" % N)
        conns = up.connections() - probes
        assert 1 <= conns <= 2, conns
        got = up.rcpts()
        assert got == sorted("r%d@example.net" % i for i in range(N))
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        print("ok: %d messages over %d connections" % (N, conns))


if __name__ == "__main__":
    main()
