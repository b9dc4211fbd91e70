"""delivery_auth_tls: a hop secret never goes out in clear.

A hop with credentials and tls=starttls faces a server that offers AUTH
but no STARTTLS (what a STARTTLS-stripping man in the middle shows):

  C: EHLO relay.test
  S: 250-... AUTH PLAIN LOGIN        (no STARTTLS)
  C: QUIT                            (no AUTH, ever)

The recipient is deferred on that hop with "TLS required for AUTH but
STARTTLS not offered" (4.7.10) and delivered through the next hop, over
TLS with AUTH.  A hop with credentials and tls=none is refused the same
way.  The stripped server must never have seen an AUTH command.
"""
import re

from dlvkit import Node, Scenario, Upstream, make_ca, message, wait_until


def main():
    with Scenario("auth_tls") as sc:
        ca, crt, key = make_ca(sc.dir, ("localhost",))
        strip = sc.add(Upstream(sc.dir, "strip", "--auth", "u:hopsecret",
                                "--no-starttls")).start()
        plain = sc.add(Upstream(sc.dir, "plain", "--auth", "u:hopsecret",
                                "--tls-cert", crt, "--tls-key", key)
                       ).start()
        fb = sc.add(Upstream(sc.dir, "fallback", "--tls-cert", crt,
                             "--tls-key", key, "--auth", "apikey:k")
                    ).start()
        node = sc.add(Node(sc.dir, hops=[
            "strip:host=127.0.0.1,port=%d,tls=starttls,user=u,"
            "secret=hopsecret" % strip.port,
            "plain:host=127.0.0.1,port=%d,tls=none,user=u,"
            "secret=hopsecret" % plain.port,
            "fallback:host=localhost,port=%d,tls=require,verify=1,"
            "user=apikey,secret=k" % fb.port],
            routes=["strip.test=strip;fallback",
                    "plain.test=plain;fallback"],
            extra="tls_ca_file = %s\ncircuit_failures = 100" % ca)).start()
        q1 = node.send("a@example.com", ["x@strip.test"], message("strip"))
        q2 = node.send("a@example.com", ["x@plain.test"], message("plain"))
        wait_until(lambda: len(fb.messages()) == 2, 30,
                   "both messages at the fallback")
        # the node logs "sent" once the fallback's 250 is in
        wait_until(lambda: all("%s delivery status=sent" % q in node.log()
                               for q in (q1, q2)), 15, "both sent")
        log = node.log()
        assert re.search(
            r"%s delivery status=deferred to=<x@strip.test> hop=strip "
            r".*dsn=4\.7\.10 reply=\"[^\"]*TLS required for AUTH but "
            r"STARTTLS not offered by 127\.0\.0\.1" % q1, log), log
        assert re.search(
            r"%s delivery status=deferred to=<x@plain.test> hop=plain "
            r".*dsn=4\.7\.10 reply=\"[^\"]*TLS required for AUTH" % q2,
            log), log
        # the servers were reached, and never saw AUTH
        assert strip.connections() >= 1 and plain.connections() >= 1
        for up in (strip, plain):
            auths = [e for e in up.events() if e["ev"] == "auth"]
            assert auths == [], auths
            assert up.messages() == []
        assert "hopsecret" not in log
        assert all(m["tls"] and m["auth"] == "apikey"
                   for m in fb.messages())
        print("ok")


if __name__ == "__main__":
    main()
