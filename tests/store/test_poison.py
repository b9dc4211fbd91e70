"""A delivery record nothing a node sends can stop (issue 11).

Text that is not UTF-8 (a Message-ID with the octets ff fe c0, an address,
an upstream reply) is stored with \\xHH escapes and the raw event kept
beside it; trace finds it by its escaped form.  An event PostgreSQL still
refuses (a timestamp out of range) is quarantined with the reason and an
alert, and the rest of its batch - and every later batch - is stored and
acknowledged.  Before this, the first case made the controller refuse the
batch for good ("invalid byte sequence for encoding UTF8")."""
from storelib import Env, check, enroll, run, wait_until


def main():
    with Env("poison") as env:
        c = env.controller("health_interval_ms = 100\n")
        tok = enroll(c, "n1")
        # A heartbeat makes n1 a known node (alerts are about known ones).
        c.node("heartbeat", "n1", tok, 0)
        r = c.node("events", "n1", tok,
                   "1:AAA:received:<\\xff\\xfe\\xc0@bad.test>",
                   "2:AAA:deferred::b\\xe9@example.net",
                   "3:AAA:delivered::ok@example.net")
        check(r.get("report_events", {}).get("acked_seq") == 3,
              "non-UTF-8 batch acknowledged: %r" % r)
        mid = env.pg.psql("SELECT message_id FROM events WHERE seq = 1")
        check(mid == "<\\xFF\\xFE\\xC0@bad.test>", "escaped: %r" % mid)
        raw = env.pg.psql("SELECT position('\\xfffec0'::bytea IN raw) > 0"
                          " FROM events WHERE seq = 1")
        check(raw == "t", "raw bytes kept: %r" % raw)
        check(env.pg.psql("SELECT count(*) FROM events WHERE raw IS NULL")
              == "1", "raw only where needed")
        r = c.admin("trace", "<\\xFF\\xFE\\xC0@bad.test>")
        got = [e["event"]["kind"] for e in r["events"]["events"]]
        check(got == ["received", "deferred", "delivered"],
              "trace by the escaped Message-ID: %r" % r)

        # seq 5's timestamp is out of PostgreSQL's range: quarantined,
        # 4 and 6 stored, the batch acknowledged.
        r = c.node("events", "n1", tok, "4:BBB:received:<m4@x>",
                   "5:BBB:deferred:::9000000000000000000",
                   "6:BBB:delivered::r@x")
        check(r.get("report_events", {}).get("acked_seq") == 6,
              "poisoned batch acknowledged: %r" % r)
        check(env.pg.psql("SELECT string_agg(seq::text, ',' ORDER BY seq)"
                          " FROM events") == "1,2,3,4,6", "4 and 6 stored")
        q = env.pg.psql("SELECT seq, reason, length(raw) > 0 FROM "
                        "events_quarantine")
        check(q.startswith("5|") and "range" in q and q.endswith("|t"),
              "quarantined with its reason: %r" % q)
        check("events: quarantined node=n1 seq=5" in c.log(), "logged")
        # Later events go on as usual.
        r = c.node("events", "n1", tok, "7:CCC:received:<m7@x>")
        check(r.get("report_events", {}).get("acked_seq") == 7, "later")
        wait_until(lambda: "alert: raised kind=events_quarantined "
                   "subject=n1" in c.log(), 10, "quarantine alert")
        # A replay of the poisoned batch: no duplicate anywhere.
        c.node("events", "n1", tok, "4:BBB:received:<m4@x>",
               "5:BBB:deferred:::9000000000000000000")
        check(env.pg.psql("SELECT count(*) FROM events_quarantine") == "1",
              "replay not quarantined twice")
        check(env.pg.psql("SELECT count(*) FROM events") == "6", "6 rows")


run(main)
