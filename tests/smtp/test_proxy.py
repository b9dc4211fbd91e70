"""PROXY protocol v1 and v2 on listeners marked proxy_protocol: the
address in the header is the client for policy and logs; a connection
without a valid header is dropped without a reply."""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtpkit import Client, Node, queue_id, send_mail  # noqa: E402

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, sport=52100, fam="TCP4", dst="10.0.0.1"):
    return ("PROXY %s %s %s %d 25\r\n" % (fam, src, dst, sport)).encode()


def v2_tcp4(src, sport=52100, local=False):
    addr = socket.inet_aton(src) + socket.inet_aton("10.0.0.1") + \
        struct.pack("!HH", sport, 25)
    tlv = b"\x04\x00\x03abc"                  # a TLV we skip
    if local:
        return SIG + b"\x20\x00" + struct.pack("!H", 0)
    return SIG + b"\x21\x11" + struct.pack("!H", len(addr + tlv)) + addr + tlv


def v2_tcp6(src, sport=52100):
    addr = socket.inet_pton(socket.AF_INET6, src) + \
        socket.inet_pton(socket.AF_INET6, "2001:db8::1") + \
        struct.pack("!HH", sport, 25)
    return SIG + b"\x21\x21" + struct.pack("!H", len(addr)) + addr


def proxied(n, header, role="relay", tls=False):
    s = socket.create_connection(("127.0.0.1", n.ports[role]), timeout=10)
    s.sendall(header)
    c = Client(None, sock=s)
    if tls:
        c.starttls()                          # implicit TLS after header
    c.expect("220 ")
    c.ehlo()
    return c


def relay_verdict(c):
    c.send("MAIL FROM:<a@example.com>")
    c.expect("250 ")
    c.send("RCPT TO:<b@example.net>")
    r = c.reply()[-1]
    c.send("RSET")
    c.expect("250 ")
    return r[:9]


def main():
    with Node("proxy", networks=["192.0.2.0/24"],
              listeners=("relay", "smtps"), proxy=("relay", "smtps")) as n:
        n.start()
        # v1, trusted client behind the balancer
        c = proxied(n, v1("192.0.2.7"))
        qid = queue_id(send_mail(c))
        c.close()
        n.wait_log(r"%s smtp accepted client=\[192\.0\.2\.7\]:52100 " % qid)
        # v1, untrusted
        c = proxied(n, v1("198.51.100.1", 4000))
        assert relay_verdict(c) == "554 5.7.1"
        c.close()
        n.wait_log(r"smtp refused client=\[198\.51\.100\.1\]:4000 ")
        # v1 IPv6
        c = proxied(n, v1("2001:db8::9", 4001, "TCP6", "2001:db8::1"))
        assert relay_verdict(c) == "554 5.7.1"
        c.close()
        n.wait_log(r"smtp refused client=\[2001:db8::9\]:4001 ")
        # v2 TCP4 with a TLV, trusted; header and EHLO in one packet too
        s = socket.create_connection(("127.0.0.1", n.ports["relay"]),
                                     timeout=10)
        s.sendall(v2_tcp4("192.0.2.8", 4002) + b"EHLO pipelined.test\r\n")
        c = Client(None, sock=s)
        c.expect("220 ")
        c.expect("250 ")
        qid = queue_id(send_mail(c))
        c.close()
        n.wait_log(r"%s smtp accepted client=\[192\.0\.2\.8\]:4002 " % qid)
        # v2 TCP6, untrusted
        c = proxied(n, v2_tcp6("2001:db8::7", 4003))
        assert relay_verdict(c) == "554 5.7.1"
        c.close()
        n.wait_log(r"client=\[2001:db8::7\]:4003")
        # v2 LOCAL: the socket's own address (127.0.0.1, untrusted)
        c = proxied(n, v2_tcp4("0.0.0.0", local=True))
        assert relay_verdict(c) == "554 5.7.1"
        c.close()
        # smtps behind the balancer: header, then the TLS handshake
        c = proxied(n, v1("192.0.2.9", 4004), role="smtps", tls=True)
        assert c.tls_version() in ("TLSv1.2", "TLSv1.3")
        c.close()
        # no header: dropped, not a single byte of reply
        for junk in (b"EHLO x\r\n", b"PROXY TCP4 garbage\r\n",
                     SIG + b"\x21\x99\x00\x00", b"GET / HTTP/1.0\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", n.ports["relay"]),
                                         timeout=10)
            s.sendall(junk)
            assert s.recv(100) == b"", junk
            s.close()
        n.wait_log(r"invalid PROXY header, dropped")
        # silence: dropped after the header timeout, still no reply
        s = socket.create_connection(("127.0.0.1", n.ports["relay"]),
                                     timeout=30)
        t0 = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - t0 >= 5
        s.close()
        n.wait_log(r"no header, dropped")
        assert n.proc.alive()
    print("ok")


if __name__ == "__main__":
    main()
