"""TLS and AUTH with a certificate the test makes: AUTH never offered or
accepted in clear text, STARTTLS discards pipelined commands
(CVE-2011-0411) and resets the session, AUTH PLAIN and LOGIN success and
every failure reply, sender ownership, the submission and smtps roles."""
import base64
import os
import re
import warnings
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtpkit import Node, normal_message_goes_through, queue_id, send_mail  # noqa

warnings.simplefilter("ignore", DeprecationWarning)   # TLS 1.1 probe

USERS = [("app1", "s3cret", ["*@example.com"]),
         ("app2", "other-pw", ["app2@example.org"])]


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user, pw, authz=""):
    return b64("%s\0%s\0%s" % (authz, user, pw))


def tls_session(n, role="relay"):
    c = n.connect(role)
    c.expect("220 ")
    c.ehlo()
    c.send("STARTTLS")
    c.expect("220 2.0.0")
    c.starttls()
    r = c.ehlo()
    return c, r


def test_no_auth_in_clear(n):
    c = n.connect()
    c.expect("220 ")
    r = c.ehlo()
    assert not any("AUTH" in l for l in r), r
    assert any("STARTTLS" in l for l in r), r
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))
    c.expect("530 5.7.0 Must issue a STARTTLS command first")
    # untrusted and not authenticated: no relaying
    c.send("MAIL FROM:<a@example.com>")
    c.expect("250 ")
    c.send("RCPT TO:<b@example.net>")
    c.expect("554 5.7.1")
    c.close()


def test_starttls_injection(n):
    c = n.connect()
    c.expect("220 ")
    c.ehlo()
    # C: STARTTLS, and behind it in the same packet, commands an attacker
    # in the middle wants executed inside the TLS session
    c.send_raw("STARTTLS\r\nRSET\r\nMAIL FROM:<evil@attacker.test>\r\n")
    c.expect("220 2.0.0 Ready to start TLS")
    c.starttls()
    assert c.tls_version() in ("TLSv1.2", "TLSv1.3"), c.tls_version()
    c.send("MAIL FROM:<a@example.com>")          # session was reset
    c.expect("503 5.5.1")
    r = c.ehlo()                                 # first reply is ours
    assert r[0].startswith("250-mx.test"), r
    assert "250-AUTH PLAIN LOGIN" in r, r
    assert not any("STARTTLS" in l for l in r), r
    c.send("STARTTLS")
    c.expect("503 5.5.1")
    c.close()
    n.wait_log(r"smtp starttls client=\S+ discarded=\d+ octets")
    n.wait_log(r"smtp tls client=\S+ TLSv1\.[23] ")


def test_auth_plain_and_relay(n):
    c, r = tls_session(n)
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))
    c.expect("235 2.7.0")
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))
    c.expect("503 5.5.1")
    qid = queue_id(send_mail(c, sender="someone@example.com"))
    c.send("MAIL FROM:<x@example.org>")
    r = c.expect("553 5.7.1")
    assert "not owned by user app1" in r[-1], r
    normal_message_goes_through(c)
    c.close()
    n.wait_log(r"%s smtp accepted client=\S+ user=app1 "
               r"from=<someone@example\.com>.* tls=yes" % qid)


def test_auth_plain_challenge_and_login(n):
    c, r = tls_session(n)
    c.send("AUTH PLAIN")                       # empty challenge
    c.expect("334 ")
    c.send(plain("app2", "other-pw"))
    c.expect("235 ")
    queue_id(send_mail(c, sender="app2@example.org"))
    c.close()
    c, r = tls_session(n)
    c.send("AUTH LOGIN")
    assert c.expect("334 ")[-1] == "334 " + b64("Username:")
    c.send(b64("app1"))
    assert c.expect("334 ")[-1] == "334 " + b64("Password:")
    c.send(b64("s3cret"))
    c.expect("235 ")
    c.close()
    c, r = tls_session(n)
    c.send("AUTH LOGIN " + b64("app1"))        # initial response
    c.expect("334 " + b64("Password:"))
    c.send(b64("s3cret"))
    c.expect("235 ")
    c.close()


def test_auth_failures(n):
    c, r = tls_session(n)
    c.send("AUTH PLAIN " + plain("app1", "wrong"))
    c.expect("535 5.7.8")
    c.send("AUTH PLAIN " + plain("nosuchuser", "s3cret"))
    c.expect("535 5.7.8")
    c.send("AUTH PLAIN !!!notbase64")
    c.expect("501 5.5.2")
    c.send("AUTH PLAIN " + plain("app1", "s3cret", authz="app2"))
    c.expect("501 5.5.2")
    c.send("AUTH LOGIN")
    c.expect("334 ")
    c.send("*")
    c.expect("501 ")
    c.send("AUTH PLAIN")
    c.expect("334 ")
    c.send("A" * 13000)                       # over the SASL ceiling
    c.expect("500 5.5.6")
    c.send("AUTH CRAM-MD5")
    c.expect("504 5.5.4")
    # still unauthenticated: no relaying
    c.send("MAIL FROM:<a@example.com>")
    c.expect("250 ")
    c.send("RCPT TO:<b@example.net>")
    c.expect("554 5.7.1")
    # and a good AUTH afterwards works
    c.send("RSET")
    c.expect("250 ")
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))
    c.expect("235 ")
    normal_message_goes_through(c)
    c.close()
    n.wait_log(r"smtp auth client=\S+ mech=PLAIN user=app1 result=failed")


def test_auth_failure_log(n):
    """A password typed into the user field is never logged: a failed
    AUTH names the user only when it is a known credential."""
    typed = "Tr0ub4dor-typed-in-user-field"
    typed2 = "c0rrect-h0rse-LOGIN-user"
    c, r = tls_session(n)
    c.send("AUTH PLAIN " + plain(typed, "whatever"))
    c.expect("535 5.7.8")
    c.send("AUTH LOGIN " + b64(typed2))
    c.expect("334 ")
    c.send(b64("whatever"))
    c.expect("535 5.7.8")
    c.send("AUTH LOGIN")
    c.expect("334 ")
    c.send(b64("app2"))
    c.expect("334 ")
    c.send(b64("not-app2s-password"))
    c.expect("535 5.7.8")
    c.close()
    n.wait_log(r"smtp auth client=\S+ mech=LOGIN user=app2 result=failed")
    log = n.log()
    assert typed not in log and typed2 not in log, log
    assert len(re.findall(r"smtp auth client=\S+ mech=PLAIN "
                          r"result=failed", log)) >= 1, log
    assert len(re.findall(r"smtp auth client=\S+ mech=LOGIN "
                          r"result=failed", log)) == 1, log


def test_submission(n):
    c = n.connect("submission")
    c.expect("220 ")
    c.ehlo()
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))
    c.expect("530 5.7.0 Must issue a STARTTLS command first")
    c.send("MAIL FROM:<a@example.com>")
    c.expect("530 5.7.0")
    c.close()
    c, r = tls_session(n, "submission")
    c.send("MAIL FROM:<a@example.com>")
    c.expect("530 5.7.0 Authentication required")
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))
    c.expect("235 ")
    queue_id(send_mail(c))
    c.close()


def test_smtps(n):
    c = n.connect("smtps", tls=True)
    c.expect("220 mx.test")
    assert c.tls_version() in ("TLSv1.2", "TLSv1.3")
    r = c.ehlo()
    assert "250-AUTH PLAIN LOGIN" in r, r
    assert not any("STARTTLS" in l for l in r), r
    c.send("MAIL FROM:<a@example.com>")
    c.expect("530 5.7.0")
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))
    c.expect("235 ")
    queue_id(send_mail(c))
    c.close()
    # plain text on the TLS port: the handshake fails, the node goes on
    s = socket.create_connection(("127.0.0.1", n.ports["smtps"]), timeout=10)
    s.sendall(b"EHLO plain.test\r\n")
    try:
        data = s.recv(100)                      # a TLS alert or EOF
    except ConnectionResetError:
        data = b""
    assert not data.startswith(b"220"), data
    s.close()
    # TLS 1.1 is refused
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return                                  # the client cannot even try
    raw = socket.create_connection(("127.0.0.1", n.ports["smtps"]),
                                   timeout=10)
    try:
        ctx.wrap_socket(raw, server_hostname="localhost")
        raise AssertionError("TLS 1.1 handshake succeeded")
    except (ssl.SSLError, ConnectionResetError):
        pass
    raw.close()
    c = n.connect("smtps", tls=True)            # the node is fine
    c.expect("220 ")
    c.close()


def old_tls_context():
    """A client that offers TLS 1.0/1.1 only, or None if this OpenSSL
    cannot even try."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return None
    return ctx


def test_starttls_old_version(n):
    """STARTTLS offering only TLS 1.0/1.1 gets a protocol_version alert,
    as on the smtps listener, not a bare EOF."""
    ctx = old_tls_context()
    if ctx is None:
        print("skip: this OpenSSL cannot offer TLS 1.1")
        return
    for role in ("relay", "smtps"):
        c = n.connect(role)
        if role == "relay":
            c.expect("220 ")
            c.ehlo()
            c.send("STARTTLS")
            c.expect("220 2.0.0")
        try:
            ctx.wrap_socket(c.sock, server_hostname="localhost")
            raise AssertionError("TLS 1.1 handshake succeeded")
        except ssl.SSLError as e:
            assert "PROTOCOL_VERSION" in str(e).upper(), (role, e)
        c.sock.close()
    n.wait_log(r"smtp disconnect client=\S+ reason=error tls=\"[^\"]*"
               r"unsupported protocol")
    c, _r = tls_session(n)                      # the node is fine
    c.close()


def test_last_reply_after_starttls(n):
    """The reply before a close is not lost under STARTTLS: the ciphertext
    of the 221 waits below the TLS filter and must still be sent."""
    for _ in range(5):
        c, _r = tls_session(n)
        c.send("QUIT")
        c.expect("221 ")
        assert c.closed(), "session not closed after 221"
    # the same for a close the server decides on (bad commands): 421
    c, _r = tls_session(n)
    last = None
    for _ in range(12):
        try:
            c.send("BOGUS")
            last = c.reply()[-1]
        except Exception:
            break
        if last.startswith("421"):
            break
    assert last is not None and last.startswith("421"), last


def main():
    with Node("tls", networks=[], users=USERS,
              listeners=("relay", "submission", "smtps")) as n:
        n.start()
        test_no_auth_in_clear(n)
        test_starttls_injection(n)
        test_auth_plain_and_relay(n)
        test_auth_plain_challenge_and_login(n)
        test_auth_failures(n)
        test_submission(n)
        test_smtps(n)
        test_last_reply_after_starttls(n)
        test_starttls_old_version(n)
        test_auth_failure_log(n)    # last: its failures block the IP
        assert n.proc.alive()
    print("ok")


if __name__ == "__main__":
    main()
