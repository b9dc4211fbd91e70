#!/usr/bin/env python3
"""webhooks.py - outbound event webhook throughput: events/s from the
PostgreSQL outbox to a loopback HTTPS receiver (tests/store/hookrecv.py,
which checks every signature and dedups by event id).

    bench/webhooks.py [BUILD_DIR=build] [EVENTS=20000] [BATCH=100,500]

For each batch size: a throwaway PostgreSQL and one controller with one
endpoint; EVENTS events are stored (one INSERT ... generate_series, so the
outbox trigger enqueues them as ReportEvents would) while the receiver is
down, then the receiver comes up and the time until the last event is
acknowledged (outbox empty) is measured.  Everything started is stopped by
PID; only loopback is used.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "store"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "hardening"))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
os.environ["SLUICE_BUILD"] = BUILD
EVENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
BATCHES = [int(b) for b in (sys.argv[3] if len(sys.argv) > 3
                            else "100,500").split(",")]

from storelib import Env, wait_until  # noqa: E402
from pki import Pki  # noqa: E402
from hookrecv import Receiver  # noqa: E402


def run(batch):
    with Env("whbench") as env:
        pki = Pki(os.path.join(env.dir, "pki"))
        ca = pki.ca("ca")
        cert = pki.leaf("recv", "ca", "127.0.0.1", ips=["127.0.0.1"])
        secret = os.path.join(env.dir, "secret")
        with open(secret, "w") as f:
            f.write("bench-secret-0123456789\n")
        rcv = Receiver(cert, {"/e": b"bench-secret-0123456789"}).start()
        rcv.stop()
        c = env.controller(
            "event_webhook_retry_max_s = 1\n"
            "event_webhook = e url=%s secret_file=%s ca=%s batch=%d\n"
            % (rcv.url("/e"), secret, ca, batch))
        wait_until(lambda: env.pg.psql(
            "SELECT count(*) FROM webhook_endpoints") == "1", 10,
            "endpoint registered")
        env.pg.psql(
            "INSERT INTO events (node_id, node_name, seq, at, kind,"
            " queue_id, message_id, sender, recipient, reply, code)"
            " SELECT 1, 'n1', g, now(), 'delivered', 'Q' || g,"
            " '<m' || g || '@example.com>', 'app@example.com',"
            " 'rcpt' || g || '@example.net', '250 2.0.0 Ok: queued', 250"
            " FROM generate_series(1, %d) g" % EVENTS)
        rcv.start()
        t0 = time.monotonic()
        wait_until(lambda: len(rcv.ids("/e")) == EVENTS, 600, "delivered",
                   interval=0.02)
        dt = time.monotonic() - t0
        wait_until(lambda: env.pg.psql(
            "SELECT count(*) FROM webhook_outbox") == "0", 30, "outbox empty")
        rcv.stop()
        if os.environ.get("WHBENCH_LOG"):
            print(c.log())
        print("batch=%d events=%d seconds=%.2f events/s=%.0f posts=%d "
              "repeats=%d" % (batch, EVENTS, dt, EVENTS / dt,
                              rcv.posts["/e"], rcv.dups["/e"]))
        del c


for b in BATCHES:
    run(b)
