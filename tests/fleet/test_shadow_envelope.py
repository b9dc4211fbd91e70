#!/usr/bin/env python3
"""A promoted shadow copy is the message the primary accepted, whole
(issue 13, docs/redundancy.md "what a copy carries").

Two nodes, `redundancy = peer` (n1's holder is n2).  Both upstreams are
down, so n1 keeps three messages queued, each with a copy at n2:
  * one from user `holder` (hold flag, AUTH over STARTTLS): held;
  * one from example.com, which has a DKIM key: signed once, at n1;
  * one accepted on n1's second listener `apps`, which a listener route
    sends to hop L (everything else goes to hop A).
n1 is lost with its disk (spool removed, SIGKILL, `sluicectl node lost`),
the upstreams come up, and n2 promotes the copies:
  * the signed message arrives at A with n1's signature, which python3-dkim
    verifies, and no second one;
  * the listener's message arrives at L, not at A: the listener name
    travelled with the copy;
  * the held message stays held at n2, and arrives only after
    `queue release`.
"""
import os
import re
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fleetkit import (FleetOps, SPOOL_LIST, Upstream, free_port,  # noqa: E402
                      port_open, subjects, submit_auth, wait_until)

sys.path.insert(0, os.path.join(HERE, "..", "smtp"))
from smtpkit import make_cert  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "dkim"))
import dkimkit  # noqa: E402


def shadow_count(f, name):
    d = os.path.join(f.dir, name, "spool", "shadow")
    if not os.path.isdir(d):
        return 0
    r = subprocess.run([SPOOL_LIST, d], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return sum(1 for ln in r.stdout.splitlines()
               if re.match(r"^[0-9A-F]+ ", ln))


def main():
    with FleetOps("shadowenv") as f:
        f.start()
        ups = {n: Upstream(f.dir, n) for n in ("A", "L")}  # down for now
        try:
            run(f, ups)
        finally:
            for u in ups.values():
                u.stop()
    print("ok")


def run(f, ups):
    crt, key = make_cert(f.dir)
    f.ctl("network", "allow", "127.0.0.0/8")
    for n, up in ups.items():
        f.ctl("hop", "add", "hop" + n, "--host", "127.0.0.1", "--port",
              str(up.port), "--tls", "none")
    f.ctl("route", "set", "*", "hopA")
    f.ctl("route", "set", "*", "--listener", "apps", "hopL")
    f.ctl("user", "add", "holder", "--password-stdin", "--sender", "*",
          input="pw-holder\n")
    f.ctl("user", "set", "holder", "--hold")
    dns = dkimkit.records_of(f.ctl("dkim", "add", "example.com",
                                   "--selector", "s1", "--generate").stdout)
    assert dns, "no TXT record printed"
    for k, v in (("retry_min_seconds", 1), ("retry_max_seconds", 2),
                 ("redundancy", "peer")):
        f.ctl("limit", "set", k, str(v))
    v = f.policy_version()
    apps_port = free_port()
    tls = "tls_cert = %s\ntls_key = %s\n" % (crt, key)
    f.start_relay("n1", extra=tls + "listen = 127.0.0.1:%d relay name=apps\n"
                  "shadow_listen = 127.0.0.1:%d\n" % (apps_port, free_port()))
    f.start_relay("n2", extra=tls + "shadow_listen = 127.0.0.1:%d\n"
                  % free_port())
    for n in ("n1", "n2"):
        f.wait_node_version(n, v, timeout=30)
    wait_until(lambda: "shadow peer is n2" in f.nodes["n1"].output(), 15,
               "n1 has its peer")
    wait_until(lambda: port_open("127.0.0.1", apps_port), 15,
               "n1's apps listener")

    port = f.smtp_ports["n1"]
    held = submit_auth(port, "h@example.net", "x@example.org", "held",
                       user="holder", from_name="Alice")
    signed = submit_auth(port, "alice@example.com", "y@example.org",
                         "signed", from_name="Alice")
    viaapps = submit_auth(apps_port, "app@example.net", "z@example.org",
                          "apps", from_name="Alice")
    # all three queued at n1 (held, or deferred: both hops are down),
    # each with its copy at n2
    wait_until(lambda: set(f.spool("n1")) == {held, signed, viaapps}, 30,
               "three messages queued at n1")
    assert f.spool("n1")[held] == "held", f.spool("n1")
    wait_until(lambda: shadow_count(f, "n2") == 3, 30, "three copies at n2")

    # -- n1 is lost with its disk; the upstreams come up
    # killed first: a live node may still make files in its spool
    f.nodes["n1"].stop(signal.SIGKILL)
    shutil.rmtree(os.path.join(f.dir, "n1", "spool"))
    for u in ups.values():
        u.start()
    f.ctl("node", "lost", "n1")
    wait_until(lambda: "signed" in subjects(ups["A"]) and
               "apps" in subjects(ups["L"]), 60,
               "promoted copies delivered by n2")
    assert subjects(ups["A"]) == ["signed"], subjects(ups["A"])
    assert subjects(ups["L"]) == ["apps"], subjects(ups["L"])
    assert "shadow promoted from n1" in f.nodes["n2"].output()

    # the signature is n1's (made once at acceptance) and verifies
    m = ups["A"].messages()[0]["data"]
    assert len(re.findall(r"(?mi)^DKIM-Signature:", m)) == 1, m[:2000]
    path = os.path.join(f.dir, "signed.eml")
    with open(path, "wb") as fh:
        fh.write(m.encode("latin-1"))
    ok, out = dkimkit.verify(dns, [path], f.dir)
    assert ok, out

    # the held copy is held at n2 until released there
    sp = wait_until(lambda: [q for q, st in f.spool("n2").items()
                             if st == "held"], 30, "held copy at n2")
    assert len(sp) == 1 and len(f.spool("n2")) == 1, f.spool("n2")
    assert all("Subject: held" not in x["data"]
               for u in ups.values() for x in u.messages())
    f.ctl("queue", "release", sp[0])
    wait_until(lambda: "held" in subjects(ups["A"]), 30, "held after release")
    assert subjects(ups["L"]) == ["apps"], subjects(ups["L"])


if __name__ == "__main__":
    main()
