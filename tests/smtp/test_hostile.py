"""Hostile input, each answered with a clear reply and followed by a
normal message that still goes through: over-long lines, bare CR/LF in
commands and DATA, end-of-data smuggling variants (nothing smuggled is
ever queued), NUL, too many errors, open-relay address tricks and relay
attempts from an untrusted client."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtpkit import (Node, message, normal_message_goes_through,  # noqa
                     queue_id, send_mail)

SMUGGLED = "smuggled@evil.test"


def open_session(n):
    c = n.connect()
    c.expect("220 ")
    c.ehlo()
    return c


def test_long_command(n, queued_ok):
    c = open_session(n)
    c.send("NOOP " + "x" * 600)                   # 606 + CRLF > 512
    c.expect("500 5.5.2")
    c.send("NOOP " + "x" * 505)                   # exactly 512: fine
    c.expect("250 ")
    c.send_raw("MAIL FROM:<" + "a" * 100000)      # no LF for a long time
    c.send_raw("@example.com>\r\n")
    c.expect("500 5.5.2")
    queued_ok.add(normal_message_goes_through(c))
    c.close()


def test_bare_newlines_in_commands(n, queued_ok):
    c = open_session(n)
    c.send_raw("NOOP\n")
    c.expect("500 5.5.2")
    c.send_raw("NOOP\rRSET\r\n")
    c.expect("500 5.5.2")
    c.send_raw("NO\0OP\r\n")
    c.expect("500 5.5.2")
    queued_ok.add(normal_message_goes_through(c))
    c.close()


# Each variant: a message whose body hides a would-be end of data and a
# second transaction.  Only <CRLF>.<CRLF> ends DATA, so the node reads on
# to the real end, refuses the whole message (bare CR/LF) and queues
# nothing - in particular no message for SMUGGLED.
VARIANTS = {
    "LF.LF": "\n.\n",
    "CR.CR": "\r.\r",
    "LF.CRLF": "\n.\r\n",
    "CRLF.LF": "\r\n.\n",
    "CRLF.CR": "\r\n.\r",
    "CR.CRLF": "\r.\r\n",
    "CR.LF": "\r.\n",
}


def test_smuggling(n, queued_ok):
    for name, term in VARIANTS.items():
        c = open_session(n)
        c.send_raw("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>"
                   "\r\nDATA\r\n")
        c.expect("250 ")
        c.expect("250 ")
        c.expect("354 ")
        body = ("Subject: %s\r\n\r\nhello%sMAIL FROM:<a@example.com>\r\n"
                "RCPT TO:<%s>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n"
                % (name, term, SMUGGLED))
        c.send_raw(body + ".\r\n")
        r = c.expect("554 5.6.0")
        assert "bare CR or LF" in r[-1], r
        queued_ok.add(normal_message_goes_through(c))
        c.close()
    n.wait_log(r"smtp refused .* reply=\"554 5\.6\.0 Message refused: bare")


def test_bare_lf_lines_in_data(n, queued_ok):
    c = open_session(n)
    c.send("MAIL FROM:<a@example.com>")
    c.expect("250 ")
    c.send("RCPT TO:<b@example.net>")
    c.expect("250 ")
    c.send("DATA")
    c.expect("354 ")
    c.send_raw("Subject: unix\n\nline one\nline two\n.\n")
    c.send_raw("\r\n.\r\n")            # the real end
    c.expect("554 5.6.0")
    queued_ok.add(normal_message_goes_through(c))
    c.close()


def test_nul_and_long_data_line(n, queued_ok):
    c = open_session(n)
    r = send_mail(c, body="Subject: nul\r\n\r\na\0b\r\n", expect="554 ")
    assert "NUL" in r, r
    queued_ok.add(normal_message_goes_through(c))
    r = send_mail(c, body="Subject: long\r\n\r\n" + "y" * 1200 + "\r\n",
                  expect="554 ")
    assert "1000" in r, r
    queued_ok.add(normal_message_goes_through(c))
    # 998 octets + CRLF is the largest legal line
    queued_ok.add(queue_id(send_mail(
        c, body="Subject: ok\r\n\r\n" + "z" * 998 + "\r\n")))
    c.close()


def test_dot_stuffing(n, queued_ok):
    c = open_session(n)
    qid = queue_id(send_mail(c, body="Subject: dots\r\n\r\n..leading\r\n"
                             "...\r\n.x\r\n"))
    queued_ok.add(qid)
    c.close()


def test_too_many_errors(n):
    c = open_session(n)
    for i in range(9):
        c.send("BOGUS%d" % i)
        c.expect("500 5.5.2")
    c.send("BOGUS")
    c.expect("421 4.7.0")
    assert c.closed()
    n.wait_log(r"reason=too-many-errors")


def test_untrusted(n):
    """A client outside every policy network, not authenticated."""
    c = open_session(n)
    c.send("MAIL FROM:<a@example.com>")
    c.expect("250 ")
    for rcpt, code in [
            ("b@example.net", "554 5.7.1"),                 # relay denied
            ("b%victim.example@example.net", "553 5.1.3"),  # percent hack
            ("@relay.example:b@example.net", "553 5.1.3"),  # source route
            ("victim.example!b@example.net", "553 5.1.3"),  # bang path
            ('"b@victim.example"@example.net', "553 5.1.3")]:
        c.send("RCPT TO:<%s>" % rcpt)
        r = c.expect(code)
        if code == "554 5.7.1":
            assert "Relay access denied" in r[-1]
    c.send("DATA")
    c.expect("554 5.5.1")             # no valid recipients: nothing queued
    c.send("RSET")
    c.expect("250 ")
    c.send("MAIL FROM:<a%b@example.com>")
    c.expect("553 5.1.3")
    c.send("QUIT")
    c.expect("221 ")
    n.wait_log(r"smtp refused client=\[127\.0\.0\.1\]:\d+ "
               r"from=<a@example\.com> to=<b@example\.net> "
               r"reply=\"554 5\.7\.1 Relay access denied\"")


def main():
    queued_ok = set()
    with Node("hostile", networks=["127.0.0.1/32"]) as n:
        n.start()
        test_long_command(n, queued_ok)
        test_bare_newlines_in_commands(n, queued_ok)
        test_smuggling(n, queued_ok)
        test_bare_lf_lines_in_data(n, queued_ok)
        test_nul_and_long_data_line(n, queued_ok)
        test_dot_stuffing(n, queued_ok)
        test_too_many_errors(n)
        assert n.proc.alive()
        n.stop()
        q = n.queued()
        # every accepted message is queued; nothing else is
        assert q == queued_ok, (q, queued_ok)
    # an empty policy: relays nothing for anyone
    with Node("untrusted", networks=[]) as n:
        n.start()
        test_untrusted(n)
        n.stop()
        assert n.queued() == set()
    print("ok")


if __name__ == "__main__":
    main()
