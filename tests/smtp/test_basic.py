"""SMTP basics from a trusted network, as transcripts: greeting, EHLO
keywords, every ordinary verb, sequence errors, PIPELINING in one send,
the accepted log line and the journal's received event."""
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtpkit import Node, message, queue_id, send_mail  # noqa: E402


def test_transcript(n):
    c = n.connect()
    c.expect("220 mx.test ESMTP")                 # S: 220 mx.test ESMTP
    c.send("EHLO client.test")                    # C: EHLO client.test
    r = c.expect("250 ")
    kw = [l[4:] for l in r]
    assert kw[0] == "mx.test", r
    for k in ("PIPELINING", "SIZE 10240000", "8BITMIME",
              "ENHANCEDSTATUSCODES", "SMTPUTF8", "STARTTLS"):
        assert k in kw, (k, r)
    assert not any(k.startswith("AUTH") for k in kw), r   # never in clear
    assert "CHUNKING" not in kw
    c.send("NOOP")
    c.expect("250 2.0.0")
    c.send("VRFY postmaster")
    c.expect("252 ")
    c.send("HELP")
    c.expect("214 ")
    c.send("EXPN list")
    c.expect("502 5.5.1")
    c.send("RCPT TO:<b@example.net>")             # before MAIL
    c.expect("503 5.5.1")
    c.send("DATA")
    c.expect("503 5.5.1")
    c.send("MAIL FROM:<a@example.com>")
    c.expect("250 2.1.0")
    c.send("MAIL FROM:<a@example.com>")           # nested
    c.expect("503 5.5.1")
    c.send("DATA")                                # no recipients yet
    c.expect("554 5.5.1")
    c.send("RCPT TO:<b@example.net>")
    c.expect("250 2.1.5")
    c.send("RCPT TO:<>")
    c.expect("501 5.1.3")
    c.send("RCPT TO:<b@example.net> NOTIFY=NEVER")
    c.expect("555 5.5.4")
    c.send("DATA extra")
    c.expect("501 5.5.4")
    c.send("DATA")
    c.expect("354 ")
    c.send_raw(message("basic", "<basic-1@client.test>") + ".\r\n")
    qid = queue_id(c.expect("250 2.0.0 Ok: queued as ")[-1])
    c.send("RSET")
    c.expect("250 2.0.0")
    c.send("BDAT 10 LAST")
    c.expect("502 5.5.1")
    c.send("FOO")
    c.expect("500 5.5.2")
    c.send("QUIT")
    c.expect("221 2.0.0")
    assert c.closed()
    line = n.wait_log(r"%s smtp accepted client=\[127\.0\.0\.1\]:\d+ "
                      r"from=<a@example\.com> nrcpt=1 size=\d+ "
                      r"msgid=<basic-1@client\.test>" % qid)
    return qid


def test_helo_and_mail_before_helo(n):
    c = n.connect()
    c.expect("220 ")
    c.send("MAIL FROM:<a@example.com>")
    c.expect("503 5.5.1")
    c.send("HELO")
    c.expect("501 5.5.4")
    c.send("HELO client.test")
    c.expect("250 mx.test")
    c.send("MAIL FROM:<a@example.com> SMTPUTF8")   # HELO: no ESMTP
    c.expect("503 5.5.1")
    queue_id(send_mail(c))
    c.send("QUIT")
    c.expect("221")


def test_pipelining_one_send(n):
    """Every command of a transaction in one write; replies come back in
    order (and, per RFC 2920, in as few sends as the server can)."""
    c = n.connect()
    c.expect("220 ")
    c.ehlo()
    batch = ("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
             "RCPT TO:<nobody-here>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
    c.send_raw(batch)
    c.expect("250 2.1.0")
    c.expect("250 2.1.5")
    c.expect("501 5.1.3")
    c.expect("250 2.1.5")
    c.expect("354 ")
    # the data, the dot and the next transaction in one send too
    c.send_raw(message("pipe1") + ".\r\nMAIL FROM:<a@example.com>\r\n"
               "RCPT TO:<b@example.net>\r\nDATA\r\n")
    q1 = queue_id(c.expect("250 2.0.0")[-1])
    c.expect("250 2.1.0")
    c.expect("250 2.1.5")
    c.expect("354 ")
    c.send_raw(message("pipe2") + ".\r\nQUIT\r\n")
    q2 = queue_id(c.expect("250 2.0.0")[-1])
    c.expect("221 ")
    assert q1 != q2
    n.wait_log(r"%s smtp accepted .* nrcpt=2 " % q1)


def test_pipelined_replies_in_one_segment(n):
    """The replies to a pipelined batch arrive together: the first recv
    after the batch holds all of them (one send, TCP_NODELAY)."""
    c = n.connect()
    c.expect("220 ")
    c.ehlo()
    c.send_raw("NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nRSET\r\n")
    got = c.sock.recv(65536)
    while got.count(b"\r\n") < 5:
        # only if the batch itself reached the node in pieces
        d = c.sock.recv(65536)
        assert d
        got += d
    assert got.count(b"\r\n") == 5, got
    c.close()


def test_client_reading_late(n):
    """A client that pipelines a long run before it reads anything: the
    replies (about 7 MB) outgrow the socket buffers (the client's receive
    buffer is 4 KiB), the node's direct write of a batch is cut short
    and the rest waits in the node, which stops reading until it drains.
    Every reply arrives, once and in order."""
    c = n.connect()
    c.expect("220 ")
    ehlo = [l.encode() for l in c.ehlo()]
    pattern = ehlo + [b"250 2.0.0 Ok"]
    pairs = 30000
    batch = b"EHLO client.test\r\nNOOP\r\n" * pairs
    c.close()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", n.ports["relay"]))
    got = b""
    while b"\r\n" not in got:
        got += s.recv(4096)
    assert got.startswith(b"220 "), got
    s.setblocking(False)
    sent, got = 0, b""
    want = len(pattern) * pairs
    deadline = time.monotonic() + 60
    while got.count(b"\r\n") < want:
        assert time.monotonic() < deadline, (sent, got.count(b"\r\n"))
        r, w, _ = select.select(
            [s], [s] if sent < len(batch) else [], [], 5)
        if w:
            sent += s.send(batch[sent:sent + 65536])
        elif r:
            # read only when sending is blocked or done: the replies
            # pile up in the node first
            d = s.recv(65536)
            assert d, "node closed the connection"
            got += d
    lines = got.split(b"\r\n")[:-1]
    assert len(lines) == want, (len(lines), want)
    for i, line in enumerate(lines):
        assert line == pattern[i % len(pattern)], (i, line)
    s.setblocking(True)
    s.sendall(b"QUIT\r\n")
    assert s.recv(4096).startswith(b"221 ")
    s.close()


def test_journal(n):
    j = os.path.join(n.spool, "events.journal")
    assert os.path.exists(j) and os.path.getsize(j) > 0, "journal empty"
    with open(j, "rb") as f:
        data = f.read()
    assert b"received" in data and b"basic-1@client.test" in data


def main():
    with Node("basic", networks=["127.0.0.0/8"]) as n:
        n.start()
        qid = test_transcript(n)
        test_helo_and_mail_before_helo(n)
        test_pipelining_one_send(n)
        test_pipelined_replies_in_one_segment(n)
        test_client_reading_late(n)
        test_journal(n)
        n.stop()
        assert qid in n.queued()
    print("ok")


if __name__ == "__main__":
    main()
