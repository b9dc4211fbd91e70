"""delivery_mx: direct delivery through hop "mx" with a real DNS server
(dnsmasq on loopback, node config "resolver = 127.0.0.1:PORT").

  mx.test     MX 10 mx1.mx.test (127.0.0.2), MX 20 mx2.mx.test (127.0.0.3)
  plain.test  no MX, A 127.0.0.4 (RFC 5321 5.1 implicit MX)

Preference is followed (mx1 while it is up), the next MX is used in the
same attempt when mx1 refuses, the A record serves a domain without MX,
a domain that does not exist bounces, and with every MX down the message is deferred after trying each of
them, then delivered when one returns."""
import os
import shutil

from dlvkit import (Node, Proc, Scenario, Upstream, free_port, message,
                    wait_until)

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class Dns:
    def __init__(self, d, port):
        self.port = port
        self.proc = Proc([DNSMASQ, "--no-daemon", "--port=%d" % port,
                          "--listen-address=127.0.0.1", "--bind-interfaces",
                          "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                          "--user=root" if os.geteuid() == 0 else
                          "--user=%s" % os.environ.get("USER", "nobody"),
                          "--mx-host=mx.test,mx1.mx.test,10",
                          "--mx-host=mx.test,mx2.mx.test,20",
                          "--host-record=mx1.mx.test,127.0.0.2",
                          "--host-record=mx2.mx.test,127.0.0.3",
                          "--host-record=plain.test,127.0.0.4",
                          "--local=/test/"],
                         os.path.join(d, "dnsmasq.log"))

    def start(self):
        self.proc.start()
        wait_until(lambda: self.proc.alive() and
                   "started" in self.proc.output(), 10, "dnsmasq up")
        return self

    def stop(self):
        self.proc.stop()


def main():
    with Scenario("mx") as sc:
        dns = sc.add(Dns(sc.dir, free_port())).start()
        port = free_port()
        mx1 = sc.add(Upstream(sc.dir, "mx1", host="127.0.0.2", port=port))
        mx2 = sc.add(Upstream(sc.dir, "mx2", host="127.0.0.3", port=port))
        plain = sc.add(Upstream(sc.dir, "plain", host="127.0.0.4",
                                port=port))
        for u in (mx1, mx2, plain):
            u.start()
        node = sc.add(Node(sc.dir, hops=["mx:port=%d" % port],
                           routes=["*=mx"],
                           extra="resolver = 127.0.0.1:%d" % dns.port)
                      ).start()
        # Preference: mx1.
        node.send("a@example.com", ["u1@mx.test"], message("pref"))
        wait_until(lambda: mx1.rcpts() == ["u1@mx.test"], 20, "at mx1")
        assert mx2.messages() == []
        # mx1 down: mx2 in the same attempt.
        mx1.stop()
        qid = node.send("a@example.com", ["u2@mx.test"], message("next"))
        wait_until(lambda: mx2.rcpts() == ["u2@mx.test"], 20, "at mx2")
        assert "%s delivery: deferred" % qid not in node.log()
        # No MX: the A record.
        node.send("a@example.com", ["u3@plain.test"], message("implicit"))
        wait_until(lambda: plain.rcpts() == ["u3@plain.test"], 20,
                   "at plain.test's A")
        # NXDOMAIN: final, bounced with a DSN (to the sender at plain.test).
        qid = node.send("s@plain.test", ["u5@nx.test"], message("nx"))
        wait_until(lambda: "s@plain.test" in plain.rcpts(), 20, "DSN")
        assert "%s delivery status=bounced to=<u5@nx.test>" % qid \
            in node.log()
        dsn = [m for m in plain.messages() if m["from"] == ""][0]
        assert "Status: 5.1.2" in dsn["data"], dsn["data"]
        # Every MX down: deferred after trying both, then delivered.
        mx2.stop()
        qid = node.send("a@example.com", ["u4@mx.test"], message("later"))
        node.wait_log(r"%s delivery: deferred" % qid, 20)
        log = node.log()
        assert "mx1.mx.test[127.0.0.2:%d]" % port in log
        assert "mx2.mx.test[127.0.0.3:%d]" % port in log
        mx2.start()
        wait_until(lambda: "u4@mx.test" in mx2.rcpts(), 20, "retried")
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        print("ok")


if __name__ == "__main__":
    main()
