#!/usr/bin/env python3
"""dkim_dns_alert: the controller checks the published DKIM keys by itself
(issue 14, docs/dkim.md "DNS check").  PostgreSQL, a controller whose
config names a resolver (dnsmasq on loopback) and dkim_check_interval_s 1.

  mismatch  the record published at s1._domainkey.example.com is another
            Ed25519 key: alert dkim_dns_mismatch, shown by `status`
  match     the right record: the alert clears
  missing   no record: alert dkim_dns_missing
  removed   the key is deleted from the policy: the alert clears
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fleet"))
import dkimkit  # noqa: E402
from fleetkit import FleetOps, free_port, wait_until  # noqa: E402
from test_fleet import dnsmasq  # noqa: E402

NAME = "s1._domainkey.example.com"


def with_dns(f, port, records, check):
    dns = dnsmasq(f.dir, port, records)
    try:
        check()
    finally:
        dns.stop()


def main():
    port = free_port()
    f = FleetOps("dkim_dns", controller_extra="resolver = 127.0.0.1:%d\n"
                 "dkim_check_interval_s = 1\n" % port)
    with f:
        f.start()
        key = os.path.join(f.dir, "k.pem")
        dkimkit.make_key(key, "ed25519")
        r = f.ctl("dkim", "add", "example.com", "--selector", "s1",
                  "--algorithm", "ed25519", "--key-stdin",
                  input=open(key).read())
        right = dkimkit.records_of(r.stdout)[NAME + "."]
        other = dkimkit.make_key(os.path.join(f.dir, "o.pem"), "ed25519")
        assert other != right

        def mismatch():
            wait_until(lambda: f.open_alert("dkim_dns_mismatch", NAME), 15,
                       "dkim_dns_mismatch raised")
            (a,) = f.open_alert("dkim_dns_mismatch", NAME)
            assert "p= is another key" in a["message"], a
            out = f.ctl("status").stdout
            assert "dkim_dns_mismatch" in out and NAME in out, out
        with_dns(f, port, {NAME + ".": other}, mismatch)

        def match():
            wait_until(lambda: not f.open_alert("dkim_dns_mismatch", NAME),
                       15, "dkim_dns_mismatch cleared")
            assert not f.open_alert("dkim_dns_missing", NAME)
        with_dns(f, port, {NAME + ".": right}, match)

        def missing():
            wait_until(lambda: f.open_alert("dkim_dns_missing", NAME), 15,
                       "dkim_dns_missing raised")
            f.ctl("dkim", "del", "example.com")
            wait_until(lambda: not f.open_alert("dkim_dns_missing", NAME),
                       15, "cleared when the key is gone")
        with_dns(f, port, {}, missing)
        log = f.controllers[0].output()
        assert "alert: raised kind=dkim_dns_mismatch subject=%s" % NAME \
            in log, log
    print("ok")


if __name__ == "__main__":
    main()
