#!/usr/bin/env python3
"""The shadow channel over mutual TLS (issue 13, docs/security.md).

n1 and n2 have certificates of the fleet CA (shadow_ca / shadow_cert /
shadow_key): n1's copies reach n2's shadow spool over TLS 1.3.  n2 is then
restarted with a certificate of another CA: n1 refuses it as a peer (the
handshake fails), so n1's mail goes without a copy (no_peer = accept,
logged), and n2 cannot file copies at n1 either.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "hardening"))
from fleetkit import FleetOps, SPOOL_LIST, Upstream, free_port, wait_until  # noqa: E402,E501
from pki import Pki  # noqa: E402


def shadow_ids(f, name):
    d = os.path.join(f.dir, name, "spool", "shadow")
    r = subprocess.run([SPOOL_LIST, d], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]


def tls_extra(pki, name, ca, port):
    pem = pki.leaf(name + "-" + ca, ca, name, ips=["127.0.0.1"])
    return ("shadow_listen = 127.0.0.1:%d\nshadow_ca = %s\n"
            "shadow_cert = %s\nshadow_key = %s\n" % (
                port, pki.path("fleet-ca.crt"), pem, pem))


def main():
    with FleetOps("shadowtls") as f:
        f.start()
        pki = Pki(os.path.join(f.dir, "pki"))
        pki.ca("fleet-ca")
        pki.ca("rogue-ca")
        up = Upstream(f.dir, "up")
        run(f, pki, up)
    print("ok")


def run(f, pki, up):
    v = f.relay_policy(up.port, {"retry_min_seconds": 1,
                                 "retry_max_seconds": 2,
                                 "redundancy": "peer"})
    ports = {"n1": free_port(), "n2": free_port()}
    for n in ("n1", "n2"):
        f.start_relay(n, extra=tls_extra(pki, n, "fleet-ca", ports[n]))
    for n in ("n1", "n2"):
        f.wait_node_version(n, v)
    wait_until(lambda: "shadow peer is n2" in f.nodes["n1"].output(), 15,
               "n1 has n2 as its peer")
    # the upstream is down: the copy stays on n2 until n1 delivers
    qid = f.send("n1", "app@client.test", ["t1@example.test"], "t1")
    assert len(shadow_ids(f, "n2")) == 1, shadow_ids(f, "n2")
    assert "accepted without a shadow copy" not in f.nodes["n1"].output()
    assert "shadow connection from" in f.nodes["n2"].output()

    # n2 now holds a certificate of another CA
    f.nodes["n2"].stop()
    extra = tls_extra(pki, "n2", "rogue-ca", ports["n2"])
    extra = extra.replace(pki.path("fleet-ca.crt"), pki.path("rogue-ca.crt"))
    f.extras["n2"] = ("listen = 127.0.0.1:%d relay\n" % f.smtp_ports["n2"]
                      + extra, None)
    f.start_node("n2", f.tokens["n2"], *f.extras["n2"])
    wait_until(lambda: f.node("n2")["state"] == "up", 15, "n2 up again")
    # the link to the old n2 broke; n1 dials again (at most once a
    # second) and the handshake fails on the foreign certificate
    sent = []
    wait_until(lambda: sent.append(f.send(
        "n1", "app@client.test", ["t%d@example.test" % (len(sent) + 2)],
        "t")) or "certificate verify failed" in f.nodes["n1"].output(),
        15, "n1 refuses n2's certificate")
    qid2 = f.send("n1", "app@client.test", ["t0@example.test"], "t0")
    out = f.nodes["n1"].output()
    assert "%s smtp accepted without a shadow copy" % qid2 in out, out[-3000:]
    # the first copy is still on n2's disk (its shadow spool survived the
    # restart); the second never got there
    assert len(shadow_ids(f, "n2")) == 1
    up.start()
    want = {"t0@example.test", "t1@example.test"} | {
        "t%d@example.test" % (i + 2) for i in range(len(sent))}
    wait_until(lambda: want <= set(up.rcpts()), 20, "all delivered")
    up.stop()
    print("tls ok: %s copied over TLS, %s refused by a foreign CA" % (
        qid, qid2))


if __name__ == "__main__":
    main()
