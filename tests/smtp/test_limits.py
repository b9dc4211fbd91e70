"""Policy limits, each with its reply: declared and actual message size
(552), recipients per message (452), connections per client IP (421),
messages per minute per IP and per user (451), AUTH failures before a
block (454 on AUTH, 421 on connect, logged), idle and total session
timeouts (421).  A normal message still goes through after each."""
import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtpkit import (Node, message, normal_message_goes_through,  # noqa
                     queue_id, send_mail, wait_until)


def session(n, source=None):
    c = n.connect(source=source)
    c.expect("220 ")
    c.ehlo()
    return c


def plain(user, pw):
    return base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode()


def test_size(n):
    c = session(n, "127.0.0.2")
    r = c.ehlo()
    assert "250-SIZE 4096" in r, r
    c.send("MAIL FROM:<a@example.com> SIZE=5000")
    c.expect("552 5.3.4")
    c.send("MAIL FROM:<a@example.com> SIZE=4000")
    c.expect("250 ")
    c.send("RCPT TO:<b@example.net>")
    c.expect("250 ")
    c.send("DATA")
    c.expect("354 ")
    # lies about its size: read to the end, then refused
    c.send_raw(message("big", size=6000) + ".\r\n")
    c.expect("552 5.3.4")
    normal_message_goes_through(c)
    c.close()


def test_recipients(n):
    c = session(n, "127.0.0.3")
    c.send("MAIL FROM:<a@example.com>")
    c.expect("250 ")
    for i in range(3):
        c.send("RCPT TO:<r%d@example.net>" % i)
        c.expect("250 ")
    c.send("RCPT TO:<r3@example.net>")
    c.expect("452 4.5.3")
    c.send("DATA")
    c.expect("354 ")
    c.send_raw(message("rcpts") + ".\r\n")
    qid = queue_id(c.expect("250 ")[-1])
    n.wait_log(r"%s smtp accepted .* nrcpt=3 " % qid)
    normal_message_goes_through(c)
    c.close()


def test_connections_per_ip(n):
    held = [session(n, "127.0.0.5") for _ in range(3)]
    c = n.connect(source="127.0.0.5")
    c.expect("421 4.7.0")
    assert c.closed()
    other = session(n, "127.0.0.6")          # other addresses unaffected
    normal_message_goes_through(other)
    held.pop().close()

    def admitted():
        c = n.connect(source="127.0.0.5")
        r = c.reply()
        c.close()
        return r[-1].startswith("220 ")
    wait_until(admitted, 10, "a free connection slot")
    for h in held:
        normal_message_goes_through(h)
        h.close()


def test_rate_per_user_and_ip(n):
    c = session(n, "127.0.0.7")
    c.send("STARTTLS")
    c.expect("220 ")
    c.starttls()
    c.ehlo()
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))
    c.expect("235 ")
    queue_id(send_mail(c))
    queue_id(send_mail(c))
    c.send("MAIL FROM:<a@example.com>")      # 3rd for app1 this minute
    r = c.expect("451 4.7.1")
    assert "user" in r[-1], r
    c.close()
    c = session(n, "127.0.0.7")              # same IP, no AUTH
    queue_id(send_mail(c))                   # 3rd from this IP: ok
    c.send("MAIL FROM:<a@example.com>")      # 4th from this IP
    r = c.expect("451 4.7.1")
    assert "address" in r[-1], r
    c.close()
    c = session(n, "127.0.0.8")              # another IP is fine
    normal_message_goes_through(c)
    c.close()


def test_auth_block(n):
    c = session(n, "127.0.0.9")
    c.send("STARTTLS")
    c.expect("220 ")
    c.starttls()
    c.ehlo()
    for i in range(3):
        c.send("AUTH PLAIN " + plain("app1", "guess%d" % i))
        c.expect("535 5.7.8")
    c.send("AUTH PLAIN " + plain("app1", "s3cret"))   # even the right one
    c.expect("454 4.7.0")
    c.close()
    n.wait_log(r"auth-block client=127\.0\.0\.9 failures=3 seconds=60")
    c = n.connect(source="127.0.0.9")
    c.expect("421 4.7.0")
    assert c.closed()
    n.wait_log(r"auth-block client=127\.0\.0\.9 refused=connect")
    c = session(n, "127.0.0.10")                 # others unaffected
    normal_message_goes_through(c)
    c.close()


def test_idle_timeout(n):
    c = n.connect(source="127.0.0.11", timeout=30)
    c.expect("220 ")
    t0 = time.monotonic()
    c.expect("421 4.4.2")                    # idle_timeout_seconds = 5
    assert 4 <= time.monotonic() - t0 < 20
    assert c.closed()


def test_session_timeout(n):
    c = n.connect(source="127.0.0.12", timeout=30)
    c.expect("220 ")
    t0 = time.monotonic()
    while True:                               # busy, never idle
        c.send("NOOP")
        r = c.reply()
        if r[-1].startswith("421 "):
            assert "4.4.2" in r[-1], r
            break
        assert r[-1].startswith("250 "), r
        assert time.monotonic() - t0 < 30, "no session timeout"
        time.sleep(0.5)                       # pacing a client, not a wait
    assert time.monotonic() - t0 >= 9
    assert c.closed()
    n.wait_log("reason=session-timeout")


def test_max_connections():
    with Node("maxconn", networks=["127.0.0.0/8"],
              limits={"max_connections": 2}) as n:
        n.start()
        held = [session(n, "127.0.0.%d" % (20 + i)) for i in range(2)]
        c = n.connect(source="127.0.0.22")
        c.expect("421 4.7.0")
        assert c.closed()
        for h in held:
            normal_message_goes_through(h)
            h.close()

        def admitted():
            c = n.connect(source="127.0.0.22")
            r = c.reply()
            c.close()
            return r[-1].startswith("220 ")
        wait_until(admitted, 10, "a free connection slot")


def main():
    test_max_connections()
    with Node("limits", networks=["127.0.0.0/8"], users=[
            ("app1", "s3cret", ["*"])],
            limits={"max_message_size": 4096, "max_recipients": 3,
                    "max_connections_per_ip": 3,
                    "messages_per_minute_per_ip": 3,
                    "messages_per_minute_per_user": 2,
                    "auth_failures_before_block": 3,
                    "auth_block_seconds": 60,
                    "idle_timeout_seconds": 5,
                    "session_timeout_seconds": 10}) as n:
        n.start()
        # each test uses its own source address (127.0.0.x) so the
        # per-IP limits of one do not get in the way of the next
        test_size(n)
        test_recipients(n)
        test_connections_per_ip(n)
        test_rate_per_user_and_ip(n)
        test_auth_block(n)
        test_idle_timeout(n)
        test_session_timeout(n)
        assert n.proc.alive()
    print("ok")


if __name__ == "__main__":
    main()
