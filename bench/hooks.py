#!/usr/bin/env python3
"""hooks.py - provider webhook ingest rate (issue 16): signed SendGrid
batches posted over HTTPS to one controller's hooks listener, stored in
PostgreSQL (provider_events and events), joined to their messages.

    bench/hooks.py [BUILD_DIR=build] [REQUESTS=50] [PER=100,500] [CONC=1,4]

A throwaway PostgreSQL (the test harness's: fsync off) and one controller
(tests/harness/fleet.py).  Before the posts, one `delivered` event per
posted event is put into the record with SQL (provider ids the events
name), so every event joins a message as in production.  For each batch
size PER and each number of concurrent posters CONC: REQUESTS requests of
PER events, timed from the first post to the last answer; printed as
events/s.  Then every request is posted again: all duplicates, nothing
stored twice (rows counted).  Everything started is stopped by PID; only
loopback is used.
"""
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
os.environ["SLUICE_BUILD"] = BUILD
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
PERS = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3
                         else "100,500").split(",")]
CONCS = [int(x) for x in (sys.argv[4] if len(sys.argv) > 4
                          else "1,4").split(",")]
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fleet"))

from fleetkit import FleetOps, free_port  # noqa: E402
from hookkit import Keys, Poster, sendgrid_headers  # noqa: E402


def main():
    hport = free_port()
    with FleetOps("hooksbench") as f:
        keys = Keys(f.dir)
        f.controller_extra = (
            "hooks_listen = 127.0.0.1:%d\n"
            "hooks_tls_cert = %s\nhooks_tls_key = %s\n" % (
                hport, keys.path("server.pem"), keys.path("server.key")))
        f.start()
        f.ctl("hook", "add", "sendgrid", "sg", "--key", keys.sg_public)
        total = REQUESTS * sum(PERS) * len(CONCS)
        # one delivered event per posted event: provider id "P<n>"
        f.pg.psql(
            "INSERT INTO events (node_id, node_name, seq, at, kind,"
            " queue_id, recipient, provider_id)"
            " SELECT 1, 'n1', g, now(), 'delivered', 'Q' || g,"
            " 'r' || g || '@sg.test', 'P' || g"
            " FROM generate_series(1, %d) g" % total)
        # as autovacuum would after a bulk load: the planner knows the
        # record is large (index lookups, not scans)
        f.pg.psql("ANALYZE events")
        p = Poster(hport, keys.path("ca.pem"))
        n = 0
        runs = []
        for per in PERS:
            for conc in CONCS:
                reqs = []
                now = int(time.time())
                for _ in range(REQUESTS):
                    evs = []
                    for _ in range(per):
                        n += 1
                        evs.append({"email": "r%d@sg.test" % n,
                                    "timestamp": now, "event": "delivered",
                                    "sg_event_id": "bench-%d" % n,
                                    "sg_message_id": "P%d.filter0" % n})
                    body = json.dumps(evs).encode()
                    reqs.append((body, sendgrid_headers(keys, body)))
                rate = post_all(p, reqs, conc, "stored", per)
                runs.append((per, conc, reqs))
                print("hooks: PER=%d CONC=%d: %d events in %d requests: "
                      "%.0f events/s" % (per, conc, per * REQUESTS,
                                         REQUESTS, rate), flush=True)
        rows = f.pg.psql("SELECT count(*) FROM provider_events")
        unknown = f.pg.psql("SELECT count(*) FROM provider_events"
                            " WHERE queue_id = ''")
        assert int(rows) == n and int(unknown) == 0, (rows, unknown, n)
        # replayed: every event a duplicate, no row added
        for per, conc, reqs in runs[:1]:
            again = [(b, sendgrid_headers(keys, b)) for b, _ in reqs]
            rate = post_all(p, again, conc, "duplicate", per)
            print("hooks: replay PER=%d CONC=%d: %.0f events/s, all "
                  "duplicates" % (per, conc, rate), flush=True)
        assert f.pg.psql("SELECT count(*) FROM provider_events") == rows
        assert f.pg.psql("SELECT count(*) FROM events WHERE node_id = 0") \
            == rows


def post_all(p, reqs, conc, field, per):
    errors = []
    it = iter(list(reqs))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                r = next(it, None)
            if r is None:
                return
            code, out = p.post("/hooks/sendgrid/sg", r[0], r[1])
            if code != 200 or out.get(field) != per:
                errors.append((code, out))
                return

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    assert not errors, errors[:3]
    return len(reqs) * per / dt


if __name__ == "__main__":
    main()
