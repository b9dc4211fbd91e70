"""/metrics under attack (docs/security.md): the node's and the
controller's HTTP servers put a ceiling on every request.

  * 64 MiB of request header (one endless header line): refused within a
    second after the first 8 KiB, the process grows by less than 4 MiB.
  * slowloris (a request that stops mid-header): closed after the 5 s
    timeout.
  * /metrics still answers afterwards.
"""
import os
import socket
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, Proc, binary, free_port, slack, wait_until  # noqa: E402,E501

TIMEOUT_S = 5           # METRICS_TIMEOUT_S / MH_TIMEOUT_S
FLOOD = 64 << 20


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def get(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        assert r.status == 200, r.status
        return r.read()


def flood(port):
    """Streams FLOOD octets of one header; returns (octets the server
    took before refusing, seconds, first reply line)."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(10)
    chunk = b"a" * 65536
    sent = 0
    t0 = time.monotonic()
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Flood: ")
        while sent < FLOOD:
            sent += s.send(chunk)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    took = time.monotonic() - t0
    try:
        reply = s.recv(200).split(b"\r\n")[0]
    except OSError:
        reply = b""
    s.close()
    return sent, took, reply


def slowloris(port, out, key):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(30)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: a")
    t0 = time.monotonic()
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    out[key] = time.monotonic() - t0
    s.close()


def main():
    with Fleet("metrics", heartbeat_ms=200) as f:
        f.start_pg()
        cport = free_port()
        conf = f.controller_conf()
        with open(conf, "a") as cf:
            cf.write("metrics_listen = 127.0.0.1:%d\n" % cport)
        ctl = Proc([binary("sluice-controller"), "--config", conf],
                   os.path.join(f.dir, "controller0.log")).start()
        f.controllers.append(ctl)
        wait_until(lambda: f.ctl("node", "list", check=False).returncode
                   == 0, what="controller")
        nport = free_port()
        node = f.start_node("edge-1", extra="metrics_listen = "
                            "127.0.0.1:%d\n" % nport)
        wait_until(lambda: get(nport), what="node /metrics")
        wait_until(lambda: get(cport), what="controller /metrics")
        targets = [("node", nport, node.p.pid), ("controller", cport,
                                                  ctl.p.pid)]

        for name, port, pid in targets:
            before = rss_kib(pid)
            sent, took, reply = flood(port)
            grew = rss_kib(pid) - before
            print("%s: flood refused after %d octets sent, %.2fs, %r, "
                  "RSS +%d KiB" % (name, sent, took, reply, grew))
            assert sent < FLOOD // 4, (name, sent)
            assert took < slack(3), (name, took)
            assert grew < 4096, (name, grew)
            assert get(port)

        closed = {}
        threads = [threading.Thread(target=slowloris, args=(port, closed,
                                                             name))
                   for name, port, _ in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        for name, _, _ in targets:
            print("%s: slowloris closed after %.1fs" % (name, closed[name]))
            assert TIMEOUT_S - 1 <= closed[name] <= TIMEOUT_S + slack(3), \
                closed
        for name, port, _ in targets:
            assert get(port)
        assert node.alive() and ctl.alive()
        print("ok")


if __name__ == "__main__":
    main()
