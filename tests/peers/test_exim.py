#!/usr/bin/env python3
"""peer_exim: Exim 4 as the smart host a node delivers to, with STARTTLS
and AUTH PLAIN (Exim's plaintext authenticator, offered only over TLS).

Debian's exim4-daemon-light conflicts with postfix (both are the system's
MTA), so scripts/deps.sh does not install it: it unpacks the package with
`apt-get download` + `dpkg -x` into /usr/local/lib/sluice-peers/exim4
(SLUICE_EXIM names another exim binary) and adds the Debian-exim user the
binary looks up at start.  This test runs that binary with its own
configuration (-C), spool and log in the test's directory, as a
foreground daemon on a loopback port, stopped by PID; Exim relays on to
tests/upstream/upstream.py.

  - the node's hop (--tls require, certificate checked against the test's
    CA with tls_ca_file, --user relay1) authenticates: Exim logs
    A=plain:relay1 for the message, its Received: says "with esmtpsa"
  - the node's own Received: and its DKIM signature arrive intact after
    Exim (dkimpy verifies), the body byte for byte
"""
import os
import re
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerkit import (PASSWORD, SENDER, USER, Daemon, PeerFleet,  # noqa
                     free_port, make_ca, message, require, split_received,
                     wait_until)
import dkimkit  # noqa: E402

EXIM = os.environ.get("SLUICE_EXIM",
                      "/usr/local/lib/sluice-peers/exim4/usr/sbin/exim4")
HOP_USER, HOP_SECRET = "relay1", "hop-s3cret"


def start_exim(d, relay_port):
    for sub in ("spool", "log"):
        os.makedirs(os.path.join(d, sub))
    subprocess.run(["chown", "-R", "mail:mail", d], check=True)
    ca, crt, key = make_ca(d, ("localhost", "127.0.0.1"))
    os.chmod(key, 0o644)        # read by Exim after it drops to "mail"
    port = free_port()
    conf = os.path.join(d, "exim.conf")
    with open(conf, "w") as f:
        f.write("""\
primary_hostname = exim.test
exim_path = {exim}
dkim_verify_signers =
exim_user = mail
exim_group = mail
spool_directory = {d}/spool
log_file_path = {d}/log/%slog
keep_environment =
daemon_smtp_ports = {port}
local_interfaces = <; 127.0.0.1
acl_smtp_rcpt = acl_check_rcpt
tls_advertise_hosts = *
tls_certificate = {crt}
tls_privatekey = {key}
never_users =
begin acl
acl_check_rcpt:
  accept authenticated = *
  deny message = relay not permitted
begin routers
onward:
  driver = manualroute
  route_list = * 127.0.0.1
  transport = onward_smtp
  self = send
begin transports
onward_smtp:
  driver = smtp
  port = {relay}
  allow_localhost
  hosts_avoid_tls = *
begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${{if and {{{{eq{{$auth2}}{{{user}}}}}\
{{eq{{$auth3}}{{{secret}}}}}}}}}
  server_advertise_condition = ${{if def:tls_in_cipher}}
  server_set_id = $auth2
""".format(exim=EXIM, d=d, port=port, crt=crt, key=key, relay=relay_port,
           user=HOP_USER, secret=HOP_SECRET))
    return Daemon([EXIM, "-C", conf, "-bdf"], os.path.join(d, "exim.out"),
                  port, "exim"), ca


def mainlog(d):
    try:
        with open(os.path.join(d, "log", "mainlog")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def main():
    require(EXIM)
    if os.geteuid() != 0:
        print("skipped: Exim's daemon starts as root")
        sys.exit(77)
    with PeerFleet("exim") as pf:
        pf.start()
        up = pf.upstream()
        ed = os.path.join(pf.dir, "exim")
        exim, ca = start_exim(ed, up.port)
        pf.add(exim)
        r = pf.ctl("dkim", "add", "example.com", "--selector", "peer",
                   "--generate")
        dns = {}
        for ln in r.stdout.splitlines():
            m = re.match(r"^(\S+) IN TXT (.*)$", ln)
            if m:
                dns[m.group(1)] = "".join(re.findall(r'"([^"]*)"',
                                                     m.group(2)))
        assert dns, r.stdout
        pf.relay(["--host", "127.0.0.1", "--port", str(exim.port),
                  "--tls", "require", "--user", HOP_USER, "--secret-stdin"],
                 secret=HOP_SECRET, extra="tls_ca_file = %s\n" % ca)
        data = message("exim")
        ctx = ssl.create_default_context(cafile=pf.ca)
        with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
            s.starttls(context=ctx)
            s.login(USER, PASSWORD)
            s.sendmail(SENDER, ["user@example.net"], data)
        msgs = wait_until(lambda: up.messages(), 30,
                          "the message through Exim")
        assert re.search(r"<= %s .*A=plain:%s" % (re.escape(SENDER),
                                                   HOP_USER), mainlog(ed)), \
            mainlog(ed)
        m = msgs[0]
        assert m["from"] == SENDER and m["rcpts"] == ["user@example.net"], m
        raw = m["data"].encode("latin-1")
        em = re.match(rb"Received: from [^\r]*\[127\.0\.0\.1\][^\r]*\r\n"
                      rb"(?:[ \t].*\r\n)+", raw)
        assert em, raw[:600]
        assert re.search(rb"by exim\.test with esmtpsa", em.group(0)), \
            em.group(0)
        rest = raw[em.end():]
        sig = re.match(rb"DKIM-Signature: .*?\r\n(?=\S)", rest, re.S)
        assert sig and b"d=example.com" in sig.group(0), rest[:600]
        rec, body = split_received(rest[sig.end():])
        assert rec.group("proto") == b"ESMTPSA", rec.group(0)
        assert body == data, (body, data)
        path = os.path.join(pf.dir, "through-exim.eml")
        with open(path, "wb") as f:
            f.write(raw)
        ok, out = dkimkit.verify(dns, [path], pf.dir)
        assert ok, out
    print("ok")


if __name__ == "__main__":
    main()
