#!/usr/bin/env python3
"""latency.py - accept latency and time to delivery of a relay under an
open-loop load, the fleet beside Postfix and the direct path, interleaved.

    bench/latency.py [--build build] [--node-before PATH] [--secs 15]
                     [--reps 2] [--sizes 1024,20480] [--load 0.5]
                     [--rate N (the same offered rate for every system)]

Parts (each its own process, so neither side of the measurement shares an
interpreter with the other):
  sink    an SMTP server that answers at once and, on every message's final
          ".", records CLOCK_MONOTONIC and the message's X-Bench-Id header;
  client  an open-loop load (build/tests/latency_client, bench/
          latency_client.c; this file's Python client with --py-client or
          when it is not built): message i is due at t0 + i/rate whatever the
          replies do (a message whose time comes while every session is
          busy waits in a queue and a new session is opened, up to 200);
          MAIL/RCPT/DATA are pipelined (RFC 2920), then the body.  It
          records, per id, when the final "." left and when the 250 came.
Systems, all relaying to the same sink:
  sluice      the fleet as scripts/fleet.sh runs it: PostgreSQL, the
              controller, a node enrolled with heartbeat_ms = 1000 and the
              default delivery settings, policy: relay 127.0.0.0/8 to a hop
              on the sink;
  sluice-old  (with --node-before) the same fleet, a second node running an
              older sluice-node binary: before/after in one run;
  postfix     a private Postfix at its defaults (own config and queue
              directories in the temp dir, master in the foreground,
              relayhost = the sink);
  direct      client -> sink: the floor of the measurement itself.
Saturation: smtp-source with 10 sessions, the time until the sink has every
message (closed loop, 3 s or more of load).  Each system then runs at
--load of its own saturation rate; direct at the highest rate of the others
(the Python sink cannot take the direct path's own saturation).  Points run
interleaved: for each repetition, for each size, every system in turn.

Reported per system and size: offered and achieved rate, accept latency
(final "." sent -> 250 read) and time to delivery (final "." sent -> the
sink has read the final "."), p50/p99/p99.9 in ms, and the client's
schedule lag p99 (how late the client itself started a message: if this is
large the client, not the system, is the bottleneck).

Needs Postfix (apt-get install postfix: smtp-source, master; the system's
postfix service is not used), PostgreSQL 15 and the build.  Processes are
stopped by PID.  The machine's other work makes numbers noisy: compare only
within one run.
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def now_ns():
    return time.monotonic_ns()


# ------------------------------------------------------------------ sink

class SinkProto(asyncio.Protocol):
    out = None

    def connection_made(self, tr):
        self.tr = tr
        self.buf = b""
        self.data = False
        self.bid = None
        tr.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk):
        self.buf += chunk
        out = []
        while True:
            if self.data:
                # headers first: the id is near the top
                if self.bid is None:
                    k = self.buf.find(b"X-Bench-Id: ")
                    if k != -1:
                        e = self.buf.find(b"\r\n", k)
                        if e != -1:
                            self.bid = self.buf[k + 12:e].decode()
                k = self.buf.find(b"\r\n.\r\n")
                if k == -1:
                    # keep the tail that may hold the marker or the id
                    if self.bid is not None and len(self.buf) > 8:
                        self.buf = self.buf[-8:]
                    break
                t = now_ns()
                self.buf = self.buf[k + 5:]
                self.data = False
                if self.bid is not None:
                    SinkProto.out.write("%s %d\n" % (self.bid, t))
                else:
                    SinkProto.out.write("- %d\n" % t)
                self.bid = None
                out.append(b"250 2.0.0 ok\r\n")
                continue
            k = self.buf.find(b"\r\n")
            if k == -1:
                break
            line = self.buf[:k].upper()
            self.buf = self.buf[k + 2:]
            if line.startswith(b"EHLO"):
                out.append(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                           b"250 SIZE 100000000\r\n")
            elif line.startswith(b"DATA"):
                out.append(b"354 go\r\n")
                self.data = True
                self.buf = b"\r\n" + self.buf  # a "." right away ends it
            elif line.startswith(b"QUIT"):
                out.append(b"221 bye\r\n")
                self.tr.write(b"".join(out))
                self.tr.close()
                return
            else:
                out.append(b"250 ok\r\n")
        if out:
            self.tr.write(b"".join(out))


async def sink_main(port, path):
    SinkProto.out = open(path, "w", buffering=1 << 16)
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(SinkProto, "127.0.0.1", port,
                                   backlog=1024, reuse_address=True)

    async def flusher():
        while True:
            await asyncio.sleep(0.05)
            SinkProto.out.flush()
    asyncio.ensure_future(flusher())
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with srv:
        await stop.wait()
    SinkProto.out.flush()


# ---------------------------------------------------------------- client

class Conn(asyncio.Protocol):
    def __init__(self, client):
        self.c = client
        self.buf = b""
        self.want = 0          # replies still to read for this step
        self.codes = []
        self.step = None       # callback when `want` replies are in
        self.ready = asyncio.get_running_loop().create_future()
        self.tr = None

    def connection_made(self, tr):
        self.tr = tr
        sock = tr.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.expect(1, self.on_greet)

    def connection_lost(self, exc):
        self.c.lost(self)

    def expect(self, n, fn):
        self.want, self.codes, self.step = n, [], fn

    def data_received(self, chunk):
        self.buf += chunk
        while self.want > 0:
            k = self.buf.find(b"\r\n")
            if k == -1:
                return
            line = self.buf[:k]
            self.buf = self.buf[k + 2:]
            if len(line) > 3 and line[3:4] == b"-":
                continue
            self.codes.append(int(line[:3]))
            self.want -= 1
            if self.want == 0:
                self.step()

    def on_greet(self):
        self.tr.write(b"EHLO bench.client\r\n")
        self.expect(1, lambda: self.ready.set_result(True))

    def send(self, msg):
        self.msg = msg
        self.tr.write(b"MAIL FROM:<bench@example.com>\r\n"
                      b"RCPT TO:<sink@example.net>\r\nDATA\r\n")
        self.expect(3, self.on_354)

    def on_354(self):
        if self.codes[-1] != 354:
            self.c.done(self, self.msg, None, self.codes[-1])
            self.tr.write(b"RSET\r\n")
            self.expect(1, lambda: self.c.idle(self))
            return
        body = self.c.body(self.msg[0])
        self.msg[2] = now_ns()
        self.tr.write(body)
        self.expect(1, self.on_250)

    def on_250(self):
        self.c.done(self, self.msg, now_ns(), self.codes[0])


class Client:
    def __init__(self, port, rate, secs, size, tag, maxconn=200):
        self.port, self.rate, self.secs, self.size = port, rate, secs, size
        self.tag = tag
        self.maxconn = maxconn
        self.idle_conns = []
        self.nconns = 0
        self.opening = 0
        self.backlog = []
        self.results = []
        self.pending = 0
        filler = ("x" * 76 + "\r\n").encode()
        head = ("From: <bench@example.com>\r\nTo: <sink@example.net>\r\n"
                "Subject: latency\r\nX-Bench-Id: %s-%%d\r\n\r\n" % tag)
        self.head = head
        nlines = max(1, (size - len(head) - 16) // len(filler))
        self.fill = filler * nlines
        self.all_sent = None

    def body(self, i):
        return (self.head % i).encode() + self.fill + b".\r\n"

    def lost(self, conn):
        if conn in self.idle_conns:
            self.idle_conns.remove(conn)
        self.nconns -= 1

    def idle(self, conn):
        if self.backlog:
            conn.send(self.backlog.pop(0))
        else:
            self.idle_conns.append(conn)

    def done(self, conn, msg, t250, code):
        i, t_sched, t_dot, t_start = msg
        self.results.append((i, t_sched, t_start, t_dot, t250, code))
        self.pending -= 1
        if self.pending == 0 and self.all_sent is not None:
            self.all_sent.set_result(True)
        self.idle(conn)

    async def open_one(self):
        loop = asyncio.get_running_loop()
        self.opening += 1
        try:
            _, conn = await loop.create_connection(
                lambda: Conn(self), "127.0.0.1", self.port)
            await conn.ready
            self.nconns += 1
            self.idle(conn)
        except OSError as e:
            sys.stderr.write("client: connect: %s\n" % e)
        finally:
            self.opening -= 1

    def dispatch(self, msg):
        msg[3] = now_ns()
        if self.idle_conns:
            self.idle_conns.pop().send(msg)
            return
        self.backlog.append(msg)
        if self.nconns + self.opening < self.maxconn and \
                self.opening < len(self.backlog):
            asyncio.ensure_future(self.open_one())

    async def run(self):
        loop = asyncio.get_running_loop()
        self.all_sent = loop.create_future()
        for _ in range(4):
            await self.open_one()
        n = int(self.rate * self.secs)
        self.pending = n
        t0 = now_ns() + 50_000_000
        period = 1e9 / self.rate
        for i in range(n):
            due = t0 + int(i * period)
            delay = (due - now_ns()) / 1e9
            if delay > 0.0005:
                await asyncio.sleep(delay)
            # msg: [id, scheduled, dot sent, started]
            self.dispatch([i, due, 0, 0])
        try:
            await asyncio.wait_for(self.all_sent, 60)
        except asyncio.TimeoutError:
            sys.stderr.write("client: %d replies missing\n" % self.pending)
        return t0


async def client_main(a):
    c = Client(a.port, a.rate, a.secs, a.size, a.tag)
    t0 = await c.run()
    with open(a.out, "w") as f:
        for r in c.results:
            f.write("%d %d %d %d %d %d\n" % (r[0], r[1], r[2], r[3],
                                             r[4] or 0, r[5]))
    sys.stdout.write("%d\n" % t0)


# ----------------------------------------------------------- orchestrator

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("port %d not up" % port)


def sink_count(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_sink(path, n, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sink_count(path) >= n:
            return True
        time.sleep(0.02)
    return False


class Postfix:
    MASTER = "/usr/lib/postfix/sbin/master"

    def __init__(self, tmp, sink_port):
        self.dir = os.path.join(tmp, "pf")
        self.port = free_port()
        self.p = None
        q = os.path.join(self.dir, "queue")
        etc = os.path.join(self.dir, "etc")
        os.makedirs(etc)
        os.makedirs(os.path.join(q, "pid"))
        os.makedirs(os.path.join(self.dir, "data"))
        os.chmod(tmp, 0o755)
        for d in ("active bounce corrupt defer deferred flush hold incoming "
                  "private saved trace").split():
            os.makedirs(os.path.join(q, d))
            shutil.chown(os.path.join(q, d), "postfix", "root")
            os.chmod(os.path.join(q, d), 0o700)
        for d, mode in (("maildrop", 0o730), ("public", 0o710)):
            os.makedirs(os.path.join(q, d))
            shutil.chown(os.path.join(q, d), "postfix", "postdrop")
            os.chmod(os.path.join(q, d), mode)
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        self.q = q
        # Defaults, but for what a private relay instance must say.
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write("""compatibility_level = 3.6
queue_directory = %s
data_directory = %s/data
myhostname = relay.postfix.bench
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:%d
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_client_connection_count_limit = 0
local_transport = error:no local delivery
alias_maps =
alias_database =
maillog_file = %s/maillog
maillog_file_prefixes = %s
""" % (q, self.dir, sink_port, self.dir, self.dir))
        with open("/etc/postfix/master.cf") as src:
            master = src.read()
        # the private instance listens on its own port instead of :25
        master = master.replace("\nsmtp      inet",
                                "\n127.0.0.1:%d inet" % self.port, 1)
        # No chroot: the private queue directory holds no copy of /etc
        # (a security default, not a performance one).
        lines = []
        for line in master.split("\n"):
            f = line.split()
            if line[:1] not in ("", "#", " ", "\t") and len(f) >= 8 and \
                    f[4] == "y":
                f[4] = "n"
                line = " ".join(f)
            lines.append(line)
        master = "\n".join(lines)
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.write(master)
        self.etc = etc

    def start(self):
        self.p = subprocess.Popen([self.MASTER, "-d", "-c", self.etc],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        if self.p is not None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()


def start_fleet(a, tmp, sink_port):
    sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
    os.environ["SLUICE_BUILD"] = os.path.abspath(a.build)
    from fleet import Fleet, Proc, binary, wait_until
    f = Fleet("bench", heartbeat_ms=1000)
    f.start()
    f.ctl("network", "allow", "127.0.0.0/8")
    f.ctl("hop", "add", "internal", "--host", "127.0.0.1", "--port",
          str(sink_port), "--tls", "none")
    f.ctl("route", "set", "*", "internal")
    f.ctl("limit", "set", "max_connections_per_ip", "10000")
    version = f.policy_version()
    ports = {}
    nodes = [("sluice", binary("sluice-node"))]
    if a.node_before:
        nodes.append(("sluice-old", os.path.abspath(a.node_before)))
    for name, path in nodes:
        token = f.add_node(name)
        port = free_port()
        conf = f.node_conf(name, token, "hostname = %s.bench\n"
                           "listen = 127.0.0.1:%d relay\n" % (name, port))
        f.nodes[name] = Proc([path, "--config", conf],
                             os.path.join(f.dir, name, "node.log")).start()
        ports[name] = port
    for name, _ in nodes:
        f.wait_node_version(name, version, timeout=30)
        wait_port(ports[name])
    return f, ports


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    k = min(len(v) - 1, int(p / 100.0 * len(v)))
    return v[k]


def saturation(port, size, sink_path, msgs):
    src = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    base = sink_count(sink_path)
    t0 = time.monotonic()
    subprocess.run([src, "-s", "10", "-l", str(size), "-m", str(msgs),
                    "-f", "a@example.com", "-t", "b@example.net",
                    "127.0.0.1:%d" % port], check=True,
                   stdout=subprocess.DEVNULL)
    if not wait_sink(sink_path, base + msgs):
        raise SystemExit("saturation: the sink did not get every message")
    return msgs / (time.monotonic() - t0)


def client_cmd(a, port, rate, size, tag, out):
    """The C client (build/tests/latency_client) unless --py-client or
    it is not built: the Python one took 27 % of a core at 1 300 msg/s,
    the C one 10-12 %, on a machine whose two cores the measured system
    needs too."""
    exe = os.path.join(a.build, "tests", "latency_client")
    if not a.py_client and os.access(exe, os.X_OK):
        return [exe, str(port), str(rate), str(a.secs), str(size), tag, out]
    return [sys.executable, __file__, "client", "--port", str(port),
            "--rate", str(rate), "--secs", str(a.secs), "--size", str(size),
            "--tag", tag, "--out", out]


def run_point(a, tmp, name, port, size, rate, sink_path, rep):
    tag = "%s.%d.%d" % (name, size, rep)
    out = os.path.join(tmp, "client-%s.txt" % tag)
    base = sink_count(sink_path)
    r = subprocess.run(client_cmd(a, port, rate, size, tag, out),
                       check=True, capture_output=True, text=True)
    sent = {}
    with open(out) as f:
        for line in f:
            i, t_sched, t_start, t_dot, t250, code = map(int, line.split())
            sent[i] = (t_sched, t_start, t_dot, t250, code)
    ok = sum(1 for v in sent.values() if v[4] == 250)
    wait_sink(sink_path, base + ok, 60)
    arrive = {}
    prefix = tag + "-"
    with open(sink_path) as f:
        for line in f:
            bid, t = line.split()
            if bid.startswith(prefix):
                arrive[int(bid[len(prefix):])] = int(t)
    acc, dlv, lag = [], [], []
    for i, (t_sched, t_start, t_dot, t250, code) in sent.items():
        lag.append((t_start - t_sched) / 1e6)
        if code == 250:
            acc.append((t250 - t_dot) / 1e6)
        if i in arrive:
            dlv.append((arrive[i] - t_dot) / 1e6)
    span = (max(v[1] for v in sent.values()) -
            min(v[1] for v in sent.values())) / 1e9 if sent else 1
    return {"sys": name, "size": size, "rate": rate,
            "achieved": len(sent) / span if span > 0 else 0,
            "n": len(sent), "ok": ok, "delivered": len(dlv),
            "acc": acc, "dlv": dlv, "lag": lag}


def fmt_row(rows):
    acc = sum((r["acc"] for r in rows), [])
    dlv = sum((r["dlv"] for r in rows), [])
    lag = sum((r["lag"] for r in rows), [])
    r0 = rows[0]
    return ("%-10s %6d %6.0f %6.0f | %7.2f %7.2f %7.2f | %7.2f %7.2f %7.2f "
            "| %6.2f | %d/%d/%d" % (
                r0["sys"], r0["size"], r0["rate"],
                sum(r["achieved"] for r in rows) / len(rows),
                pct(acc, 50), pct(acc, 99), pct(acc, 99.9),
                pct(dlv, 50), pct(dlv, 99), pct(dlv, 99.9), pct(lag, 99),
                sum(r["n"] for r in rows), sum(r["ok"] for r in rows),
                sum(r["delivered"] for r in rows)))


def orchestrate(a):
    tmp = tempfile.mkdtemp(prefix="sluice-latency-")
    os.chmod(tmp, 0o755)
    sink_port = free_port()
    sink_path = os.path.join(tmp, "sink.txt")
    procs = []
    fleet = pf = None
    sink = subprocess.Popen([sys.executable, __file__, "sink", "--port",
                             str(sink_port), "--out", sink_path])
    procs.append(sink)
    try:
        wait_port(sink_port)
        systems = {}
        if not a.no_sluice:
            fleet, ports = start_fleet(a, tmp, sink_port)
            systems.update(ports)
        if not a.no_postfix:
            pf = Postfix(tmp, sink_port)
            pf.start()
            systems["postfix"] = pf.port
        sizes = [int(s) for s in a.sizes.split(",")]
        rates = {}
        for size in sizes:
            top = 0
            if a.rate > 0:  # one offered rate for every system
                for name in list(systems) + ["direct"]:
                    rates[(name, size)] = int(a.rate)
                continue
            for name, port in systems.items():
                sat = saturation(port, size, sink_path, a.sat_msgs)
                rates[(name, size)] = max(1, int(sat * a.load))
                top = max(top, rates[(name, size)])
                print("saturation %-10s %6d B: %6.0f msg/s -> offered %d"
                      % (name, size, sat, rates[(name, size)]), flush=True)
            rates[("direct", size)] = top
        systems["direct"] = sink_port
        results = {}
        order = list(systems)
        for rep in range(a.reps):
            for size in sizes:
                random.shuffle(order)
                for name in order:
                    r = run_point(a, tmp, name, systems[name], size,
                                  rates[(name, size)], sink_path, rep)
                    results.setdefault((name, size), []).append(r)
                    print("  rep %d %-10s %6d: %s" % (
                        rep, name, size, fmt_row([r])[28:]), flush=True)
        print()
        print("%-10s %6s %6s %6s | %-23s | %-23s | %6s | sent/250/dlv" % (
            "system", "size", "offer", "got", "accept ms p50/p99/p99.9",
            "delivery ms p50/p99/p99.9", "lag99"))
        for size in sizes:
            for name in systems:
                print(fmt_row(results[(name, size)]))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"%s/%d" % k: {
                    "rate": v[0]["rate"],
                    "acc": [pct(sum((r["acc"] for r in v), []), p)
                            for p in (50, 99, 99.9)],
                    "dlv": [pct(sum((r["dlv"] for r in v), []), p)
                            for p in (50, 99, 99.9)]}
                    for k, v in results.items()}, f, indent=1)
    finally:
        if pf is not None:
            pf.stop()
        if fleet is not None:
            fleet.stop()
            shutil.rmtree(fleet.dir, ignore_errors=True)
        for p in procs:
            p.terminate()
            p.wait()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("sink")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--out", required=True)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--rate", type=float, required=True)
    c.add_argument("--secs", type=float, default=10)
    c.add_argument("--size", type=int, default=1024)
    c.add_argument("--tag", default="x")
    c.add_argument("--out", required=True)
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--node-before", default="")
    ap.add_argument("--secs", type=float, default=15)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--sizes", default="1024,20480")
    ap.add_argument("--load", type=float, default=0.5)
    ap.add_argument("--rate", type=float, default=0,
                    help="offer this rate to every system (no saturation "
                    "runs)")
    ap.add_argument("--sat-msgs", type=int, default=6000)
    ap.add_argument("--py-client", action="store_true",
                    help="the Python load client instead of "
                    "build/tests/latency_client")
    ap.add_argument("--no-postfix", action="store_true")
    ap.add_argument("--no-sluice", action="store_true")
    ap.add_argument("--json", default="")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if a.cmd == "sink":
        asyncio.run(sink_main(a.port, a.out))
    elif a.cmd == "client":
        asyncio.run(client_main(a))
    else:
        orchestrate(a)


if __name__ == "__main__":
    main()
