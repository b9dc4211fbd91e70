"""delivery_weights: two equal-priority hops with weights 3:1 share 400
messages.  Expected 300:100; a binomial(400, 0.75) has sigma 8.7, so the
stated tolerance is +-40 (4.6 sigma): the heavy hop gets 260..340."""
import smtplib

from dlvkit import Node, Scenario, Upstream, message, wait_until

N = 400


def main():
    with Scenario("weights") as sc:
        a = sc.add(Upstream(sc.dir, "a")).start()
        b = sc.add(Upstream(sc.dir, "b")).start()
        node = sc.add(Node(sc.dir, hops=[
            "a:host=127.0.0.1,port=%d,weight=3" % a.port,
            "b:host=127.0.0.1,port=%d,weight=1" % b.port],
            routes=["*=a,b"], extra="delivery_idle_ms = 60000")).start()
        s = smtplib.SMTP("127.0.0.1", node.port, timeout=30)
        s.ehlo("client.test")
        for i in range(N):
            node.send("a@example.com", ["r%d@example.net" % i],
                      message("w %d" % i), smtp=s)
        s.quit()
        wait_until(lambda: len(a.messages()) + len(b.messages()) == N, 60,
                   "all messages delivered")
        na, nb = len(a.messages()), len(b.messages())
        assert 260 <= na <= 340, (na, nb)
        assert sorted(a.rcpts() + b.rcpts()) == sorted(
            "r%d@example.net" % i for i in range(N))
        print("ok: a=%d b=%d" % (na, nb))


if __name__ == "__main__":
    main()
