"""delivery_failover: the primary fails, the SendGrid-style fallback
(port 587 style: STARTTLS required, verified, AUTH as "apikey") delivers
in the same attempt - no deferral.  One route per failure mode:

  refuse.test  primary refuses the connection (nothing listens)
  auth.test    primary answers AUTH with 535 5.7.8 (over STARTTLS: a hop
               with credentials never sends AUTH without TLS)
  tls.test     primary offers no STARTTLS but the hop requires TLS
  greet.test   primary greets 421
  temp.test    primary answers 451 to the recipient
  stall.test   primary accepts the connection and never greets

For each: a "deferred" event naming the primary hop with its reply, then
"sent" via hop fallback, and the message only once at the fallback.
"""
from dlvkit import (Node, Scenario, Upstream, free_port, make_ca, message,
                    wait_until)

CASES = {
    "refuse": None,
    "auth": ["--auth-fail"],
    "tls": [],
    "greet": ["--mode", "greet421"],
    "temp": ["--rcpt-code", "user@temp.test=451"],
    "stall": ["--mode", "stall"],
}


def main():
    with Scenario("failover") as sc:
        ca, crt, key = make_ca(sc.dir, ("localhost", "127.0.0.1"))
        fb = sc.add(Upstream(sc.dir, "fallback", "--tls-cert", crt,
                             "--tls-key", key, "--auth", "apikey:SG.key")
                    ).start()
        hops = ["fallback:host=localhost,port=%d,tls=require,verify=1,"
                "user=apikey,secret=SG.key" % fb.port]
        routes = []
        ups = {}
        for name, args in CASES.items():
            if args is None:
                port = free_port()      # nothing listens there
            else:
                if name == "auth":
                    args = args + ["--tls-cert", crt, "--tls-key", key]
                up = sc.add(Upstream(sc.dir, name, *args)).start()
                ups[name] = up
                port = up.port
            tls = {"tls": "require", "auth": "starttls"}.get(name, "none")
            user = ",user=u,secret=p" if name == "auth" else ""
            hops.append("p_%s:host=127.0.0.1,port=%d,tls=%s%s"
                        % (name, port, tls, user))
            routes.append("%s.test=p_%s;fallback" % (name, name))
        node = sc.add(Node(sc.dir, hops, routes, limits={
            "retry_min_seconds": 600, "retry_max_seconds": 600},
            extra="tls_ca_file = %s\ndelivery_timeout_ms = 1500\n"
                  "circuit_failures = 100" % ca)).start()
        qids = {}
        for name in CASES:
            qids[name] = node.send("a@example.com", ["user@%s.test" % name],
                                   message(name))
        wait_until(lambda: len(fb.messages()) == len(CASES), 30,
                   "every message at the fallback")
        wait_until(lambda: node.queue_len() == 0, 20, "queue empty")
        log = node.log()
        for name, qid in qids.items():
            assert ("%s delivery status=deferred to=<user@%s.test> "
                    "hop=p_%s" % (qid, name, name)) in log, (name, log)
            assert ("%s delivery status=sent to=<user@%s.test> "
                    "hop=fallback" % (qid, name)) in log, (name, log)
            assert "%s delivery: deferred" % qid not in log, name
        got = sorted(r for m in fb.messages() for r in m["rcpts"])
        assert got == sorted("user@%s.test" % n for n in CASES), got
        assert all(m["tls"] and m["auth"] == "apikey"
                   for m in fb.messages())
        for name, up in ups.items():
            assert up.messages() == [], name
        assert "535" in log and "421" in log and "451" in log
        print("ok")


if __name__ == "__main__":
    main()
