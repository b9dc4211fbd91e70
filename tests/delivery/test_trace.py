"""delivery_trace: the delivery record in PostgreSQL.  A real fleet
(PostgreSQL, controller, sluicectl) and a node whose route is
"primary sendgrid": the primary refuses connections, the SendGrid-style
fallback (STARTTLS required, verified, AUTH) delivers.  `sluicectl trace
QUEUE-ID` then shows every attempt: received, deferred on hop primary
with the connection failure, delivered on hop sendgrid with its 250; and
`sluicectl log --status delivered` finds it."""
import os
import smtplib

from dlvkit import Upstream, free_port, make_ca, message, port_open
from fleet import Fleet, wait_until


def main():
    with Fleet("dlv-trace", heartbeat_ms=300).start() as f:
        ca, crt, key = make_ca(f.dir, ("localhost",))
        up = Upstream(f.dir, "sendgrid", "--tls-cert", crt, "--tls-key",
                      key, "--auth", "apikey:SG.k").start()
        try:
            dead = free_port()
            f.ctl("network", "allow", "127.0.0.0/8")
            f.ctl("hop", "add", "primary", "--host", "127.0.0.1", "--port",
                  str(dead), "--tls", "none")
            f.ctl("hop", "add", "sendgrid", "--host", "localhost", "--port",
                  str(up.port), "--tls", "require", "--user", "apikey",
                  "--secret-stdin", input="SG.k\n")
            f.ctl("route", "set", "*", "primary", "sendgrid")
            port = free_port()
            node = f.start_node("edge", extra=(
                "listen = 127.0.0.1:%d relay\nhostname = edge.test\n"
                "tls_ca_file = %s\ndelivery_tick_ms = 50\n" % (port, ca)))
            version = f.ctl_json("policy", "history")["versions"][0][
                "version"]
            wait_until(lambda: port_open("127.0.0.1", port), 15, "listener")
            wait_until(lambda: (f.node_status("edge") or {}).get(
                "policy_version") == version, 15, "node on the policy")
            s = smtplib.SMTP("127.0.0.1", port, timeout=30)
            s.ehlo("client.test")
            s.mail("a@example.com")
            s.rcpt("b@example.net")
            code, resp = s.data(message("trace"))
            s.quit()
            assert code == 250, resp
            qid = resp.decode().split()[-1]
            wait_until(lambda: up.rcpts() == ["b@example.net"], 30,
                       "delivered via sendgrid")

            def kinds():
                ev = f.ctl_json("trace", qid)["events"]
                return [(e["kind"], e["hop"]) for e in ev]
            wait_until(lambda: ("delivered", "sendgrid") in kinds(), 30,
                       "trace complete in PostgreSQL")
            ev = f.ctl_json("trace", qid)["events"]
            by = {(e["kind"], e["hop"]): e for e in ev}
            assert ("deferred", "primary") in by, ev
            assert "refused" in by[("deferred", "primary")]["reply"].lower()
            d = by[("delivered", "sendgrid")]
            assert d["code"] == 250 and d["recipient"] == "b@example.net"
            assert d["node"] == "edge"
            text = f.ctl("trace", qid).stdout
            assert "primary" in text and "sendgrid" in text, text
            log = f.ctl_json("log", "--status", "delivered")["events"]
            assert any(e["queue_id"] == qid for e in log), log
            print("ok")
        finally:
            up.stop()
            if os.environ.get("DLV_KEEP"):
                print(f.dir)


if __name__ == "__main__":
    main()
