"""delivery_xoauth2: hops that authenticate with AUTH XOAUTH2 (issue 15).

A loopback HTTPS token endpoint (tokenep.py, certificate of a test CA)
plays the Microsoft identity platform and Google's token service and
checks every request (client secret, the certificate assertion's RS256
signature, x5t#S256, aud, jti; the service account JWT's signature, iss,
scope, sub); upstream.py checks the XOAUTH2 string and that the bearer
token was issued for that mailbox and has not expired.

  sec.test   m365, client secret              -> delivered with XOAUTH2
  cert.test  m365, certificate assertion      -> delivered with XOAUTH2
  goog.test  google service account, tokens of 3 s, the upstream closes
             after every message (each needs a new AUTH): messages sent
             across two token lifetimes all delivered (nothing deferred),
             a new token fetched
  down.test  token endpoint down -> deferred on that hop (4.7.0, the
             endpoint's error in the log, hop alert), delivered by the
             fallback in the same attempt, nothing bounced
  rev.test   the first token is refused (535) -> one new token, AUTH
             again in the same session, delivered
"""
import base64
import hashlib
import os
import re
import subprocess
import time
import urllib.request

from dlvkit import (Node, Scenario, TokenEndpoint, Upstream, free_port,
                    jsonl, make_ca, message, wait_until)

M365_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"


def run(*a):
    return subprocess.run(a, check=True, capture_output=True).stdout


def delivered(node, qid):
    return "%s delivery status=sent" % qid in node.log()


def main():
    with Scenario("xoauth2") as sc:
        d = sc.dir
        ca, crt, key = make_ca(d, ("localhost",))
        # the application's certificate (Microsoft) and the service
        # account's key (Google)
        app_key, app_crt = os.path.join(d, "app.key"), os.path.join(
            d, "app.crt")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", app_key, "-out", app_crt, "-days", "2", "-subj",
            "/CN=sluice test app")
        app_pem = os.path.join(d, "app.pem")
        with open(app_pem, "wb") as f:
            f.write(open(app_key, "rb").read() + open(app_crt, "rb").read())
        app_pub = os.path.join(d, "app.pub")
        with open(app_pub, "wb") as f:
            f.write(run("openssl", "x509", "-pubkey", "-noout", "-in",
                        app_crt))
        der = run("openssl", "x509", "-in", app_crt, "-outform", "DER")
        x5t256 = base64.urlsafe_b64encode(
            hashlib.sha256(der).digest()).decode().rstrip("=")
        sa_key, sa_pub = os.path.join(d, "sa.key"), os.path.join(d, "sa.pub")
        run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
            "rsa_keygen_bits:2048", "-out", sa_key)
        run("openssl", "pkey", "-in", sa_key, "-pubout", "-out", sa_pub)

        tenant = "contoso.example"
        m365_path = "/%s/oauth2/v2.0/token" % tenant
        epm = sc.add(TokenEndpoint(
            d, "ep_m365", "--cert", crt, "--key", key, "--client-id",
            "app-id-1", "--client-secret", "s3cret", "--pubkey", app_pub,
            # one "=" word: a thumbprint starting with "-" (1 in 64
            # certificates) read as an option and tokenep.py exited
            "--x5t256=" + x5t256, "--scope", M365_SCOPE, "--user",
            "app@contoso.example")).start(m365_path)
        epg = sc.add(TokenEndpoint(
            d, "ep_google", "--cert", crt, "--key", key, "--client-id",
            "relay@proj.iam.gserviceaccount.com", "--pubkey", sa_pub,
            "--scope", GOOGLE_SCOPE, "--expires-in", "3")).start("/token")

        tls = ("--tls-cert", crt, "--tls-key", key)
        upm = sc.add(Upstream(d, "m365", "--xoauth2-tokens", epm.tokens,
                              *tls)).start()
        upr = sc.add(Upstream(d, "revoking", "--xoauth2-tokens", epm.tokens,
                              "--xoauth2-revoke", "1", *tls)).start()
        upg = sc.add(Upstream(d, "google", "--xoauth2-tokens", epg.tokens,
                              "--xoauth2-style", "google",
                              "--close-after-message", *tls)).start()
        fb = sc.add(Upstream(d, "fallback", "--auth", "apikey:k",
                             *tls)).start()
        down_url = "https://localhost:%d%s" % (free_port(), m365_path)
        mport = free_port()

        m365 = ("oauth2=m365,tenant=%s,client_id=app-id-1,"
                "user=app@contoso.example,host=localhost,tls=require,"
                "verify=1,token_url=%s" % (tenant, epm.url(m365_path)))
        node = sc.add(Node(d, hops=[
            "m365sec:port=%d,secret=s3cret,%s" % (upm.port, m365),
            "m365cert:port=%d,cert=1,secret_file=%s,%s"
            % (upm.port, app_pem, m365),
            "m365rev:port=%d,secret=s3cret,%s" % (upr.port, m365),
            "m365down:port=%d,secret=s3cret,%s" % (
                upm.port, m365.replace(epm.url(m365_path), down_url)),
            "google:port=%d,host=localhost,tls=require,verify=1,"
            "oauth2=google,client_id=relay@proj.iam.gserviceaccount.com,"
            "user=app@example.com,secret_file=%s,token_url=%s"
            % (upg.port, sa_key, epg.url("/token")),
            "fallback:host=localhost,port=%d,tls=require,verify=1,"
            "user=apikey,secret=k" % fb.port],
            routes=["sec.test=m365sec", "cert.test=m365cert",
                    "rev.test=m365rev", "goog.test=google",
                    "down.test=m365down;fallback"],
            # generous session timeouts (the last setting wins): on a
            # loaded box the token endpoint (TLS, an openssl process per
            # signature) can take seconds, and a session waiting for its
            # token must not time out into a deferral
            extra="tls_ca_file = %s\ncircuit_failures = 100\n"
            "metrics_listen = 127.0.0.1:%d\ndelivery_timeout_ms = 20000\n"
            "delivery_connect_timeout_ms = 5000" % (ca, mport))).start()

        # --- Microsoft 365, client secret and certificate assertion
        q1 = node.send("a@example.com", ["x@sec.test"], message("sec"))
        q2 = node.send("a@example.com", ["x@cert.test"], message("cert"))
        wait_until(lambda: delivered(node, q1) and delivered(node, q2), 30,
                   "m365 messages delivered")
        msgs = upm.messages()
        assert len(msgs) == 2, msgs
        assert all(m["auth"] == "app@contoso.example" and m["tls"]
                   for m in msgs), msgs
        reqs = epm.requests()
        assert len(reqs) == 2 and all(r["ok"] for r in reqs), reqs
        assert all(e["ok"] for e in upm.events() if e["ev"] == "xoauth2")
        log = node.log()
        assert "s3cret" not in log and "BEGIN" not in log
        for t in jsonl(epm.tokens):
            assert t["token"] not in log, "token in the log"
        assert re.search(r"oauth: hop=m365cert token from https://"
                         r"localhost:\d+/contoso.example/oauth2/v2.0/token",
                         log), log

        # --- Google service account, tokens of 2 s: every message is a
        # new session (the upstream closes), across two lifetimes
        first_exp = None
        sent = []
        t0 = time.time()
        while True:
            q = node.send("a@example.com", ["x@goog.test"],
                          message("g%d" % len(sent)))
            sent.append(q)
            wait_until(lambda: delivered(node, q), 30, "google delivered")
            toks = jsonl(epg.tokens)
            first_exp = first_exp or toks[0]["exp"]
            if len(toks) >= 2 and time.time() > first_exp + 0.5:
                break
            assert time.time() - t0 < 60, "no second token"
        assert len(upg.messages()) == len(sent)
        xo = [e for e in upg.events() if e["ev"] == "xoauth2"]
        assert all(e["user"] == "app@example.com" for e in xo), xo
        # every session authenticated; a token the upstream saw expire
        # (a loaded box can hold an AUTH past the node's safety margin)
        # is retried with a new one, never anything else refused
        assert len([e for e in xo if e["ok"]]) == len(sent), xo
        assert all(e["why"] == "expired token" for e in xo
                   if not e["ok"]), xo
        assert all(r["ok"] and r["user"] == "app@example.com"
                   for r in epg.requests()), epg.requests()
        assert not re.search(r"status=deferred to=<x@goog.test>",
                             node.log())

        # --- token endpoint down: fails over, nothing bounced
        q3 = node.send("a@example.com", ["x@down.test"], message("down"))
        wait_until(lambda: delivered(node, q3), 30, "down.test delivered")
        log = node.log()
        assert re.search(
            r"%s delivery status=deferred to=<x@down.test> hop=m365down "
            r".*dsn=4\.7\.0 reply=\"[^\"]*XOAUTH2 token request to "
            r"https://localhost:\d+/contoso.example/oauth2/v2.0/token "
            r"failed" % q3, log), log
        assert re.search(r"delivery: hop alert hop=m365down .*"
                         r"scope=hop-config", log), log
        assert re.search(r"%s delivery status=sent to=<x@down.test> "
                         r"hop=fallback" % q3, log), log
        assert len(fb.messages()) == 1, fb.messages()
        assert "status=bounced" not in log
        # on /metrics like any hop refusing our credentials (the hop
        # table is refreshed by the loop: polled)
        def metrics():
            with urllib.request.urlopen(
                    "http://127.0.0.1:%d/metrics" % mport, timeout=10) as r:
                return r.read().decode()

        def failing():
            t = metrics()
            m = re.search(r'^sluice_hop_failures_total\{hop="m365down"\} '
                          r'(\d+)$', t, re.M)
            return m and int(m.group(1)) >= 1 and re.search(
                r'^sluice_hop_alert\{hop="m365down",scope="hop-config"\} '
                r'1$', t, re.M)
        wait_until(failing, 15, "m365down failing on /metrics")
        # one token request per session while the endpoint is down: the
        # connect-time prefetch's failure answers the AUTH when it came
        # within 2 s (a second request only on a box so loaded that EHLO
        # and STARTTLS took longer)
        assert 1 <= len(re.findall(r"oauth: hop=m365down XOAUTH2 token "
                                   r"request", log)) <= 2, log

        # --- 535 to the first token: one new token, delivered
        n_before = len(epm.requests())
        q4 = node.send("a@example.com", ["x@rev.test"], message("rev"))
        wait_until(lambda: delivered(node, q4), 30, "rev.test delivered")
        xo = [e for e in upr.events() if e["ev"] == "xoauth2"]
        assert [e["ok"] for e in xo] == [False, True], xo
        assert xo[0]["why"] == "revoked token", xo
        assert len(epm.requests()) == n_before + 2, epm.requests()
        log = node.log()
        assert "refused the XOAUTH2 token (535 5.7.3" in log, log
        assert not re.search(r"status=deferred to=<x@rev.test>", log)
        assert len(upr.messages()) == 1
        node.wait_queue_empty()
        # the token worker stops with the node: a clean exit (ASan's leak
        # check runs at exit in the sanitizer build)
        rc = node.stop()
        assert rc == 0 and "Sanitizer" not in node.log(), (rc, node.log())
        print("ok: %d google messages over %d tokens"
              % (len(sent), len(jsonl(epg.tokens))))


if __name__ == "__main__":
    main()
