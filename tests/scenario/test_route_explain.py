"""route explain: the route a recipient takes (most specific pattern wins),
its hop groups in failover order with weight shares, and each hop's health
as the nodes report it: a hop that refuses connections shows its circuit
open once the node has tried it."""
import smtplib

from fleet import Fleet, free_port, wait_until


def explain(f, rcpt):
    return f.ctl_json("route", "explain", rcpt)


def main():
    with Fleet("explain", heartbeat_ms=200).start() as f:
        dead = free_port()      # nothing listens here: connection refused
        dead2 = free_port()
        f.ctl("network", "allow", "127.0.0.0/8")
        f.ctl("hop", "add", "primary", "--host", "127.0.0.1", "--port",
              str(dead), "--tls", "none", "--weight", "3")
        f.ctl("hop", "add", "backup", "--host", "127.0.0.1", "--port",
              str(dead2), "--tls", "none")
        f.ctl("hop", "add", "sendgrid", "--preset", "sendgrid",
              "--secret-stdin", input="SG.x\n")
        f.ctl("route", "set", "*", "primary,backup", "sendgrid")
        f.ctl("route", "set", "*.example.com", "mx")
        f.ctl("route", "set", "a.example.com", "backup")

        e = explain(f, "someone@example.org")
        assert e["route"] == "*", e
        g = e["groups"]
        assert [h["name"] for h in g[0]["hops"]] == ["primary", "backup"]
        assert [h["share_percent"] for h in g[0]["hops"]] == [75, 25]
        assert g[1]["hops"][0]["name"] == "sendgrid"
        assert g[1]["hops"][0]["target"] == "smtp.sendgrid.net:587"
        assert g[1]["hops"][0]["tls"] == "require"
        assert g[0]["hops"][0]["health"] == "no reports yet"
        assert explain(f, "x@b.example.com")["route"] == "*.example.com"
        assert explain(f, "x@a.example.com")["route"] == "a.example.com"
        assert explain(f, "example.com")["route"] == "*"  # apex: not *.
        human = f.ctl("route", "explain", "someone@example.org").stdout
        assert "route '*'" in human and "75%" in human, human

        # A node tries the refusing hops: their circuits open, and
        # explain says so.
        port = free_port()
        f.start_node("edge-1", extra="listen = 127.0.0.1:%d relay\n" % port)
        f.wait_node_version("edge-1", f.policy_version())
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            for i in range(4):
                s.sendmail("app@example.net", ["ops@example.org"],
                           "Subject: %d\r\n\r\nbody\r\n" % i)
        wait_until(lambda: "circuit open" in
                   explain(f, "ops@example.org")["groups"][0]["hops"][0]
                   ["health"], timeout=30,
                   what="primary's circuit to show as open")
        r = f.ctl("route", "explain", "--bogus", check=False)
        assert r.returncode == 2, r
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
