#!/usr/bin/env python3
"""peer_postfix: Postfix as the smart host a node delivers to, requiring
SASL AUTH that it asks Dovecot for (smtpd_sasl_type = dovecot).

A private Dovecot (auth service only, a passwd-file with the hop's
account, on a loopback TCP port) and a private Postfix instance (its own
config_directory, queue and log in the test's directory, smtpd on a
loopback port, TLS with a certificate from the test's CA, AUTH only after
STARTTLS, relaying only for authenticated clients) that relays on to
tests/upstream/upstream.py.  Both run in the foreground and are stopped by
PID.  The node's hop: --tls require (certificate verified against that CA
through tls_ca_file), --user relay1 with its secret.

  - a wrong secret: Postfix answers 535, the message stays queued with
    the hop's 535 in the log, nothing reaches Postfix's queue
  - the right secret: delivered through Postfix, whose Received: says
    ESMTPSA and "Authenticated sender: relay1" (Dovecot checked it), the
    node's own Received: follows unchanged, and the node's DKIM signature
    verifies with dkimpy (python3-dkim) after the trip through Postfix
Postfix's master and Dovecot start as root (both drop privileges to
their own users: postfix, dovenull); as another user the test is skipped.
"""
import json
import os
import re
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerkit import (SENDER, Daemon, PeerFleet, free_port, make_ca,  # noqa
                     message, require, run, split_received, wait_until)
import dkimkit  # noqa: E402

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
HOP_USER, HOP_SECRET = "relay1", "hop-s3cret"


def start_dovecot(d):
    """Dovecot's auth service alone, for Postfix, on a TCP port."""
    os.makedirs(os.path.join(d, "run"))
    os.makedirs(os.path.join(d, "state"))
    port = free_port()
    passwd = os.path.join(d, "passwd")
    with open(passwd, "w") as f:
        f.write("%s:{PLAIN}%s\n" % (HOP_USER, HOP_SECRET))
    os.chmod(passwd, 0o644)
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("base_dir = %(d)s/run\nstate_dir = %(d)s/state\n"
                "log_path = %(d)s/dovecot.log\n"
                "protocols =\nlisten = 127.0.0.1\nssl = no\n"
                # TLS is Postfix's: AUTH reaches Dovecot only after it
                "disable_plaintext_auth = no\n"
                "auth_mechanisms = plain login\n"
                "passdb {\n  driver = passwd-file\n"
                "  args = scheme=PLAIN username_format=%%u %(p)s\n}\n"
                "service auth {\n  inet_listener sasl {\n"
                "    address = 127.0.0.1\n    port = %(port)d\n  }\n}\n"
                "service anvil {\n  chroot =\n}\n"
                % {"d": d, "p": passwd, "port": port})
    return Daemon([DOVECOT, "-F", "-c", conf],
                  os.path.join(d, "dovecot.out"), port, "dovecot")


MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def start_postfix(d, sasl_port, relay_port):
    """A private Postfix instance: smtpd with STARTTLS and Dovecot SASL,
    relaying everything to [127.0.0.1]:relay_port."""
    conf = os.path.join(d, "conf")
    for sub in ("conf", "queue", "data"):
        os.makedirs(os.path.join(d, sub))
    subprocess.run(["chown", "postfix", os.path.join(d, "data")],
                   check=True)
    ca, crt, key = make_ca(conf, ("localhost", "127.0.0.1"))
    port = free_port()
    with open(os.path.join(conf, "main.cf"), "w") as f:
        f.write("\n".join([
            "compatibility_level = 3.6",
            "queue_directory = %s/queue" % d,
            "data_directory = %s/data" % d,
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "myhostname = smarthost.test",
            "mydestination =",
            "mynetworks =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "alias_maps =",
            "alias_database =",
            "relayhost = [127.0.0.1]:%d" % relay_port,
            "smtp_tls_security_level = none",
            "smtpd_tls_cert_file = %s" % crt,
            "smtpd_tls_key_file = %s" % key,
            "smtpd_tls_security_level = may",
            "smtpd_tls_auth_only = yes",
            "smtpd_sasl_auth_enable = yes",
            "smtpd_sasl_type = dovecot",
            "smtpd_sasl_path = inet:127.0.0.1:%d" % sasl_port,
            "smtpd_sasl_authenticated_header = yes",
            "smtpd_relay_restrictions = permit_sasl_authenticated, reject",
            "maillog_file = %s/maillog" % d,
            "maillog_file_prefixes = %s" % d,
            ""]))
    with open(os.path.join(conf, "master.cf"), "w") as f:
        f.write(MASTER_CF.format(port=port))
    # creates the queue's directories with their owners and modes
    r = run([POSTFIX, "-c", conf, "check"], text=True)
    assert r.returncode == 0, (r.stdout, r.stderr,
                               open(os.path.join(d, "maillog")).read()
                               if os.path.exists(os.path.join(d, "maillog"))
                               else "")
    daemon_dir = run(["postconf", "-c", conf, "-h", "daemon_directory"],
                     text=True).stdout.strip()
    env = dict(os.environ, MAIL_CONFIG=conf)
    return Daemon([os.path.join(daemon_dir, "master"), "-d", "-c", conf],
                  os.path.join(d, "master.out"), port, "postfix master",
                  env=env), ca


def maillog(d):
    try:
        with open(os.path.join(d, "maillog")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def main():
    require(POSTFIX, DOVECOT)
    if os.geteuid() != 0:
        print("skipped: Postfix's master and Dovecot start as root")
        sys.exit(77)
    with PeerFleet("postfix") as pf:
        pf.start()
        up = pf.upstream()
        pd = os.path.join(pf.dir, "postfix")
        dv = os.path.join(pf.dir, "dovecot")
        dovecot = pf.add(start_dovecot(dv))
        postfix, ca = start_postfix(pd, dovecot.port, up.port)
        pf.add(postfix)
        r = pf.ctl("dkim", "add", "example.com", "--selector", "peer",
                   "--generate")
        dns = {}
        for ln in r.stdout.splitlines():
            m = re.match(r"^(\S+) IN TXT (.*)$", ln)
            if m:
                dns[m.group(1)] = "".join(re.findall(r'"([^"]*)"',
                                                     m.group(2)))
        assert dns, r.stdout
        pf.relay(["--host", "127.0.0.1", "--port", str(postfix.port),
                  "--tls", "require", "--user", HOP_USER, "--secret-stdin"],
                 secret="wrong-secret",
                 extra_ctl=[(["limit", "set", "retry_min_seconds", "1"],
                             None),
                            (["limit", "set", "retry_max_seconds", "2"],
                             None)],
                 extra="tls_ca_file = %s\n" % ca)
        node = pf.nodes["n1"]
        data = message("postfix")
        def submit():
            ctx = ssl.create_default_context(cafile=pf.ca)
            with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
                s.starttls(context=ctx)
                s.login("app1", "s3cret-app1")
                s.sendmail(SENDER, ["user@example.net"], data)
        submit()
        # A wrong secret: Postfix (Dovecot) says 535; the node keeps it.
        wait_until(lambda: "SASL PLAIN authentication failed" in
                   maillog(pd), 30, "Postfix (Dovecot) refusing the secret")
        wait_until(lambda: re.search(r"status=deferred .*hop=down .*"
                                     r"reply=\"535 ", node.output()), 30,
                   "the hop's 535 in the node's log")
        assert "sasl_method=PLAIN" not in maillog(pd), maillog(pd)
        assert up.messages() == []

        # The right secret: delivered through Postfix.
        v = pf.policy_version()
        pf.ctl("hop", "add", "down", "--host", "127.0.0.1", "--port",
               str(postfix.port), "--tls", "require", "--user", HOP_USER,
               "--secret-stdin", input=HOP_SECRET + "\n")
        pf.wait_node_version("n1", pf.policy_version())
        assert pf.policy_version() > v
        msgs = wait_until(lambda: up.messages(), 60,
                          "the message through Postfix")
        assert "sasl_method=PLAIN, sasl_username=%s" % HOP_USER in \
            maillog(pd), maillog(pd)
        m = msgs[0]
        assert m["from"] == SENDER and m["rcpts"] == ["user@example.net"], m
        raw = m["data"].encode("latin-1")
        # Postfix's Received: first, then the rest as the node sent it
        pm = re.match(rb"Received: from \S+ \(localhost \[127\.0\.0\.1\]\)"
                      rb"\r\n(?:[ \t].*\r\n)+", raw)
        assert pm, raw[:600]
        pfrec = pm.group(0)
        assert b"(Authenticated sender: %s)" % HOP_USER.encode() in pfrec, \
            pfrec
        assert b"by smarthost.test (Postfix) with ESMTPSA" in pfrec, pfrec
        rest = raw[pm.end():]
        sig = re.match(rb"DKIM-Signature: .*?\r\n(?=\S)", rest, re.S)
        assert sig, rest[:600]
        assert b"d=example.com" in sig.group(0) and b"s=peer" in \
            sig.group(0), sig.group(0)
        rec, body = split_received(rest[sig.end():])
        assert rec.group("proto") == b"ESMTPSA", rec.group(0)
        assert body == data, (body, data)
        path = os.path.join(pf.dir, "through-postfix.eml")
        with open(path, "wb") as f:
            f.write(raw)
        ok, out = dkimkit.verify(dns, [path], pf.dir)
        assert ok, out
        with open(os.path.join(pf.dir, "dns.json"), "w") as f:
            json.dump(dns, f)
    print("ok")


if __name__ == "__main__":
    main()
