#!/usr/bin/env python3
"""fleet_provider_rejoin: provider events that reach the controller before
their message's record are joined later (issue 16).

Two controllers on one PostgreSQL: c0 serves the hooks listener (a re-join
pass every second, hooks_rejoin_s = 1) and the admin endpoint; the node
reports its events to c1 only.  c1 is stopped, so the node's events wait
in its journal while it relays two messages to a SendGrid-like upstream.
Events for them are posted to c0 then - one naming the provider id of the
250 reply, one naming only sluice's queue id (the metadata header) - and
are unknown (kept, in no trace).  When c1 comes back the node's journal
drains, and the re-join pass puts both events under their messages in
`trace`, counted in sluice_hooks_rejoined_events_total, once.  An event
for a message sluice never sent stays unknown, checked.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import (FleetOps, Upstream, free_port, http_get,  # noqa: E402
                      parse_prometheus, sample, wait_until)
from fleet import Proc, binary  # noqa: E402
from hookkit import Keys, Poster, sendgrid_headers  # noqa: E402


def main():
    hport, mport = free_port(), free_port()
    with FleetOps("rejoin") as f:
        keys = Keys(f.dir)
        f.controller_extra = (
            "hooks_listen = 127.0.0.1:%d\n"
            "hooks_tls_cert = %s\nhooks_tls_key = %s\n"
            "hooks_rejoin_s = 1\n"
            "metrics_listen = 127.0.0.1:%d\n" % (
                hport, keys.path("server.pem"), keys.path("server.key"),
                mport))
        f.start()
        # c1: the node's controller, no hooks listener
        f.controller_extra = ""
        c1_url = "tcp://127.0.0.1:%d" % free_port()
        c1 = f.start_controller(
            node_url=c1_url, admin_url="ipc://%s/admin1.sock" % f.dir,
            wait=False)
        up = Upstream(f.dir, "sg", "--provider-reply", "sendgrid").start()
        try:
            run(f, keys, Poster(hport, keys.path("ca.pem")), up, c1, c1_url,
                mport)
        finally:
            up.stop()
    print("ok")


def run(f, keys, p, up, c1, c1_url, mport):
    f.relay_policy(up.port)
    f.ctl("hook", "add", "sendgrid", "sg", "--key", keys.sg_public)
    v = f.policy_version()
    f.start_relay("n1", controllers=[c1_url])
    f.wait_node_version("n1", v, timeout=20)

    def trace(qid):
        return f.ctl_json("trace", qid)["events"]

    def kinds(qid):
        return [(e["kind"], e["node"]) for e in trace(qid)]

    # the node's controller goes away: its events wait in the journal
    c1.stop()
    qa = f.send("n1", "app@client.test", ["a@sg.test"], "early-a")
    qb = f.send("n1", "app@client.test", ["b@sg.test"], "early-b")

    def at_upstream(rcpt):
        return next((m for m in up.messages() if rcpt in m["rcpts"]), None)
    pid_a = wait_until(lambda: at_upstream("a@sg.test"), 20,
                       "a@sg.test relayed")["provider_id"]
    wait_until(lambda: at_upstream("b@sg.test"), 20, "b@sg.test relayed")
    assert pid_a, up.messages()
    assert trace(qa) == [] and trace(qb) == []

    now = int(time.time())
    body = json.dumps([
        # joined by the provider id of the 250 reply
        {"email": "a@sg.test", "timestamp": now, "event": "delivered",
         "sg_event_id": "early-1", "sg_message_id": pid_a + ".filter0",
         "response": "250 2.0.0 OK"},
        # joined by sluice's queue id only
        {"email": "b@sg.test", "timestamp": now, "event": "bounce",
         "type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 no",
         "sg_event_id": "early-2", "sg_message_id": "UNRELATED.filter0",
         "sluice_queue_id": qb},
        # a message sluice never sent
        {"email": "z@sg.test", "timestamp": now, "event": "delivered",
         "sg_event_id": "never-1", "sg_message_id": "NOSUCH.filter0"}
    ]).encode()
    code, r = p.post("/hooks/sendgrid/sg", body, sendgrid_headers(keys, body))
    assert code == 200 and r == {"stored": 0, "unknown": 3, "duplicate": 0,
                                 "ignored": 0}, (code, r)
    assert f.pg.psql("SELECT count(*) FROM provider_events"
                     " WHERE queue_id = ''") == "3"
    # the passes run meanwhile and find nothing yet
    wait_until(lambda: f.pg.psql(
        "SELECT count(*) FROM provider_events WHERE checked_at IS NOT NULL")
        == "3", 20, "a re-join pass over the unknown events")
    assert trace(qa) == [] and trace(qb) == []

    # the node's controller is back: the journal drains, the pass joins
    c1b = Proc([binary("sluice-controller"), "--config",
                os.path.join(f.dir, "controller1.conf")],
               os.path.join(f.dir, "controller1b.log")).start()
    f.controllers.append(c1b)
    wait_until(lambda: ("provider_delivered", "sendgrid/sg") in kinds(qa),
               30, "the early event under message a")
    wait_until(lambda: ("provider_bounced", "sendgrid/sg") in kinds(qb),
               30, "the early event under message b")
    ka = kinds(qa)
    assert ("received", "n1") in ka and ("delivered", "n1") in ka, ka
    assert ka.count(("provider_delivered", "sendgrid/sg")) == 1, ka
    ev = [e for e in trace(qb) if e["kind"] == "provider_bounced"][0]
    assert ev["sender"] == "app@client.test" and "5.1.1" in ev["reply"], ev
    assert f.pg.psql("SELECT queue_id FROM provider_events"
                     " WHERE event_id = 'early-2'") == qb
    s = parse_prometheus(http_get(mport))
    assert sample(s, "sluice_hooks_rejoined_events_total") == 2, s
    assert "hooks: joined 2 provider events" in f.controllers[0].output() or \
        "hooks: joined 1 provider events" in f.controllers[0].output()
    # the one sluice never sent stays unknown, and later passes do not
    # join anything twice
    first = f.pg.psql("SELECT checked_at FROM provider_events"
                      " WHERE event_id = 'never-1'")
    wait_until(lambda: f.pg.psql(
        "SELECT checked_at FROM provider_events WHERE event_id = 'never-1'")
        != first, 20, "another pass")
    assert f.pg.psql("SELECT count(*) FROM provider_events"
                     " WHERE queue_id = ''") == "1"
    assert kinds(qa).count(("provider_delivered", "sendgrid/sg")) == 1
    assert sample(parse_prometheus(http_get(mport)),
                  "sluice_hooks_rejoined_events_total") == 2
    # replayed after the join: a duplicate, nothing new
    code, r = p.post("/hooks/sendgrid/sg", body, sendgrid_headers(keys, body))
    assert code == 200 and r["duplicate"] == 3, (code, r)
    assert kinds(qb).count(("provider_bounced", "sendgrid/sg")) == 1


if __name__ == "__main__":
    main()
