#!/usr/bin/env python3
"""Per-credential quotas, fleet-wide (issue 15 part 2).

User app1 has a quota of 10 messages an hour.  Two nodes share it: mail
submitted alternately to both is accepted until the fleet has taken 10,
never more (no partition here, so no overshoot is allowed); after that
MAIL gets 451 4.7.1 on both nodes, naming the quota and the UTC hour it
resets at.  The upstream received exactly 10, /metrics counts the
refusals, the alert user_quota is raised once for the window and `status`
shows it.  A refusal while the fleet is still under the quota (a node
whose allowance ran out before the next heartbeat re-divided it) is
temporary: the message is submitted again until accepted.  With the
controller gone, the nodes keep their allowances: no more than the
quota in the window.
"""
import calendar
import os
import re
import smtplib
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "smtp"))
from fleetkit import FleetOps, Upstream, http_get, parse_prometheus  # noqa
from fleetkit import sample  # noqa: E402
from fleet import wait_until  # noqa: E402
from smtpkit import make_cert  # noqa: E402

QUOTA = 10
PASSWORD = "app1-password"


def submit(port, i):
    """One message as app1 (STARTTLS + AUTH); (code, reply text) of the
    first refused step, or (250, queue id)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        s.ehlo("client.test")
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.login("app1", PASSWORD)
        code, resp = s.mail("app1@example.com")
        if code != 250:
            return code, resp.decode()
        code, resp = s.rcpt("r%d@example.test" % i)
        if code != 250:
            return code, resp.decode()
        code, resp = s.data(("From: <app1@example.com>\r\nTo: <r%d@example."
                             "test>\r\nSubject: q%d\r\n\r\nhello\r\n" % (
                                 i, i)).encode())
        s.quit()
        return code, resp.decode()
    finally:
        s.close()


def main():
    # The test needs one UTC hour: not the last minute of one.
    left = 3600 - time.time() % 3600
    if left < 90:
        time.sleep(left + 1)
    with FleetOps("quota", heartbeat_ms=200,
                  controller_extra="health_interval_ms = 100\n") as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up)
        finally:
            up.stop()
    print("ok")


def run(f, up):
    crt, key = make_cert(f.dir)
    tls = "tls_cert = %s\ntls_key = %s\n" % (crt, key)
    f.relay_policy(up.port)
    f.ctl("user", "add", "app1", "--password-stdin", "--sender",
          "*@example.com", input=PASSWORD + "\n")
    f.start_relay("n1", extra=tls)
    f.start_relay("n2", extra=tls)
    # the quota, set while both nodes are live
    f.ctl("user", "set", "app1", "--quota-hour-msgs", str(QUOTA))
    v = f.policy_version()
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)
    listed = f.ctl("user", "list").stdout
    assert "10/- an hour" in listed, listed

    ports = [f.smtp_ports["n1"], f.smtp_ports["n2"]]
    accepted, early = 0, 0
    deadline = time.monotonic() + 60
    i = 0
    while accepted < QUOTA:
        assert time.monotonic() < deadline, "quota not reached"
        code, text = submit(ports[i % 2], i)
        i += 1
        if code == 250:
            accepted += 1
            continue
        # under the quota a refusal is the node's allowance running out
        # before the next heartbeat: temporary, same reply
        assert code == 451 and "4.7.1" in text, (code, text)
        early += 1
    print("accepted %d (%d early refusals, re-submitted)" % (accepted, early))

    # over the quota on both nodes: 451 4.7.1 with the reset time
    hour = int(time.time()) // 3600 * 3600 + 3600
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour))
    for k in range(4):
        code, text = submit(ports[k % 2], 100 + k)
        assert code == 451, (code, text)
        assert text.startswith("4.7.1 Hourly message quota (10) of user "
                               "app1 reached; it resets at " + reset), text
    # exactly the quota went upstream, never more
    wait_until(lambda: len(up.messages()) >= QUOTA, 30, "10 delivered")
    assert len(up.messages()) == QUOTA, len(up.messages())

    # /metrics: the refusals, summed over the nodes
    total = 0
    for n in ("n1", "n2"):
        s = parse_prometheus(http_get(f.metrics_ports[n]))
        total += sample(s, "sluice_quota_refusals_total")
    assert total >= 4, total

    # one alert for this user, this quota and this hour; status shows it
    start = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(hour - 3600))
    subject = "app1/hour_msgs@" + start
    wait_until(lambda: f.open_alert("user_quota", subject), 15,
               "the user_quota alert")
    a = f.open_alert("user_quota", subject)[0]
    assert "app1" in a["message"] and reset in a["message"], a
    raised = [x for x in f.alerts() if x["kind"] == "user_quota"]
    assert len(raised) == 1, raised
    st = f.ctl("status").stdout
    assert "user_quota" in st and subject in st, st

    # the policy round-trips through export and apply
    out = f.ctl("policy", "export").stdout
    assert re.search(r"quota:\n\s+hour_msgs: 10\n", out), out
    path = os.path.join(f.dir, "exported.yaml")
    with open(path, "w") as fh:
        fh.write(out.replace("hour_msgs: 10", "hour_msgs: 12\n"
                             "      day_rcpts: 500"))
    f.ctl("policy", "apply", "-f", path)
    users = f.ctl_json("user", "list")["users"]
    q = [u for u in users if u["name"] == "app1"][0]["quota"]
    assert q == {"hour_msgs": 12, "hour_rcpts": 0, "day_msgs": 0,
                 "day_rcpts": 500}, q
    assert calendar.timegm(time.gmtime()) < hour

    # cut off from the controller, the nodes keep their last allowances:
    # with the quota now 12, at most 2 more in this window, fleet-wide
    v = f.policy_version()
    f.wait_node_version("n1", v)
    f.wait_node_version("n2", v)
    for c in f.controllers:
        c.stop()
    more = 0
    for k in range(6):
        code, text = submit(ports[k % 2], 200 + k)
        if code == 250:
            more += 1
        else:
            assert code == 451 and "quota (12)" in text, (code, text)
    print("partitioned: %d more accepted (bound 2)" % more)
    assert more <= 2, more


if __name__ == "__main__":
    main()
