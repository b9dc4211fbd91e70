#!/usr/bin/env python3
"""Provider webhooks into the delivery record (issue 16).

A controller with hooks_listen over HTTPS (test CA), a node relaying to
two test upstreams that answer like SES ("250 Ok <id>") and SendGrid
("250 Ok: queued as <id>") and to a plain one.  Provider hooks for all
five providers are in the policy.  Then, with payloads signed by keys
made in this test:
  * SendGrid (ECDSA), SES through SNS (signature versions 1 and 2, the
    certificate fetched from a loopback HTTPS server standing in for
    sns.<region>.amazonaws.com), Mailgun (HMAC), Postmark and Brevo
    (Basic + secret path) events join their messages: `trace` shows
    provider_delivered / provider_bounced / complaint after delivered;
  * a replayed request stores nothing twice; forged, stale, unsigned,
    a reused Mailgun token, a SigningCertURL off the SNS host, a wrong
    path token are refused with 401, counted in /metrics;
  * an SNS SubscriptionConfirmation visits its SubscribeURL;
  * an event for a message sluice does not know is kept and counted;
  * a hard bounce on a hook with --suppress puts the recipient on the
    suppression list; the node then refuses it at RCPT with 550 5.1.1;
    `suppress del` lets it through again;
  * one request's events are one statement: an event id twice in a
    request, or stored before, is a duplicate; nothing is stored twice;
  * the ingest rate (SendGrid batches of 100) is printed.
"""
import json
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetkit import (FleetOps, Upstream, free_port, http_get,  # noqa: E402
                      parse_prometheus, sample, wait_until)
from hookkit import (Keys, Poster, SnsServer, basic,  # noqa: E402
                     mailgun_signature, sendgrid_headers, sns_sign)

TOPIC = "arn:aws:sns:us-east-1:123456789012:sluice-ses"


def main():
    hport, mport = free_port(), free_port()
    with FleetOps("hooks") as f:
        keys = Keys(f.dir)
        sns = SnsServer(keys)
        f.controller_extra = (
            "hooks_listen = 127.0.0.1:%d\n"
            "hooks_tls_cert = %s\nhooks_tls_key = %s\n"
            "hooks_sns_cert_host = %s\nhooks_sns_ca = %s\n"
            "metrics_listen = 127.0.0.1:%d\n" % (
                hport, keys.path("server.pem"), keys.path("server.key"),
                sns.host, keys.path("ca.pem"), mport))
        f.start()
        ups = {n: Upstream(f.dir, n, *a).start() for n, a in (
            ("ses", ["--provider-reply", "ses"]),
            ("sg", ["--provider-reply", "sendgrid"]),
            ("up", []))}
        try:
            run(f, keys, sns, Poster(hport, keys.path("ca.pem")), ups, mport)
        finally:
            for u in ups.values():
                u.stop()
            sns.stop()
    print("ok")


def trace(f, qid):
    return f.ctl_json("trace", qid)["events"]


def kinds(f, qid):
    return [(e["kind"], e["recipient"]) for e in trace(f, qid)]


def delivered(up, rcpt):
    for m in up.messages():
        if rcpt in m["rcpts"]:
            return m
    return None


def run(f, keys, sns, p, ups, mport):
    f.relay_policy(ups["up"].port)
    for n in ("ses", "sg"):
        f.ctl("hop", "add", n, "--host", "127.0.0.1", "--port",
              str(ups[n].port), "--tls", "none")
        f.ctl("route", "set", "%s.test" % n, n)
    f.ctl("hook", "add", "sendgrid", "sg", "--key", keys.sg_public,
          "--suppress")
    f.ctl("hook", "add", "ses", "ses", "--key", TOPIC, "--suppress")
    f.ctl("hook", "add", "mailgun", "mg", "--secret-stdin",
          input="mg-signing-key\n")
    f.ctl("hook", "add", "postmark", "pm", "--key", "pmuser",
          "--secret-stdin", "--path-token-stdin",
          input="pm-pass\npmTok3n\n")
    f.ctl("hook", "add", "brevo", "bv", "--key", "bvuser", "--secret-stdin",
          "--path-token-stdin", "--engagement", input="bv-pass\nbvTok\n")
    # secrets never come back to sluicectl
    hl = f.ctl_json("hook", "list")["hooks"]
    assert len(hl) == 5, hl
    assert "mg-signing-key" not in json.dumps(hl), hl
    assert {h["name"]: h["has_secret"] for h in hl}["pm"] is True, hl
    export = f.ctl("policy", "export").stdout
    assert "pm-pass" not in export and "pmTok3n" not in export, export
    v = f.policy_version()
    f.start_relay("n1")
    f.wait_node_version("n1", v)

    q = {}
    for key, rcpt in (("sg", "a@sg.test"), ("sgb", "b@sg.test"),
                      ("ses", "c@ses.test"), ("mg", "d@up.test"),
                      ("pm", "e@up.test"), ("bv", "f@up.test")):
        q[key] = f.send("n1", "app@client.test", [rcpt], "hk" + key)
    wait_until(lambda: all(delivered(ups[u], r) for u, r in (
        ("sg", "a@sg.test"), ("sg", "b@sg.test"), ("ses", "c@ses.test"),
        ("up", "d@up.test"), ("up", "e@up.test"), ("up", "f@up.test"))),
        20, "six deliveries")
    # the node recorded the providers' ids from their 250 replies
    def delivered_ev(qid):
        return [e for e in trace(f, qid) if e["kind"] == "delivered"]
    wait_until(lambda: all(delivered_ev(q[k]) for k in q), 20,
               "delivered events in the record")
    sg_a = delivered(ups["sg"], "a@sg.test")["provider_id"]
    sg_b = delivered(ups["sg"], "b@sg.test")["provider_id"]
    ses_c = delivered(ups["ses"], "c@ses.test")["provider_id"]
    assert delivered_ev(q["sg"])[0]["provider_id"] == sg_a
    assert delivered_ev(q["ses"])[0]["provider_id"] == ses_c
    mid = {k: delivered_ev(q[k])[0]["message_id"] for k in q}

    # ---- SendGrid: a batch, joined by the sg_message_id prefix
    now = int(time.time())
    sg_body = json.dumps([
        {"email": "a@sg.test", "timestamp": now, "event": "processed",
         "sg_event_id": "p1", "sg_message_id": sg_a + ".filter0001"},
        {"email": "a@sg.test", "timestamp": now, "event": "delivered",
         "sg_event_id": "ev-a-1", "sg_message_id": sg_a + ".filter0001",
         "response": "250 2.0.0 OK"},
        {"email": "b@sg.test", "timestamp": now, "event": "bounce",
         "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 The email account does not exist",
         "sg_event_id": "ev-b-1", "sg_message_id": sg_b + ".filter0002"},
        {"email": "a@sg.test", "timestamp": now, "event": "open",
         "sg_event_id": "ev-a-open", "sg_message_id": sg_a + ".f"},
    ]).encode()
    code, r = p.post("/hooks/sendgrid/sg", sg_body,
                     sendgrid_headers(keys, sg_body))
    assert code == 200, (code, r)
    # opens are not kept unless the hook has --engagement
    assert r == {"stored": 2, "unknown": 0, "duplicate": 0,
                 "ignored": 2}, r
    assert ("provider_delivered", "a@sg.test") in kinds(f, q["sg"])
    ev = [e for e in trace(f, q["sgb"]) if e["kind"] == "provider_bounced"]
    assert len(ev) == 1 and "5.1.1" in ev[0]["reply"], ev
    assert ev[0]["node"] == "sendgrid/sg", ev
    # the provider retries: nothing twice
    code, r = p.post("/hooks/sendgrid/sg", sg_body,
                     sendgrid_headers(keys, sg_body))
    assert code == 200 and r["duplicate"] == 2 and r["stored"] == 0, r
    assert kinds(f, q["sg"]).count(("provider_delivered", "a@sg.test")) == 1
    # one statement per request: an event id twice in a request and one
    # stored before count as duplicates beside the new one
    mixed = json.dumps([
        {"email": "a@sg.test", "timestamp": now, "event": "deferred",
         "sg_event_id": "ev-a-2", "sg_message_id": sg_a + ".filter0001",
         "response": "451 try later"},
        {"email": "a@sg.test", "timestamp": now, "event": "deferred",
         "sg_event_id": "ev-a-2", "sg_message_id": sg_a + ".filter0001",
         "response": "451 try later"},
        {"email": "a@sg.test", "timestamp": now, "event": "delivered",
         "sg_event_id": "ev-a-1", "sg_message_id": sg_a + ".filter0001",
         "response": "250 2.0.0 OK"}]).encode()
    code, r = p.post("/hooks/sendgrid/sg", mixed,
                     sendgrid_headers(keys, mixed))
    assert code == 200 and r == {"stored": 1, "unknown": 0,
                                 "duplicate": 2, "ignored": 0}, (code, r)
    k = kinds(f, q["sg"])
    assert k.count(("provider_deferred", "a@sg.test")) == 1, k
    assert k.count(("provider_delivered", "a@sg.test")) == 1, k
    assert f.pg.psql("SELECT count(*) FROM provider_events WHERE "
                     "event_id IN ('ev-a-1', 'ev-a-2')") == "2"
    assert f.pg.psql("SELECT count(*) FROM events WHERE node_id = 0 AND "
                     "queue_id = '%s'" % q["sg"]) == "2"
    # forged (another key), tampered, stale, unsigned
    code, _ = p.post("/hooks/sendgrid/sg", sg_body,
                     sendgrid_headers(keys, sg_body, key="sg-other.key"))
    assert code == 401, code
    h = sendgrid_headers(keys, sg_body)
    code, _ = p.post("/hooks/sendgrid/sg", sg_body.replace(b"b@sg", b"x@sg"),
                     h)
    assert code == 401, code
    code, _ = p.post("/hooks/sendgrid/sg", sg_body,
                     sendgrid_headers(keys, sg_body, ts=now - 3600))
    assert code == 401, code
    code, _ = p.post("/hooks/sendgrid/sg", sg_body)
    assert code == 401, code
    code, _ = p.post("/hooks/sendgrid/nope", sg_body,
                     sendgrid_headers(keys, sg_body))
    assert code == 404, code
    # an event for a message sluice never sent: kept and counted
    unk = json.dumps([{"email": "z@sg.test", "timestamp": now,
                       "event": "delivered", "sg_event_id": "ev-unknown",
                       "sg_message_id": "NOSUCHID.filter"}]).encode()
    code, r = p.post("/hooks/sendgrid/sg", unk, sendgrid_headers(keys, unk))
    assert code == 200 and r["unknown"] == 1, r
    assert f.pg.psql("SELECT count(*) FROM provider_events WHERE "
                     "queue_id = '' AND event_id = 'ev-unknown'") == "1"

    # a reply longer than a stored field, cut inside a two-octet character:
    # stored (the cut octet escaped), not a request PostgreSQL refuses and
    # the provider retries for ever
    long_reason = "\u00e9" * 2000
    cut = json.dumps([{"email": "b@sg.test", "timestamp": now,
                       "event": "dropped", "status": "5.1.1",
                       "reason": long_reason, "sg_event_id": "ev-b-long",
                       "sg_message_id": sg_b + ".filter0002"}]).encode()
    code, r = p.post("/hooks/sendgrid/sg", cut, sendgrid_headers(keys, cut))
    assert code == 200 and r["stored"] == 1, (code, r)
    assert f.pg.psql("SELECT count(*) FROM provider_events WHERE "
                     "event_id = 'ev-b-long'") == "1"
    # the cut octet is escaped the way every stored text is (\xHH)
    tail = f.pg.psql("SELECT right(reply, 5) FROM events WHERE kind = "
                     "'provider_dropped' AND recipient = 'b@sg.test'")
    assert tail == "\u00e9\\xC3", tail

    # ---- SES through SNS: the cert from the loopback "SNS" host
    sub = sns_sign(keys, {
        "Type": "SubscriptionConfirmation", "MessageId": "sub-1",
        "Token": "2336412f37fb687f5d51e6e2425", "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic",
        "SubscribeURL": "https://%s/?Action=ConfirmSubscription&Token=x"
                        % sns.host,
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                   time.gmtime()),
        "SigningCertURL": "https://%s/SimpleNotificationService-1.pem"
                          % sns.host})
    code, r = p.post("/hooks/ses/ses", sub)
    assert code == 200 and r == {"subscribed": True}, (code, r)
    assert any("ConfirmSubscription" in h for h in sns.hits), sns.hits

    def ses_note(msg_id, message, version="1", **kw):
        m = {"Type": "Notification", "MessageId": msg_id,
             "TopicArn": TOPIC, "Message": json.dumps(message),
             "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                        time.gmtime()),
             "SigningCertURL": "https://%s/SimpleNotificationService-1.pem"
                               % sns.host}
        m.update(kw)
        return sns_sign(keys, m, version)
    mail = {"messageId": ses_c, "timestamp": "2026-12-07T02:00:00.000Z",
            "destination": ["c@ses.test"]}
    code, r = p.post("/hooks/ses/ses", ses_note("n-1", {
        "notificationType": "Delivery", "mail": mail,
        "delivery": {"recipients": ["c@ses.test"],
                     "smtpResponse": "250 ok dirdel"}}, "2"))
    assert code == 200 and r["stored"] == 1, (code, r)
    bounce = ses_note("n-2", {
        "notificationType": "Bounce", "mail": mail,
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{
                       "emailAddress": "c@ses.test",
                       "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}})
    code, r = p.post("/hooks/ses/ses", bounce)
    assert code == 200 and r["stored"] == 1, (code, r)
    k = kinds(f, q["ses"])
    assert ("provider_delivered", "c@ses.test") in k, k
    assert ("provider_bounced", "c@ses.test") in k, k
    # tampered message, a foreign certificate URL, a foreign topic, a
    # signature by another key, an old Timestamp
    bad = dict(bounce, Message=bounce["Message"].replace("c@ses", "x@ses"))
    assert p.post("/hooks/ses/ses", bad)[0] == 401
    evil = ses_note("n-3", {"notificationType": "Bounce", "mail": mail},
                    SigningCertURL="https://evil.test/cert.pem")
    assert p.post("/hooks/ses/ses", evil)[0] == 401
    other = ses_note("n-4", {"notificationType": "Bounce", "mail": mail},
                     TopicArn="arn:aws:sns:us-east-1:1:other")
    assert p.post("/hooks/ses/ses", other)[0] == 401
    m = ses_note("n-5", {"notificationType": "Bounce", "mail": mail})
    sns_sign(keys, m, "2", key="sns-other.key")
    assert p.post("/hooks/ses/ses", m)[0] == 401
    old = ses_note("n-6", {"notificationType": "Bounce", "mail": mail},
                   Timestamp="2020-01-01T00:00:00.000Z")
    assert p.post("/hooks/ses/ses", old)[0] == 401
    assert sum(h.endswith(".pem") for h in sns.hits) == 1, sns.hits

    # ---- Mailgun: joined by Message-ID; a token is good once
    def mg(event_id, token=None, ts=None, **data):
        d = {"id": event_id, "event": "delivered", "recipient": "d@up.test",
             "timestamp": time.time(),
             "message": {"headers": {"message-id": mid["mg"].strip("<>")}}}
        d.update(data)
        return {"signature": mailgun_signature("mg-signing-key", ts, token),
                "event-data": d}
    body = mg("mg-ev-1")
    code, r = p.post("/hooks/mailgun/mg", body)
    assert code == 200 and r["stored"] == 1, (code, r)
    assert ("provider_delivered", "d@up.test") in kinds(f, q["mg"])
    assert p.post("/hooks/mailgun/mg", body)[0] == 401      # token reuse
    stale = mg("mg-ev-2", ts=int(time.time()) - 3600)
    assert p.post("/hooks/mailgun/mg", stale)[0] == 401
    forged = mg("mg-ev-3")
    forged["signature"]["signature"] = "0" * 64
    assert p.post("/hooks/mailgun/mg", forged)[0] == 401

    # ---- Postmark: Basic + secret path; joined by sluice's queue id
    pm = {"RecordType": "Bounce", "ID": 4323372036854775807,
          "Type": "HardBounce", "MessageID": "883953f4-6105-42a2-a16a",
          "Email": "e@up.test", "Description": "The server was unable to "
          "deliver your message", "Details": "smtp;550 5.1.1 no mailbox",
          "BouncedAt": "2026-12-07T02:01:00Z",
          "Metadata": {"sluice_qid": q["pm"]}}
    code, r = p.post("/hooks/postmark/pm/pmTok3n", pm,
                     basic("pmuser", "pm-pass"))
    assert code == 200 and r["stored"] == 1, (code, r)
    assert ("provider_bounced", "e@up.test") in kinds(f, q["pm"])
    assert p.post("/hooks/postmark/pm/pmTok3n", pm,
                  basic("pmuser", "wrong"))[0] == 401
    assert p.post("/hooks/postmark/pm/wrongtoken", pm,
                  basic("pmuser", "pm-pass"))[0] == 401
    assert p.post("/hooks/postmark/pm", pm,
                  basic("pmuser", "pm-pass"))[0] == 401
    assert p.post("/hooks/postmark/pm/pmTok3n", pm)[0] == 401

    # ---- Brevo: Basic + secret path; joined by Message-ID; opens kept
    bv = [{"event": "spam", "email": "f@up.test", "id": 1,
           "message-id": mid["bv"], "ts_event": int(time.time())},
          {"event": "opened", "email": "f@up.test", "id": 1,
           "message-id": mid["bv"], "ts_event": int(time.time())}]
    code, r = p.post("/hooks/brevo/bv/bvTok", bv, basic("bvuser", "bv-pass"))
    assert code == 200 and r["stored"] == 2, (code, r)
    k = kinds(f, q["bv"])
    assert ("complaint", "f@up.test") in k and ("opened", "f@up.test") in k, k

    # ---- log --status, /metrics
    lg = f.ctl_json("log", "--status", "provider_bounced")["events"]
    assert sorted(e["recipient"] for e in lg) == [
        "b@sg.test", "c@ses.test", "e@up.test"], lg
    s = parse_prometheus(http_get(mport))
    assert sample(s, "sluice_hooks_requests_total", provider="sendgrid",
                  outcome="forged") == 2, s
    assert sample(s, "sluice_hooks_requests_total", provider="sendgrid",
                  outcome="stale") == 1
    assert sample(s, "sluice_hooks_requests_total", provider="sendgrid",
                  outcome="unsigned") == 1
    assert sample(s, "sluice_hooks_requests_total", provider="mailgun",
                  outcome="replay") == 1
    assert sample(s, "sluice_hooks_requests_total", provider="ses",
                  outcome="subscribed") == 1
    assert sample(s, "sluice_hooks_events_total", provider="sendgrid",
                  kind="provider_bounced") == 1
    assert sample(s, "sluice_hooks_unknown_events_total",
                  provider="sendgrid") == 1
    assert sample(s, "sluice_hooks_duplicate_events_total",
                  provider="sendgrid") == 4
    log = f.controllers[0].output()
    assert "hooks: refused" in log and "outcome=forged" in log, log[-3000:]

    # ---- suppression: b@sg.test and c@ses.test bounced hard on hooks
    # with --suppress; e@up.test (pm hook without it) is not listed
    sup = wait_until(lambda: (lambda s: s if len(s) >= 2 else None)(
        f.ctl_json("suppress", "list")["suppressions"]), 10, "suppressions")
    assert sorted(x["address"] for x in sup) == ["b@sg.test", "c@ses.test"]
    assert all(x["reason"] == "bounce" for x in sup), sup
    f.ctl("suppress", "add", "Angry@Up.Test", "--reason", "complaint")
    v = f.policy_version()
    f.wait_node_version("n1", v)
    s = smtplib.SMTP("127.0.0.1", f.smtp_ports["n1"], timeout=30)
    s.ehlo("client.test")
    s.mail("app@client.test")
    code, msg = s.rcpt("C@ses.test")
    assert code == 550 and b"5.1.1" in msg and b"suppressed" in msg, msg
    code, msg = s.rcpt("angry@up.test")
    assert code == 550 and b"5.7.1" in msg, msg
    code, msg = s.rcpt("ok@up.test")
    assert code == 250, msg
    s.quit()
    f.ctl("suppress", "del", "c@ses.test")
    f.wait_node_version("n1", f.policy_version())
    f.send("n1", "app@client.test", ["c@ses.test"], "again")
    # a policy file apply keeps hooks and suppressions
    path = os.path.join(f.dir, "p.yaml")
    with open(path, "w") as fh:
        fh.write(f.ctl("policy", "export").stdout)
    f.ctl("policy", "apply", "-f", path)
    assert len(f.ctl_json("hook", "list")["hooks"]) == 5
    assert len(f.ctl_json("suppress", "list")["suppressions"]) == 2

    # ---- ingest rate: SendGrid batches of 100 events
    n_req, per = 20, 100
    bodies = []
    for i in range(n_req):
        b = json.dumps([{"email": "r%d@sg.test" % j, "timestamp": now,
                         "event": "delivered",
                         "sg_event_id": "rate-%d-%d" % (i, j),
                         "sg_message_id": "%s.f" % sg_a}
                        for j in range(per)]).encode()
        bodies.append((b, sendgrid_headers(keys, b)))
    t0 = time.monotonic()
    for b, h in bodies:
        code, r = p.post("/hooks/sendgrid/sg", b, h)
        assert code == 200 and r["stored"] == per, r
    dt = time.monotonic() - t0
    print("ingest: %d events in %d requests in %.2f s: %.0f events/s" % (
        n_req * per, n_req, dt, n_req * per / dt))


if __name__ == "__main__":
    main()
