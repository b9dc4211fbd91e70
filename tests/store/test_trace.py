"""Admin trace and log over the delivery record: trace by queue id or
Message-ID (with or without <>) returns every event of the message across
nodes, oldest first; log filters by sender/recipient/status/node/since and
returns the newest N oldest first."""
from storelib import Env, check, enroll, error_code, run


def kinds(r):
    return [(e["node"], e["event"]["queue_id"], e["event"]["kind"])
            for e in r["events"]["events"]]


def main():
    with Env("trace") as env:
        c = env.controller()
        t1 = enroll(c, "n1")
        t2 = enroll(c, "n2")
        c.node("events", "n1", t1, "1:AAA:received:<m1@example.com>",
               "2:AAA:deferred::b@example.net",
               "3:BBB:received:<m2@example.com>",
               "4:AAA:delivered::b@example.net")
        c.node("events", "n2", t2, "1:CCC:received:<m1@example.com>",
               "2:CCC:bounced::c@example.org")

        r = c.admin("trace", "AAA")
        check(kinds(r) == [("n1", "AAA", "received"), ("n1", "AAA",
                           "deferred"), ("n1", "AAA", "delivered")],
              "trace by queue id: %r" % r)
        check(r["events"]["events"][1]["event"]["recipient"] ==
              "b@example.net", "recipient carried")
        for mid in ("<m1@example.com>", "m1@example.com"):
            r = c.admin("trace", mid)
            check(sorted(kinds(r)) == sorted(
                [("n1", "AAA", "received"), ("n1", "AAA", "deferred"),
                 ("n1", "AAA", "delivered"), ("n2", "CCC", "received"),
                 ("n2", "CCC", "bounced")]), "trace by Message-ID %s: %r"
                  % (mid, r))
        check(c.admin("trace", "nothing")["events"] == {"events": []},
              "unknown id: empty")
        check(error_code(c.admin("trace", "")) == "bad_request", "empty id")

        r = c.admin("log")
        check(len(r["events"]["events"]) == 6, "all: %r" % r)
        r = c.admin("log", "status=received")
        check([k[2] for k in kinds(r)] == ["received"] * 3, "by status")
        r = c.admin("log", "node=n2")
        check([k[0] for k in kinds(r)] == ["n2", "n2"], "by node")
        r = c.admin("log", "recipient=EXAMPLE.NET")
        check([k[2] for k in kinds(r)] == ["deferred", "delivered"],
              "by recipient, case-insensitive: %r" % r)
        # a substring, its LIKE characters taken literally (the trigram
        # index's LIKE, migration 015)
        r = c.admin("log", "recipient=b@example")
        check([k[2] for k in kinds(r)] == ["deferred", "delivered"],
              "by recipient substring: %r" % r)
        for lit in ("b_example", "%", "b@%.net", "\\"):
            check(c.admin("log", "recipient=" + lit)["events"] ==
                  {"events": []}, "recipient %r matched literally" % lit)
        r = c.admin("log", "limit=2")
        check(len(r["events"]["events"]) == 2, "limit")
        # Events are from 2023 (at_ms 1.7e12): "since 1h" finds none.
        check(c.admin("log", "since=3600")["events"] == {"events": []},
              "since")
        check(len(c.admin("log", "since=999999999999999")["events"]
                  ["events"]) == 6, "huge since is clamped")
        check(error_code(c.admin("log", "since=-5")) == "bad_request",
              "negative since")


run(main)
