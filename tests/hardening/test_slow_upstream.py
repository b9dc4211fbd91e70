"""Backpressure: an upstream that accepts slowly (docs/security.md).

A sink reads message data at about 64 KiB/s per connection.  Clients hand
the node far more than that (MESSAGES x 256 KiB) as fast as it takes them.
While the backlog drains slowly the node must stay bounded and responsive:
its resident memory grows by much less than the backlog (messages wait on
disk, not in memory), a new SMTP client is answered at once, and delivery
keeps making progress.  Under AddressSanitizer the quarantine is turned off
for the node so RSS means something.
"""
import os
import smtplib
import socket
import socketserver
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, free_port, slack, wait_until  # noqa: E402

MESSAGES = 240
SIZE = 256 * 1024
RATE = 64 * 1024  # octets per second per connection


class SlowSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port):
        self.delivered = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), SlowSession)


class SlowSession(socketserver.StreamRequestHandler):
    def reply(self, s):
        self.wfile.write((s + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.reply("220 slow.test ESMTP")
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                self.reply("250 slow.test")
            elif cmd.startswith(b"DATA"):
                self.reply("354 go ahead")
                self.slow_data()
                with self.server.lock:
                    self.server.delivered += 1
                self.reply("250 2.0.0 ok")
            elif cmd.startswith(b"QUIT"):
                self.reply("221 bye")
                return
            else:
                self.reply("250 2.0.0 ok")

    def slow_data(self):
        tail = b""
        sock = self.connection
        while True:
            chunk = self.rfile.read1(4096) if hasattr(self.rfile, "read1") \
                else sock.recv(4096)
            if not chunk:
                return
            tail = (tail + chunk)[-5:]
            if tail == b"\r\n.\r\n":
                return
            time.sleep(len(chunk) / RATE)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    sink_port = free_port()
    sink = SlowSink(sink_port)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + \
        ":quarantine_size_mb=0:detect_leaks=0"
    with Fleet("slow", heartbeat_ms=500).start() as f:
        f.ctl("network", "allow", "127.0.0.0/8")
        f.ctl("hop", "add", "slow", "--host", "127.0.0.1", "--port",
              str(sink_port), "--tls", "none")
        f.ctl("route", "set", "*", "slow")
        port = free_port()
        f.start_node("edge-1", extra="listen = 127.0.0.1:%d relay\n"
                     "hostname = relay.test\n" % port)
        f.wait_node_version("edge-1", f.policy_version(), timeout=20)
        pid = f.nodes["edge-1"].p.pid
        base = rss_kb(pid)

        body = ("y" * 78 + "\r\n") * (SIZE // 80)
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.2)
        threading.Thread(target=sample, daemon=True).start()

        def client(k):
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
            for i in range(MESSAGES // 4):
                s.sendmail("a@example.com", ["b@example.net"],
                           "Subject: slow %d-%d\r\n\r\n%s" % (k, i, body))
            s.quit()
        t0 = time.monotonic()
        ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(300)
        took = time.monotonic() - t0
        backlog_mb = MESSAGES * SIZE / 1048576.0
        print("accepted %d x %d KiB (%.0f MiB) in %.1f s while the sink "
              "drains at %d KiB/s per connection" %
              (MESSAGES, SIZE // 1024, backlog_mb, took, RATE // 1024))

        # Responsive while the backlog drains.
        for _ in range(5):
            t1 = time.monotonic()
            s = smtplib.SMTP("127.0.0.1", port, timeout=10)
            assert s.ehlo()[0] == 250
            s.quit()
            dt = time.monotonic() - t1
            assert dt < slack(1.0), "EHLO took %.2f s under backlog" % dt
            time.sleep(1)
        first = sink.delivered
        wait_until(lambda: sink.delivered > first + 2, timeout=60,
                   what="delivery to keep making progress")
        stop.set()
        grow_mb = (peak[0] - base) / 1024.0
        print("node RSS %.0f MiB -> peak %.0f MiB (+%.0f MiB) for a %.0f "
              "MiB backlog; %d delivered so far" %
              (base / 1024.0, peak[0] / 1024.0, grow_mb, backlog_mb,
               sink.delivered))
        assert grow_mb < backlog_mb / 2, "memory follows the backlog"
        assert f.nodes["edge-1"].alive()
    sink.shutdown()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
