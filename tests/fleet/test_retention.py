#!/usr/bin/env python3
"""the delivery record partitioned by day, retention by dropping days
(issue 5, migration 003).

  * the day partitions of today and the next two days (UTC) exist, plus a
    default partition; a message's events land in today's;
  * with events_retention_days = 2, a controller (at start, then once a
    minute) drops whole day partitions older than that and deletes old
    rows from the default partition; recent events stay, trace works;
  * a replayed event is still stored once.
"""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import FleetOps, Upstream, wait_until  # noqa: E402


def day(offset):
    d = datetime.datetime.now(datetime.timezone.utc).date() + \
        datetime.timedelta(days=offset)
    return "events_d" + d.strftime("%Y%m%d")


def main():
    with FleetOps("retention", controller_extra="health_interval_ms = 100\n"
                  "events_retention_days = 2\n") as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def partitions(f):
    return set(f.pg.psql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c"
        " ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass"
        ).split())


def run(f, up):
    wait_until(lambda: {day(0), day(1), day(2), "events_default"} <=
               partitions(f), 10, "day partitions made ahead")
    v = f.relay_policy(up.port)
    f.start_relay("n1")
    f.wait_node_version("n1", v)
    qid = f.send("n1", "app@client.test", ["a@example.test"], "keep")
    wait_until(lambda: "delivered" in [e["kind"] for e in
               f.ctl_json("trace", qid)["events"]], 15, "events stored")
    today = int(f.pg.psql("SELECT count(*) FROM %s" % day(0)))
    assert today >= 2, today     # received + delivered

    # Old history: a day partition 10 days back and a very old row that
    # only the default partition can hold.
    f.pg.psql("SELECT sluice_events_partition("
              "(now() AT TIME ZONE 'UTC')::date - 10)")
    for ago, q in (("10 days", "OLD10"), ("400 days", "OLD400"),
                   ("1 day", "RECENT")):
        f.pg.psql("INSERT INTO events (node_id, node_name, seq, at, kind,"
                  " queue_id) SELECT id, name, 1000000 + %d,"
                  " now() - interval '%s', 'received', '%s' FROM nodes"
                  " WHERE name = 'n1'" % (len(q), ago, q))
    assert day(-10) in partitions(f)
    # A controller keeps partitions at start and then once a minute.
    f.controllers[0].stop()
    f.controllers.pop()
    f.start_controller()
    wait_until(lambda: day(-10) not in partitions(f), 15,
               "partition older than the retention dropped")
    wait_until(lambda: f.pg.psql("SELECT count(*) FROM events WHERE"
                                 " queue_id = 'OLD400'") == "0", 10,
               "old rows of the default partition deleted")
    assert f.pg.psql("SELECT count(*) FROM events WHERE queue_id ="
                     " 'RECENT'") == "1"
    assert [e["kind"] for e in f.ctl_json("trace", qid)["events"]][-1] == \
        "delivered"
    log = f.controllers[-1].output()
    assert "dropped 1 day partition older than 2 days" in log, log

    # Idempotency by (node, seq) still holds on the partitioned table:
    # a second node run re-reports nothing new, nothing doubles.
    n = f.pg.psql("SELECT count(*) FROM events WHERE queue_id = '%s'" % qid)
    f.restart_node("n1")
    f.wait_node_version("n1", v)
    assert f.pg.psql("SELECT count(*) FROM events WHERE queue_id = '%s'"
                     % qid) == n
    dup = f.pg.psql("SELECT count(*) FROM (SELECT node_id, seq FROM events"
                    " GROUP BY 1, 2 HAVING count(*) > 1) d")
    assert dup == "0", dup


if __name__ == "__main__":
    main()
