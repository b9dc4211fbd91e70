"""test_node.py - a sluice-node signs what it accepts (issue 14): every
message relayed to the upstream carries DKIM-Signature fields that
dkimpy verifies (RSA-SHA256 and Ed25519-SHA256 side by side, From:
subdomain signed by its parent's key, unknown domains unsigned); the
signature is made once at acceptance and stored with the message: after
a deferral and a restart on a policy without keys it is still there,
unchanged, and verifies; a key that cannot sign sends the message
unsigned (optional) or answers 451 4.7.0 (required); /metrics counts."""
import os
import re
import smtplib
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "delivery"))
sys.path.insert(0, HERE)
import dkimkit  # noqa: E402
from dlvkit import Node, Scenario, Upstream, free_port, wait_until  # noqa


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def sigs(data):
    return re.findall(r"(?mi)^DKIM-Signature:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*",
                      data)


def tag(sig, name):
    m = re.search(r"[;\s]%s=([^;]*)" % name, sig)
    return re.sub(r"\s", "", m.group(1)) if m else None


def metrics(port):
    return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                  timeout=5).read().decode()


def main():
    with Scenario("dkim") as sc:
        d = sc.dir
        rsa, ed = os.path.join(d, "rsa.pem"), os.path.join(d, "ed.pem")
        records = {
            "r1._domainkey.example.com.": dkimkit.make_key(rsa, "rsa"),
            "e1._domainkey.example.com.": dkimkit.make_key(ed, "ed25519"),
            "p1._domainkey.parent.test.": dkimkit.txt_record(
                open(ed).read(), "ed25519"),
            "s1._domainkey.simple.test.": dkimkit.txt_record(
                open(rsa).read(), "rsa"),
            "s2._domainkey.rsimple.test.": dkimkit.txt_record(
                open(ed).read(), "ed25519"),
        }
        bad = write(os.path.join(d, "bad.pem"), b"not a key\n")
        up = sc.add(Upstream(d, "up").start())
        old = sc.add(Upstream(d, "old"))
        mport = free_port()
        hops = ["up:host=127.0.0.1,port=%d" % up.port,
                "old:host=127.0.0.1,port=%d" % old.port]
        routes = ["legacy.test=old", "*=up"]
        dkim = ["example.com:r1:%s" % rsa, "example.com:e1:%s" % ed,
                "parent.test:p1:%s:subdomains" % ed,
                "broken.test:b1:%s" % bad,
                "strict.test:s1:%s:required" % bad,
                "simple.test:s1:%s:canon=simple/simple" % rsa,
                "rsimple.test:s2:%s:canon=relaxed/simple" % ed]

        n = sc.add(make_node(d, hops, routes, dkim, mport).start())

        # 1. Every shape of message, signed by both keys, verifies.
        sent = {}
        for name, msg in dkimkit.MESSAGES.items():
            if name == "fromcase":
                continue
            sent[name] = n.send("alice@example.com", ["bob@example.net"],
                                msg.encode("utf-8"))
        n.send("x@mail.parent.test", ["bob@example.net"],
               b"From: <x@mail.parent.test>\r\nSubject: sub\r\n\r\nhi\r\n")
        n.send("x@other.test", ["bob@example.net"],
               b"From: <x@other.test>\r\nSubject: none\r\n\r\nhi\r\n")
        n.send("x@broken.test", ["bob@example.net"],
               b"From: <x@broken.test>\r\nSubject: broken\r\n\r\nhi\r\n")
        total = len(sent) + 3
        wait_until(lambda: len(up.messages()) == total, 30,
                   "%d messages upstream" % total)
        paths, by_from = [], {}
        for i, m in enumerate(up.messages()):
            data = m["data"]
            frm = re.search(r"(?mi)^From:.*@([\w.]+)", data).group(1)
            by_from.setdefault(frm, []).append(data)
            if frm in ("example.com", "mail.parent.test"):
                paths.append(write(os.path.join(d, "m%d.eml" % i),
                                   data.encode("latin-1")))
        for data in by_from["example.com"]:
            s = sigs(data)
            assert len(s) == 2, data[:600]
            assert sorted(tag(x, "a") for x in s) == ["ed25519-sha256",
                                                      "rsa-sha256"]
            assert all(tag(x, "d") == "example.com" for x in s)
        s = sigs(by_from["mail.parent.test"][0])
        assert len(s) == 1 and tag(s[0], "d") == "parent.test", s
        assert sigs(by_from["other.test"][0]) == []
        assert sigs(by_from["broken.test"][0]) == []
        ok, out = dkimkit.verify(records, paths, d)
        assert ok, out
        assert out.count("ok ") == len(sent) + 1, out

        # 1b. A hop without 8BITMIME: 8-bit mail is converted to 7 bit
        # and goes without its signature (it would not verify); 7-bit
        # mail keeps it.
        old.start("--no-8bitmime")
        n.send("alice@example.com", ["bob@legacy.test"],
               dkimkit.MESSAGES["8bit"].encode("utf-8"))
        n.send("alice@example.com", ["carol@legacy.test"],
               dkimkit.MESSAGES["7bit"].encode("utf-8"))
        wait_until(lambda: len(old.messages()) == 2, 30, "legacy hop")
        for m in old.messages():
            if m["rcpts"] == ["bob@legacy.test"]:
                assert "quoted-printable" in m["data"], m["data"][:900]
                assert sigs(m["data"]) == [], m["data"][:900]
            else:
                assert len(sigs(m["data"])) == 2, m["data"][:900]
                p7 = write(os.path.join(d, "legacy7.eml"),
                           m["data"].encode("latin-1"))
        ok, out = dkimkit.verify(records, [p7], d)
        assert ok, out
        n.wait_log(r"delivery: converted to 7 bit for .*: sent without "
                   r"its DKIM signature")

        # 1d. Declared 8-bit mail (BODY=8BITMIME) is signed in its 7-bit
        # form (RFC 6376 5.3) and always sent so: its signatures verify
        # at a hop without 8BITMIME and at one with it (the old code sent
        # it unsigned to the first); 8-bit that does not convert (a UTF-8
        # Subject) is signed as it is and goes 8-bit where it can.
        def send8(rcpt, data):
            c = smtplib.SMTP("127.0.0.1", n.port, timeout=30)
            c.ehlo("client.test")
            assert c.mail("alice@example.com", ["BODY=8BITMIME"])[0] == 250
            assert c.rcpt(rcpt)[0] == 250
            code, resp = c.data(data)
            assert code == 250, (code, resp)
            c.quit()
        eight = dkimkit.MESSAGES["8bit"].encode("utf-8")
        hdr8 = dkimkit.MESSAGES["8bit"].replace(
            "Subject: 8bit", "Subject: Gr\u00fc\u00dfe").encode("utf-8")
        nold, nup = len(old.messages()), len(up.messages())
        send8("dave@legacy.test", eight)
        send8("erin@example.net", eight)
        send8("fred@example.net", hdr8)
        wait_until(lambda: len(old.messages()) == nold + 1 and
                   len(up.messages()) == nup + 2, 30, "declared 8-bit")
        got = {m["rcpts"][0]: m for m in old.messages()[nold:] +
               up.messages()[nup:]}
        p8 = []
        for rcpt in ("dave@legacy.test", "erin@example.net"):
            m = got[rcpt]
            assert "quoted-printable" in m["data"], m["data"][:900]
            assert "BODY=8BITMIME" not in m["params"].upper(), m["params"]
            assert max(m["data"].encode("latin-1")) < 128
            assert len(sigs(m["data"])) == 2, m["data"][:900]
            p8.append(write(os.path.join(d, "d8-%s.eml" % rcpt),
                            m["data"].encode("latin-1")))
        m = got["fred@example.net"]
        assert "BODY=8BITMIME" in m["params"].upper(), m["params"]
        assert len(sigs(m["data"])) == 2, m["data"][:900]
        p8.append(write(os.path.join(d, "d8-raw.eml"),
                        m["data"].encode("latin-1")))
        ok, out = dkimkit.verify(records, p8, d)
        assert ok, out
        assert out.count("ok ") == 3, out

        # 1c. Canonicalisation per domain (issue 14): simple/simple and
        # relaxed/simple signatures say so in c= and verify with dkimpy.
        canon = {"simple.test": "simple/simple",
                 "rsimple.test": "relaxed/simple"}
        before = len(up.messages())
        shapes = ["7bit", "multipart", "folded", "dots", "crlf"]
        for dom in canon:
            for name in shapes:
                msg = dkimkit.MESSAGES[name].replace(
                    "alice@example.com", "alice@" + dom)
                n.send("alice@" + dom, ["bob@example.net"],
                       msg.encode("utf-8"))
        want = before + len(canon) * len(shapes)
        wait_until(lambda: len(up.messages()) == want, 30, "canon mail")
        cpaths = []
        for i, m in enumerate(up.messages()[before:]):
            data = m["data"]
            frm = re.search(r"(?mi)^From:.*@([\w.]+)", data).group(1)
            (s,) = sigs(data)
            assert tag(s, "d") == frm and tag(s, "c") == canon[frm], s
            cpaths.append(write(os.path.join(d, "c%d.eml" % i),
                                data.encode("latin-1")))
        ok, out = dkimkit.verify(records, cpaths, d)
        assert ok, out
        assert out.count("ok ") == len(cpaths), out

        # 2. Required domain whose key cannot sign: 451, nothing queued.
        c = smtplib.SMTP("127.0.0.1", n.port, timeout=30)
        c.ehlo("client.test")
        c.mail("x@strict.test")
        c.rcpt("bob@example.net")
        code, resp = c.data(b"From: <x@strict.test>\r\n\r\nhi\r\n")
        assert code == 451 and b"4.7.0" in resp, (code, resp)
        c.quit()
        n.wait_log(r"smtp dkim failed-deferred .*d=strict.test")

        met = metrics(mport)
        assert re.search(r'sluice_dkim_signed_total\{domain="example.com"\}'
                         r' %d\b' % (len(sent) + 5), met), met
        assert 'sluice_dkim_failures_total{domain="broken.test"} 1' in met
        assert 'sluice_dkim_failures_total{domain="strict.test"} 1' in met
        assert re.search(r"smtp accepted .* dkim=example.com:r1,e1",
                         n.log()), n.log()[-3000:]

        # 3. Signed once, at acceptance: deferred (upstream down), the
        # node restarted on a policy without keys, then delivered: the
        # stored signature arrives unchanged and verifies.
        up.stop()
        before = len(up.messages())
        accepted_at = int(time.time())
        qid = n.send("alice@example.com", ["carol@example.net"],
                     dkimkit.MESSAGES["multipart"].encode())
        n.wait_log(r"%s delivery status=deferred" % qid)
        n.stop()
        time.sleep(1.1)  # a re-signature would carry a later t=
        n2 = sc.add(make_node(d, hops, routes, [], mport).start())
        up.start()
        wait_until(lambda: len(up.messages()) == before + 1, 30,
                   "deferred message delivered after restart")
        data = up.messages()[-1]["data"]
        s = sigs(data)
        assert len(s) == 2, data[:800]
        assert all(int(tag(x, "t")) <= accepted_at + 1 for x in s), s
        p = write(os.path.join(d, "restart.eml"), data.encode("latin-1"))
        ok, out = dkimkit.verify(records, [p], d)
        assert ok, out
        n2.stop()
    print("dkim node: %d messages signed and verified, failure policy, "
          "metrics, signature kept across deferral and restart" % len(sent))


def make_node(d, hops, routes, dkim, mport):
    """A dlvkit Node whose policy cache also carries DKIM keys."""
    import subprocess
    from dlvkit import DLVPOLICY
    n = Node(d, hops, routes, extra="metrics_listen = 127.0.0.1:%d" % mport)
    args = [DLVPOLICY, os.path.join(n.spool, "policy.cache"),
            "--network", "127.0.0.0/8", "--limit", "retry_min_seconds=1",
            "--limit", "retry_max_seconds=2"]
    for h in hops:
        args += ["--hop", h]
    for r in routes:
        args += ["--route", r]
    for k in dkim:
        args += ["--dkim", k]
    subprocess.run(args, check=True)
    return n


if __name__ == "__main__":
    main()
