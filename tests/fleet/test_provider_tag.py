#!/usr/bin/env python3
"""fleet_provider_tag: sluice's queue id in the provider's metadata header
(issue 16).  A controller (hooks over HTTPS), one node, DKIM signing for
example.com, and one test upstream per hop:

  sg   sendgrid hook with --tag     X-SMTPAPI unique_args
  ses  ses hook with --tag, the upstream offers no 8BITMIME
                                    X-SES-MESSAGE-TAGS (8-bit data is
                                    converted to 7 bit on the way)
  mg   mailgun hook with --tag      X-Mailgun-Variables
  pm   postmark hook with --tag     X-PM-Metadata-sluice-queue-id
  off  sendgrid hook without --tag  nothing (off unless asked)
  up   no hook                      nothing

Every message shape of tests/dkim/dkimkit.py goes through sg: each arrives
with the header as its first line, the node's DKIM signatures still
verify with dkimpy (the header is not signed), dot-stuffed lines come
through whole.  The spool never holds the header: the same message to two
hops carries it only on the tagged one.  Then provider events that name
the queue id (SendGrid unique_args, SES tags, Mailgun user-variables,
Postmark Metadata) join their message, and the queue id wins over a
250-reply id that names another message.
"""
import json
import os
import re
import smtplib
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "dkim"))
import dkimkit  # noqa: E402
from fleetkit import FleetOps, Upstream, free_port, wait_until  # noqa: E402
from hookkit import (Keys, Poster, SnsServer, basic,  # noqa: E402
                     mailgun_signature, sendgrid_headers, sns_sign)

TOPIC = "arn:aws:sns:us-east-1:123456789012:sluice-ses"
HEADERS = {
    "sg": 'X-SMTPAPI: {"unique_args":{"sluice_queue_id":"%s"}}',
    "ses": "X-SES-MESSAGE-TAGS: sluice_queue_id=%s",
    "mg": 'X-Mailgun-Variables: {"sluice_queue_id":"%s"}',
    "pm": "X-PM-Metadata-sluice-queue-id: %s",
}


def send_raw(f, rcpts, data):
    s = smtplib.SMTP("127.0.0.1", f.smtp_ports["n1"], timeout=30)
    try:
        s.ehlo("client.test")
        code, resp = s.mail("alice@example.com")
        assert code == 250, (code, resp)
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250, (code, resp)
        code, resp = s.data(data)
        assert code == 250, (code, resp)
        s.quit()
    finally:
        s.close()
    return re.search(rb"queued as ([0-9A-Za-z]+)", resp).group(1).decode()


def arrived(up, subject):
    for m in up.messages():
        if ("Subject: %s\r\n" % subject) in m["data"]:
            return m
    return None


def main():
    hport = free_port()
    with FleetOps("ptag") as f:
        keys = Keys(f.dir)
        sns = SnsServer(keys)
        f.controller_extra = (
            "hooks_listen = 127.0.0.1:%d\n"
            "hooks_tls_cert = %s\nhooks_tls_key = %s\n"
            "hooks_sns_cert_host = %s\nhooks_sns_ca = %s\n" % (
                hport, keys.path("server.pem"), keys.path("server.key"),
                sns.host, keys.path("ca.pem")))
        f.start()
        ups = {n: Upstream(f.dir, n, *a).start() for n, a in (
            ("sg", ["--provider-reply", "sendgrid"]),
            ("ses", ["--provider-reply", "ses", "--no-8bitmime"]),
            ("mg", []), ("pm", []), ("off", []), ("up", []))}
        try:
            run(f, keys, sns, Poster(hport, keys.path("ca.pem")), ups)
        finally:
            for u in ups.values():
                u.stop()
            sns.stop()
    print("ok")


def run(f, keys, sns, p, ups):
    f.relay_policy(ups["up"].port)
    for n in ("sg", "ses", "mg", "pm", "off"):
        f.ctl("hop", "add", n, "--host", "127.0.0.1", "--port",
              str(ups[n].port), "--tls", "none")
        f.ctl("route", "set", "%s.test" % n, n)
    f.ctl("hook", "add", "sendgrid", "sg", "--key", keys.sg_public, "--tag")
    f.ctl("hook", "add", "ses", "ses", "--key", TOPIC, "--tag")
    f.ctl("hook", "add", "mailgun", "mg", "--secret-stdin", "--tag",
          input="mg-signing-key\n")
    f.ctl("hook", "add", "postmark", "pm", "--key", "pmuser",
          "--secret-stdin", "--path-token-stdin", "--tag",
          input="pm-pass\npmTok3n\n")
    f.ctl("hook", "add", "sendgrid", "off", "--key", keys.sg_public)
    r = f.ctl("dkim", "add", "example.com", "--selector", "r1",
              "--generate")
    dns = dkimkit.records_of(r.stdout)
    assert dns, r.stdout
    v = f.policy_version()
    f.start_relay("n1")
    f.wait_node_version("n1", v)

    # ---- every message shape through the tagged SendGrid hop
    names = [k for k in dkimkit.MESSAGES if k != "fromcase"]
    q = {}
    for name in names:
        q[name] = send_raw(f, ["bob@sg.test"],
                           dkimkit.MESSAGES[name].encode("utf-8"))
    wait_until(lambda: len(ups["sg"].messages()) == len(names), 30,
               "%d messages at sg" % len(names))
    paths = []
    by_qid = {}
    for m in ups["sg"].messages():
        first = m["data"].split("\r\n", 1)[0]
        got = re.match(r'X-SMTPAPI: \{"unique_args":\{"sluice_queue_id":'
                       r'"([0-9A-Za-z]+)"\}\}$', first)
        assert got, m["data"][:300]
        by_qid[got.group(1)] = m
        # once, first, and unsigned
        assert m["data"].count("X-SMTPAPI:") == 1, m["data"][:500]
        sig = re.search(r"(?m)^DKIM-Signature:.*(?:\r\n[ \t].*)*",
                        m["data"]).group(0)
        assert "x-smtpapi" not in sig.lower(), sig
        path = os.path.join(f.dir, "sg-%s.eml" % got.group(1))
        with open(path, "wb") as fh:
            fh.write(m["data"].encode("latin-1"))
        paths.append(path)
    assert sorted(by_qid) == sorted(q.values()), (by_qid.keys(), q)
    ok, out = dkimkit.verify(dns, paths, f.dir)
    assert ok, out
    # dot-stuffed lines came through whole (the sink un-stuffs)
    dots = by_qid[q["dots"]]["data"]
    assert "\r\n.\r\n..\r\n.leading dot\r\n" in dots, dots

    # ---- 8-bit data to a hop without 8BITMIME: converted, still tagged
    q8 = send_raw(f, ["carol@ses.test"],
                  dkimkit.MESSAGES["8bit"].encode("utf-8"))
    m = wait_until(lambda: arrived(ups["ses"], "8bit"), 20, "8bit at ses")
    assert m["data"].startswith(HEADERS["ses"] % q8 + "\r\n"), \
        m["data"][:300]
    assert "BODY=8BITMIME" not in m.get("params", ""), m
    assert all(ord(c) < 128 for c in m["data"]), m["data"]
    assert "quoted-printable" in m["data"].lower(), m["data"]

    # ---- Mailgun and Postmark forms; nothing on hops without --tag;
    # one message to two hops: the spool has no header
    qmg = send_raw(f, ["dan@mg.test"], dkimkit.MESSAGES["7bit"].encode())
    qpm = send_raw(f, ["erin@pm.test"], dkimkit.MESSAGES["7bit"].encode())
    qtwo = send_raw(f, ["fay@off.test", "gus@up.test", "hal@pm.test"],
                    (dkimkit.HDR % ("two", "two") + "\r\nhi\r\n").encode())
    for hop, qid in (("mg", qmg), ("pm", qpm)):
        wait_until(lambda: any(m["data"].startswith(
            HEADERS[hop] % qid + "\r\n") for m in ups[hop].messages()), 20,
            "%s tagged with %s" % (hop, qid))
    for hop in ("off", "up"):
        m = wait_until(lambda: arrived(ups[hop], "two"), 20, "two at " + hop)
        assert "sluice_queue_id" not in m["data"], m["data"][:400]
        assert "X-SMTPAPI" not in m["data"], m["data"][:400]
    m = wait_until(lambda: (lambda x: x if x and "hal@pm.test" in x["rcpts"]
                            else None)(arrived(ups["pm"], "two")), 20,
                   "two at pm")
    assert m["data"].startswith(HEADERS["pm"] % qtwo + "\r\n")

    # ---- provider events that carry the queue id join their message
    def trace_kinds(qid):
        return [(e["kind"], e["recipient"], e["node"])
                for e in f.ctl_json("trace", qid)["events"]]

    def delivered_pid(qid):
        ev = [e for e in f.ctl_json("trace", qid)["events"]
              if e["kind"] == "delivered"]
        return ev[0]["provider_id"] if ev else None
    # (the node's events reach the controller first: an event that comes
    # before its message's is test_provider_rejoin's matter)
    wait_until(lambda: all(delivered_pid(x) is not None for x in (
        q["7bit"], q["dots"], q8, qmg, qpm)), 20, "delivered events")
    # SendGrid: unique_args names 7bit's queue id; sg_message_id names
    # the dots message's 250 id: the queue id wins
    now = int(time.time())
    body = json.dumps([{
        "email": "bob@sg.test", "timestamp": now, "event": "delivered",
        "sg_event_id": "tag-sg-1",
        "sg_message_id": delivered_pid(q["dots"]) + ".filter1",
        "sluice_queue_id": q["7bit"]}]).encode()
    code, r = p.post("/hooks/sendgrid/sg", body, sendgrid_headers(keys, body))
    assert code == 200 and r["stored"] == 1, (code, r)
    assert ("provider_delivered", "bob@sg.test", "sendgrid/sg") in \
        trace_kinds(q["7bit"])
    assert not any(k[0] == "provider_delivered"
                   for k in trace_kinds(q["dots"]))
    # SES: the message tag; messageId unknown to sluice
    note = {"Type": "Notification", "MessageId": "tag-ses-1",
            "TopicArn": TOPIC, "Message": json.dumps({
                "eventType": "Bounce",
                "mail": {"messageId": "not-a-known-id",
                         "timestamp": "2026-12-07T02:00:00.000Z",
                         "destination": ["carol@ses.test"],
                         "tags": {"sluice_queue_id": [q8]}},
                "bounce": {"bounceType": "Permanent",
                           "bouncedRecipients": [
                               {"emailAddress": "carol@ses.test"}]}}),
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                       time.gmtime()),
            "SigningCertURL": "https://%s/SimpleNotificationService-1.pem"
                              % sns.host}
    code, r = p.post("/hooks/ses/ses", sns_sign(keys, note, "2"))
    assert code == 200 and r["stored"] == 1, (code, r)
    assert ("provider_bounced", "carol@ses.test", "ses/ses") in \
        trace_kinds(q8)
    # Mailgun: user-variables
    mg = {"signature": mailgun_signature("mg-signing-key"),
          "event-data": {"id": "tag-mg-1", "event": "delivered",
                         "recipient": "dan@mg.test",
                         "timestamp": time.time(),
                         "user-variables": {"sluice_queue_id": qmg}}}
    code, r = p.post("/hooks/mailgun/mg", mg)
    assert code == 200 and r["stored"] == 1, (code, r)
    assert ("provider_delivered", "dan@mg.test", "mailgun/mg") in \
        trace_kinds(qmg)
    # Postmark: Metadata as X-PM-Metadata-sluice-queue-id gives it
    pm = {"RecordType": "Delivery", "MessageID": "pm-unknown-id",
          "Recipient": "erin@pm.test",
          "DeliveredAt": "2026-12-07T02:01:00Z",
          "Metadata": {"sluice-queue-id": qpm}}
    code, r = p.post("/hooks/postmark/pm/pmTok3n", pm,
                     basic("pmuser", "pm-pass"))
    assert code == 200 and r["stored"] == 1, (code, r)
    assert ("provider_delivered", "erin@pm.test", "postmark/pm") in \
        trace_kinds(qpm)


if __name__ == "__main__":
    main()
