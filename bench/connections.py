#!/usr/bin/env python3
"""connections.py - 10 000 connections against one sluice-node.

    bench/connections.py [BUILD_DIR=build] [CONNECTIONS=10000]

Opens CONNECTIONS connections to a node's relay listener on loopback: half
sit idle after the greeting, half are "slow" (a command trickled in without
its line end).  Meanwhile a real client sends messages on a fresh
connection, and must get every one accepted, quickly.  Reports the node's
resident memory before and after (memory per connection) and the real
client's latency.  The node runs from a policy cache (no controller) with
the connection limits raised to fit; only loopback is used, and everything
started is stopped by PID.
"""
import os
import resource
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.path.join(ROOT, "build"))
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (N + 4096, N + 4096))


def wait_port(port, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("node did not listen on %d" % port)


def send_messages(port, count):
    lat = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        for i in range(count):
            t = time.monotonic()
            s.sendmail("bench@example.com", ["sink@example.net"],
                       "Subject: %d\r\n\r\nhello\r\n" % i)
            lat.append(time.monotonic() - t)
    lat.sort()
    return lat


def main():
    raise_nofile()
    tmp = tempfile.mkdtemp(prefix="sluice-conns-")
    spool = os.path.join(tmp, "spool")
    os.makedirs(spool)
    port = free_port()
    subprocess.run([os.path.join(BUILD, "tests", "sluice-mkpolicy"),
                    os.path.join(spool, "policy.cache"),
                    "--network", "127.0.0.0/8",
                    "--limit", "max_connections=%d" % (N + 100),
                    "--limit", "max_connections_per_ip=%d" % (N + 100)],
                   check=True)
    conf = os.path.join(tmp, "node.conf")
    with open(conf, "w") as f:
        f.write("name = bench\ntoken = x\ncontroller = tcp://127.0.0.1:1\n"
                "spool = %s\nlisten = 127.0.0.1:%d relay\n" % (spool, port))
    log = open(os.path.join(tmp, "node.log"), "w")
    node = subprocess.Popen([os.path.join(BUILD, "node", "sluice-node"),
                             "--config", conf], stdout=log, stderr=log,
                            preexec_fn=raise_nofile)
    socks = []
    try:
        wait_port(port)
        base = send_messages(port, 20)
        rss0 = rss_kib(node.pid)
        t0 = time.monotonic()
        for i in range(N):
            s = socket.create_connection(("127.0.0.1", port), 10)
            if i % 2:
                s.sendall(b"EHLO slow-cli")     # no CRLF: a slow client
            socks.append(s)
        t_open = time.monotonic() - t0
        # every connection greeted: the node has accepted them all
        for s in socks:
            s.settimeout(30)
            if not s.recv(512).startswith(b"220"):
                sys.exit("a connection was not greeted with 220")
        rss1 = rss_kib(node.pid)
        loaded = send_messages(port, 200)
        print("connections=%d opened in %.1fs, all greeted" % (N, t_open))
        print("node RSS: %d KiB idle, %d KiB with %d connections: "
              "%.1f KiB per connection" % (rss0, rss1, N,
                                          (rss1 - rss0) / N))
        print("real client, 200 messages beside them: p50 %.1f ms, "
              "p99 %.1f ms, max %.1f ms (idle node: p50 %.1f ms)" % (
                  loaded[len(loaded) // 2] * 1000,
                  loaded[int(len(loaded) * 0.99)] * 1000,
                  loaded[-1] * 1000, base[len(base) // 2] * 1000))
    finally:
        for s in socks:
            s.close()
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(20)
        except subprocess.TimeoutExpired:
            node.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
