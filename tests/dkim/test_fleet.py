#!/usr/bin/env python3
"""dkim_fleet: DKIM keys managed with sluicectl, used by a real fleet
(issue 14).  PostgreSQL, a controller, one node, two upstream hops.

  keys      dkim add --generate (RSA) and --key-stdin (Ed25519); the
            printed TXT record is the key's; mistakes are one line and
            change nothing; the private key never comes back out (list,
            --json, policy show, export, logs).
  relay     the first hop is down: messages of every shape fail over to
            the second hop and verify there with dkimpy against the
            records `dkim dns` prints (RSA and Ed25519 both).
  files     export writes `private_key: keep`; applying it changes
            nothing; a file without a dkim: section keeps the keys.
  rotate    dkim rotate adds a new selector per algorithm, the old ones
            keep signing (four signatures, all verify); dkim del removes
            the old ones and the node signs with the new only.
"""
import atexit
import os
import re
import shutil
import smtplib
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fleet"))
import dkimkit  # noqa: E402
from fleetkit import (FleetOps, Upstream, free_port, http_get,  # noqa
                      parse_prometheus, sample, wait_until)
from fleet import Proc  # noqa: E402


def one_line_error(r, what):
    assert r.returncode == 1, (what, r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("sluicectl: "),\
        (what, r.stderr)


def relay(f, up, tag):
    """Every message shape through n1; returns the verified files."""
    before = len(up.messages())
    names = [k for k in dkimkit.MESSAGES if k != "fromcase"]
    for name in names:
        send_raw(f, "n1", dkimkit.MESSAGES[name].encode("utf-8"))
    wait_until(lambda: len(up.messages()) == before + len(names), 30,
               "%d messages at the second hop" % len(names))
    paths = []
    for i, m in enumerate(up.messages()[before:]):
        p = os.path.join(f.dir, "%s%d.eml" % (tag, i))
        with open(p, "wb") as fh:
            fh.write(m["data"].encode("latin-1"))
        paths.append(p)
    return paths


def nsigs(path):
    with open(path, "rb") as fh:
        return len(re.findall(rb"(?mi)^DKIM-Signature:", fh.read()))


def main():
    f = FleetOps("dkim")
    with f:
        f.start()
        primary = Upstream(f.dir, "primary")        # never started: down
        backup = Upstream(f.dir, "backup").start()
        atexit.register(backup.stop)    # on failure as well as success
        f.ctl("network", "allow", "127.0.0.0/8")
        for name, up in (("primary", primary), ("backup", backup)):
            f.ctl("hop", "add", name, "--host", "127.0.0.1", "--port",
                  str(up.port), "--tls", "none")
        f.ctl("route", "set", "*", "primary", "backup")

        # -- keys
        r = f.ctl("dkim", "add", "example.com", "--selector", "r1",
                  "--generate")
        assert "r1._domainkey.example.com. IN TXT" in r.stdout, r.stdout
        added = dkimkit.records_of(r.stdout)
        ed = os.path.join(f.dir, "ed.pem")
        want_ed = dkimkit.make_key(ed, "ed25519")
        pem = open(ed).read()
        r = f.ctl("dkim", "add", "example.com", "--selector", "e1",
                  "--algorithm", "ed25519", "--key-stdin", input=pem)
        added.update(dkimkit.records_of(r.stdout))
        assert added["e1._domainkey.example.com."] == want_ed, added
        v = f.policy_version()
        for what, args, inp in (
                ("duplicate", ["example.com", "--selector", "r1"], None),
                ("bad selector", ["example.com", "--selector", "a b"], None),
                ("garbage key", ["example.com", "--selector", "x1",
                                 "--key-stdin"], "not a key\n"),
                ("key on argv", ["example.com", "--selector", "x1",
                                 "--key", "k"], None),
                ("wrong alg", ["example.com", "--selector", "x1",
                               "--algorithm", "rsa", "--key-stdin"], pem),
                ("bad domain", ["exa mple", "--selector", "x1"], None)):
            one_line_error(f.ctl("dkim", "add", *args, input=inp,
                                 check=False), what)
        assert f.policy_version() == v
        one_line_error(f.ctl("dkim", "del", "example.com", "--selector",
                             "nope", check=False), "del unknown")

        lst = f.ctl_json("dkim", "list")["dkim"]
        assert [(k["selector"], k["algorithm"], k["has_key"])
                for k in lst] == [("r1", "rsa", True),
                                  ("e1", "ed25519", True)], lst
        assert all("private_key" not in k for k in lst), lst
        table = f.ctl("dkim", "list").stdout
        assert re.search(r"example.com\s+e1\s+ed25519\s+stored", table), \
            table
        dns = dkimkit.records_of(f.ctl("dkim", "dns", "example.com").stdout)
        assert dns == added, (dns, added)
        dj = f.ctl_json("dkim", "dns", "example.com")
        assert {x["name"] + ".": x["value"] for x in dj} == added, dj

        # -- relay through the fleet, failing over to the second hop
        v = f.policy_version()
        f.start_relay("n1")
        f.wait_node_version("n1", v)
        paths = relay(f, backup, "a")
        assert primary.messages() == []
        assert all(nsigs(p) == 2 for p in paths)
        ok, out = dkimkit.verify(dns, paths, f.dir)
        assert ok, out
        s = parse_prometheus(http_get(f.metrics_ports["n1"]))
        assert sample(s, "sluice_dkim_signed_total",
                      domain="example.com") == len(paths), s
        # trace: received and delivered say what signed the message
        qid = send_raw(f, "n1", dkimkit.MESSAGES["7bit"].encode())

        def traced():
            ev = f.ctl_json("trace", qid)["events"]
            return ev if any(e["kind"] == "delivered" for e in ev) else None
        ev = wait_until(traced, 15, "trace of %s" % qid)
        kinds = {e["kind"]: e["dkim"] for e in ev}
        assert kinds.get("received") == "example.com:r1,e1", ev
        assert kinds.get("delivered") == "example.com:r1,e1", ev
        assert "dkim=example.com:r1,e1" in f.ctl("trace", qid).stdout
        wait_until(lambda: len(backup.messages()) == len(paths) + 1, 10,
                   "traced message delivered")

        # -- files: export keeps by reference, apply round-trips
        exp = f.ctl("policy", "export").stdout
        assert exp.count("private_key: keep") == 2, exp
        path = os.path.join(f.dir, "policy.yaml")
        open(path, "w").write(exp)
        r = f.ctl("policy", "diff", "-f", path)
        assert "dkim" not in r.stdout, r.stdout
        r = f.ctl("policy", "apply", "-f", path)
        assert "no changes" in r.stdout, r.stdout
        req = os.path.join(f.dir, "required.yaml")
        open(req, "w").write(exp.replace("    selector: e1\n",
                                         "    selector: e1\n"
                                         "    required: true\n"))
        r = f.ctl("policy", "diff", "-f", req)
        assert re.search(r"~ dkim\s+e1._domainkey.example.com:\s+required",
                         r.stdout), r.stdout
        legacy = os.path.join(f.dir, "legacy.yaml")
        open(legacy, "w").write(exp.split("dkim:")[0])
        f.ctl("policy", "apply", "-f", legacy)
        assert len(f.ctl_json("dkim", "list")["dkim"]) == 2
        bad = os.path.join(f.dir, "bad.yaml")
        open(bad, "w").write(exp.split("dkim:")[0] +
                             "dkim:\n  - domain: new.test\n"
                             "    selector: s1\n    private_key: keep\n")
        r = f.ctl("policy", "apply", "-f", bad, check=False)
        one_line_error(r, "keep without a stored key")
        assert re.search(r"bad.yaml:\d+: .*s1._domainkey.new.test", r.stderr)

        # -- canonicalisation per domain: dkim add --canon, list, export/
        # apply round trip, diff, refusals
        f.ctl("dkim", "add", "canon.test", "--selector", "c1", "--algorithm",
              "ed25519", "--generate", "--canon", "simple/simple")
        one_line_error(f.ctl("dkim", "add", "canon.test", "--selector", "c2",
                             "--generate", "--canon", "simple/relaxed",
                             check=False), "canon simple/relaxed")
        lst = {k["domain"] + "/" + k["selector"]: k
               for k in f.ctl_json("dkim", "list")["dkim"]}
        assert lst["canon.test/c1"]["canon"] == "simple/simple", lst
        assert lst["example.com/r1"]["canon"] == "relaxed/relaxed", lst
        assert re.search(r"canon.test\s+c1\s+ed25519\s+stored\s+"
                         r"optional,simple/simple",
                         f.ctl("dkim", "list").stdout)
        exp = f.ctl("policy", "export").stdout
        assert exp.count("canon:") == 1 and \
            "    canon: simple/simple\n" in exp, exp
        open(path, "w").write(exp)
        r = f.ctl("policy", "apply", "-f", path)
        assert "no changes" in r.stdout, r.stdout
        open(path, "w").write(exp.replace("canon: simple/simple",
                                          "canon: relaxed/simple"))
        r = f.ctl("policy", "diff", "-f", path)
        assert re.search(r"~ dkim\s+c1._domainkey.canon.test:\s+canon "
                         r"simple/simple -> relaxed/simple", r.stdout), \
            r.stdout
        f.ctl("policy", "apply", "-f", path)
        assert [k["canon"] for k in f.ctl_json("dkim", "list")["dkim"]
                if k["domain"] == "canon.test"] == ["relaxed/simple"]
        open(bad, "w").write(exp.replace("canon: simple/simple",
                                         "canon: loose/loose"))
        r = f.ctl("policy", "check", "-f", bad, check=False)
        one_line_error(r, "canon loose/loose")
        assert re.search(r"bad.yaml:\d+: DKIM canonicalisation 'loose/loose'",
                         r.stderr), r.stderr
        f.ctl("dkim", "del", "canon.test")

        # -- rotate: old and new sign side by side, then the old go
        r = f.ctl("dkim", "rotate", "example.com")
        new = dkimkit.records_of(r.stdout)
        assert len(new) == 2 and not set(new) & set(added), new
        dns = dkimkit.records_of(f.ctl("dkim", "dns", "example.com").stdout)
        assert len(dns) == 4, dns
        v = f.policy_version()
        f.wait_node_version("n1", v)
        paths = relay(f, backup, "b")
        assert all(nsigs(p) == 4 for p in paths)
        ok, out = dkimkit.verify(dns, paths, f.dir)
        assert ok, out
        f.ctl("dkim", "del", "example.com", "--selector", "r1")
        f.ctl("dkim", "del", "example.com", "--selector", "e1")
        v = f.policy_version()
        f.wait_node_version("n1", v)
        paths = relay(f, backup, "c")
        assert all(nsigs(p) == 2 for p in paths)
        ok, out = dkimkit.verify(new, paths, f.dir)
        assert ok, out

        # -- dkim check against a real DNS server (dnsmasq): the RSA
        # record published (in 255-octet strings), the Ed25519 one with
        # another key, then not at all
        (rsa_name,) = [k for k in new if k.startswith("r")]
        (ed_name,) = [k for k in new if k.startswith("e")]
        other = dkimkit.txt_record(pem, "ed25519")   # e1's, not the new
        dport = free_port()
        dns = dnsmasq(f.dir, dport, {rsa_name: new[rsa_name],
                                     ed_name: other})
        try:
            res = "127.0.0.1:%d" % dport
            r = f.ctl("dkim", "check", "example.com", "--resolver", res,
                      check=False)
            one_line_error(r, "check with a mismatch")
            assert re.search(r"%s\s+ok" % rsa_name[:-1], r.stdout), r.stdout
            assert re.search(r"%s\s+mismatch\s+p= is another key"
                             % ed_name[:-1], r.stdout), r.stdout
            j = f.ctl_json("dkim", "check", "example.com", "--selector",
                           rsa_name.split(".")[0], "--resolver", res)
            assert [x["status"] for x in j] == ["ok"], j
        finally:
            dns.stop()
        dns = dnsmasq(f.dir, dport, {})
        try:
            r = f.ctl("dkim", "check", "example.com", "--resolver",
                      "127.0.0.1:%d" % dport, check=False)
            one_line_error(r, "check with nothing published")
            assert r.stdout.count("missing") == 2, r.stdout
        finally:
            dns.stop()

        # -- the private key never comes back out
        body = "".join(pem.splitlines()[1:-1])
        outs = [f.ctl("policy", "export").stdout,
                f.ctl("policy", "show", json_out=True).stdout,
                f.ctl("dkim", "list", json_out=True).stdout]
        outs += [p.output() for p in f.controllers]
        outs += [p.output() for p in f.nodes.values()]
        for o in outs:
            assert "PRIVATE KEY" not in o and body[:40] not in o, o[:2000]
        f.ctl("dkim", "del", "example.com")
        assert f.ctl_json("dkim", "list")["dkim"] == []
    print("dkim fleet: keys managed, signatures verify after failover, "
          "export/apply keep keys, rotation signs with both")


def dnsmasq(d, port, records):
    """A DNS server on loopback serving TXT records {name.: value}."""
    args = [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--no-daemon",
            "--port=%d" % port, "--listen-address=127.0.0.1",
            "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", "--local=/example.com/",
            "--user=root" if os.geteuid() == 0 else
            "--user=%s" % os.environ.get("USER", "nobody")]
    for name, value in records.items():
        chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
        args.append("--txt-record=" + ",".join([name.rstrip(".")] + chunks))
    p = Proc(args, os.path.join(d, "dnsmasq-%d.log" % port)).start()
    wait_until(lambda: p.alive() and "started" in p.output(), 10,
               "dnsmasq up")
    return p


def send_raw(f, name, data):
    s = smtplib.SMTP("127.0.0.1", f.smtp_ports[name], timeout=30)
    try:
        s.ehlo("client.test")
        code, resp = s.mail("alice@example.com")
        assert code == 250, (code, resp)
        code, resp = s.rcpt("bob@example.net")
        assert code == 250, (code, resp)
        code, resp = s.data(data)
        assert code == 250, (code, resp)
        s.quit()
    finally:
        s.close()
    return re.search(rb"queued as ([0-9A-Za-z]+)", resp).group(1).decode()


if __name__ == "__main__":
    main()
