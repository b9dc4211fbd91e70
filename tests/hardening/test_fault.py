"""Fault injection under load (docs/security.md, "Faults").

    test_fault.py controller   SIGKILL the controller under load, restart it
    test_fault.py pg SECONDS   stop PostgreSQL for SECONDS under load

Four SMTP clients relay messages through a node to an upstream sink without
pause.  Meanwhile the controller is killed (or PostgreSQL stopped) and later
brought back.  Then:
  - mail kept flowing: messages acknowledged while the control plane was
    away were delivered while it was away;
  - every acknowledged message reached the upstream exactly once;
  - the delivery record caught up: PostgreSQL holds exactly one "received"
    and one "delivered" event per acknowledged message, none missing, none
    duplicated (the node's journal replays; the controller stores
    idempotently).
"""
import os
import re
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "delivery"))
from fleet import Fleet, free_port, wait_until  # noqa: E402
from dlvkit import Upstream  # noqa: E402


class Load:
    """n clients relaying continuously; acked[] holds (queue id, time)."""

    def __init__(self, port, n=4):
        self.port = port
        self.n = n
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.acked = []
        self.errors = []
        self.threads = []

    def client(self, k):
        i = 0
        s = None
        while not self.stop_ev.is_set():
            try:
                if s is None:
                    s = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
                    s.ehlo("load%d.test" % k)
                i += 1
                mid = "<c%d-%d@fault.test>" % (k, i)
                code, resp = s.mail("a@example.com")
                assert code == 250, (code, resp)
                code, resp = s.rcpt("b%d@example.net" % k)
                assert code == 250, (code, resp)
                code, resp = s.data("Subject: f\r\nMessage-ID: %s\r\n\r\n"
                                    "load\r\n" % mid)
                assert code == 250, (code, resp)
                qid = re.search(rb"queued as ([0-9A-Za-z]+)", resp).group(1)
                with self.lock:
                    self.acked.append((qid.decode(), time.monotonic()))
                time.sleep(0.02)
            except Exception as e:  # counted; the test fails on any
                with self.lock:
                    self.errors.append(repr(e))
                s = None
                time.sleep(0.1)
        if s is not None:
            try:
                s.quit()
            except Exception:
                pass

    def start(self):
        for k in range(self.n):
            t = threading.Thread(target=self.client, args=(k,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)

    def count(self):
        with self.lock:
            return len(self.acked)


def main():
    mode = sys.argv[1]
    outage = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    with Fleet("fault-%s" % mode, heartbeat_ms=200).start() as f:
        sink = Upstream(f.dir, "sink").start()
        f.ctl("network", "allow", "127.0.0.0/8")
        f.ctl("hop", "add", "sink", "--host", "127.0.0.1", "--port",
              str(sink.port), "--tls", "none")
        f.ctl("route", "set", "*", "sink")
        port = free_port()
        f.start_node("edge-1", extra="listen = 127.0.0.1:%d relay\n"
                     "hostname = relay.test\n" % port)
        f.wait_node_version("edge-1", f.policy_version(), timeout=20)

        load = Load(port).start()
        wait_until(lambda: load.count() >= 50, timeout=30,
                   what="load to get going")
        # -- the fault
        if mode == "controller":
            f.controllers[0].kill()
        else:
            f.pg.stop("fast")
        t_down = time.monotonic()
        delivered_at_down = len(sink.messages())
        time.sleep(outage)
        acked_down = load.count()
        delivered_down = len(sink.messages())
        # -- recovery
        if mode == "controller":
            f.controllers.clear()
            f.start_controller(wait=True)
        else:
            f.pg.start()
        t_up = time.monotonic()
        time.sleep(2)
        load.stop()
        acked = [q for q, _ in load.acked]
        during = [q for q, t in load.acked if t_down < t < t_up]
        print("acknowledged %d messages, %d during the %.0f s outage; "
              "%d delivered during it" % (len(acked), len(during), outage,
                                         delivered_down - delivered_at_down))
        assert not load.errors, load.errors[:5]
        assert len(during) > 20, "mail stopped during the outage"
        assert delivered_down - delivered_at_down > 20, \
            "delivery stopped during the outage"
        assert f.nodes["edge-1"].alive()

        # Every acknowledged message delivered exactly once.
        wait_until(lambda: len(sink.messages()) >= len(acked), timeout=60,
                   what="every acknowledged message delivered")
        got = [m["data"] for m in sink.messages()]
        mids = [re.search(r"Message-ID: (<[^>]+>)", d).group(1) for d in got]
        assert len(mids) == len(set(mids)), "duplicate deliveries"
        assert len(got) == len(acked), (len(got), len(acked))

        # The record caught up: one received + one delivered per message.
        def counts():
            rows = f.pg.psql("SELECT kind, count(*), count(DISTINCT "
                             "queue_id) FROM events GROUP BY kind")
            return {r.split("|")[0]: (int(r.split("|")[1]),
                                      int(r.split("|")[2]))
                    for r in rows.splitlines() if r}
        want = len(acked)
        c = wait_until(lambda: (lambda c: c.get("received", (0, 0))[0] >=
                                want and c.get("delivered", (0, 0))[0] >=
                                want and c)(counts()), timeout=60,
                       what="events to reach PostgreSQL")
        assert c["received"] == (want, want), (c, want)
        assert c["delivered"] == (want, want), (c, want)
        stored = set(f.pg.psql("SELECT queue_id FROM events WHERE kind = "
                               "'received'").split())
        assert stored == set(acked), (len(stored ^ set(acked)))
        print("ok: %d messages, each received and delivered once in the "
              "record" % want)
    sink.stop()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
