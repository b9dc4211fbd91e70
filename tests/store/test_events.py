"""ReportEvents: a batch is stored idempotently; replaying it (and an
overlapping batch) does not duplicate rows; acked_seq is the batch max."""
from storelib import Env, check, enroll, run


def main():
    with Env("events") as env:
        c = env.controller()
        token = enroll(c, "n1")
        t2 = enroll(c, "n2")
        r = c.node("events", "n1", token, 1, 2, 3)
        check(r["report_events"]["acked_seq"] == 3, "ack: %r" % r)
        r = c.node("events", "n1", token, 1, 2, 3)
        check(r["report_events"]["acked_seq"] == 3, "replay ack: %r" % r)
        r = c.node("events", "n1", token, 3, 4, 5)
        check(r["report_events"]["acked_seq"] == 5, "overlap ack")
        # The same seq from another node is another event.
        c.node("events", "n2", t2, 1, 2)
        check(env.pg.psql("SELECT count(*) FROM events") == "7",
              "5 + 2 events, no duplicates")
        check(env.pg.psql("SELECT string_agg(seq::text, ',' ORDER BY seq) "
                          "FROM events WHERE node_name = 'n1'") ==
              "1,2,3,4,5", "n1 events by seq")
        row = env.pg.psql("SELECT kind, queue_id, code, "
                          "extract(epoch FROM at)::bigint FROM events "
                          "WHERE node_name = 'n1' AND seq = 2")
        check(row == "delivered|Q2|250|1700000000", "row: %r" % row)
        r = c.node("events", "n1", token)
        check(r["report_events"]["acked_seq"] == 0, "empty batch")
        # A batch of 32 in one go.
        r = c.node("events", "n1", token, *range(100, 132))
        check(r["report_events"]["acked_seq"] == 131, "big batch")
        check(env.pg.psql("SELECT count(*) FROM events") == "39", "39 rows")


run(main)
