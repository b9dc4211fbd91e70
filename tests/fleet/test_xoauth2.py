#!/usr/bin/env python3
"""fleet_xoauth2: an XOAUTH2 hop made with sluicectl reaches a real node
through the controller (issue 15): `hop add --oauth2 m365` with the
client secret on stdin, token endpoint and upstream on loopback (test
CA, tests/delivery/tokenep.py and upstream.py checking the XOAUTH2
string).  Mail arrives authenticated as the mailbox; a second hop whose
token endpoint is down fails over to the next hop (nothing bounced) and
shows as failing in `route explain` (ALERT hop-config) and on /metrics."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import (FleetOps, Upstream, free_port, http_get,  # noqa: E402
                      parse_prometheus, sample, wait_until)
from dlvkit import TokenEndpoint, jsonl, make_ca  # noqa: E402

SCOPE = "https://outlook.office365.com/.default"
SECRET = "m365-client-s3cret-fleet"


def main():
    with FleetOps("xoauth2") as f:
        f.start()
        things = []
        try:
            run(f, things)
        finally:
            for t in things:
                t.stop()
    print("ok")


def run(f, things):
    ca, crt, key = make_ca(f.dir, ("localhost",))
    path = "/contoso.example/oauth2/v2.0/token"
    ep = TokenEndpoint(f.dir, "ep", "--cert", crt, "--key", key,
                       "--client-id", "app-id-1", "--client-secret", SECRET,
                       "--scope", SCOPE, "--user", "app@contoso.example")
    things.append(ep.start(path))
    up = Upstream(f.dir, "m365", "--xoauth2-tokens", ep.tokens,
                  "--tls-cert", crt, "--tls-key", key)
    things.append(up.start())
    fb = Upstream(f.dir, "fb")
    things.append(fb.start())

    f.ctl("network", "allow", "127.0.0.0/8")
    common = ["--oauth2", "m365", "--tenant", "contoso.example",
              "--client-id", "app-id-1", "--user", "app@contoso.example",
              "--client-secret-stdin", "--host", "localhost", "--port",
              str(up.port)]
    f.ctl("hop", "add", "o365", *common, "--token-url", ep.url(path),
          input=SECRET + "\n")
    f.ctl("hop", "add", "o365down", *common, "--token-url",
          "https://localhost:%d%s" % (free_port(), path),
          input=SECRET + "\n")
    f.ctl("hop", "add", "fb", "--host", "127.0.0.1", "--port",
          str(fb.port), "--tls", "none")
    f.ctl("route", "set", "sec.test", "o365")
    f.ctl("route", "set", "down.test", "o365down", "fb")
    v = f.policy_version()
    f.start_relay("n1", extra="tls_ca_file = %s\n" % ca)
    f.wait_node_version("n1", v, timeout=30)

    f.send("n1", "a@example.com", ["x@sec.test"], "s1")
    wait_until(lambda: len(up.messages()) == 1, 60, "s1 at the m365 hop")
    m = up.messages()[0]
    assert m["auth"] == "app@contoso.example" and m["tls"], m
    assert [r["ok"] for r in ep.requests()] == [True], ep.requests()

    f.send("n1", "a@example.com", ["x@down.test"], "s2")
    wait_until(lambda: len(fb.messages()) == 1, 60, "s2 at the fallback")
    assert len(up.messages()) == 1
    mport = f.metrics_ports["n1"]
    wait_until(lambda: sample(parse_prometheus(http_get(mport)),
                              "sluice_hop_alert", hop="o365down",
                              scope="hop-config") == 1, 30,
               "o365down alert on /metrics")

    def explained():
        out = f.ctl("route", "explain", "x@down.test").stdout
        return re.search(r"o365down.*ALERT hop-config", out) and out
    out = wait_until(explained, 30, "route explain shows o365down failing")
    assert "fb" in out, out
    log = f.nodes["n1"].output()
    assert re.search(r"delivery status=deferred to=<x@down.test> "
                     r"hop=o365down .*XOAUTH2 token request to "
                     r"https://localhost:\d+/contoso.example/oauth2/v2.0/"
                     r"token failed", log), log
    assert "status=bounced" not in log and SECRET not in log
    tokens = jsonl(ep.tokens)
    assert tokens and all(t["token"] not in log for t in tokens)


if __name__ == "__main__":
    main()
