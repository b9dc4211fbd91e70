#!/usr/bin/env python3
"""The web console in a real browser (issue 18).

Debian's chromium, driven by playwright-core (browser/drive.js, installed
from browser/package-lock.json into the build directory), against a real
fleet: an operator logs in, reads the fleet page (its node up), opens the
hop view, finds a deferred message in the queue list with its last reply,
holds and releases it (with the confirmation dialog), traces it (held and
released in the record) and searches the log; a viewer sees the queue
without buttons and the API answers 403 to a hold.  Screenshots of every
page land in BUILD/console-screenshots (docs/console/ has a set).
Skipped (77) only when chromium is not installed.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from consolekit import ConsoleFleet, Upstream, free_port, wait_until  # noqa
from fleet import BUILD  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def chromium():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p and subprocess.run([p, "--version"], capture_output=True,
                                timeout=60).returncode == 0:
            return p
    return None


def playwright_dir():
    """npm ci of browser/package-lock.json into the build directory (once
    per lockfile)."""
    d = os.path.join(os.path.abspath(BUILD), "console-browser")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(HERE, "browser")
    lock = open(os.path.join(src, "package-lock.json")).read()
    have = os.path.join(d, "package-lock.json")
    mod = os.path.join(d, "node_modules", "playwright-core", "package.json")
    if not (os.path.exists(mod) and os.path.exists(have)
            and open(have).read() == lock):
        for f in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(src, f), d)
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund",
                            "--ignore-scripts"], cwd=d, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, "npm ci failed: %s%s" % (r.stdout,
                                                           r.stderr)
    return d


def main():
    exe = chromium()
    if exe is None:
        print("skipped: chromium is not installed (apt-get install "
              "chromium; scripts/deps.sh lists it)")
        sys.exit(77)
    modules = playwright_dir()
    shots = os.path.join(os.path.abspath(BUILD), "console-screenshots")
    os.makedirs(shots, exist_ok=True)
    with ConsoleFleet("console-browser") as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            run(f, up, exe, modules, shots)
        finally:
            up.stop()
    print("ok")


def kinds(f, qid):
    return [e["kind"] for e in f.ctl_json("trace", qid)["events"]]


def run(f, up, exe, modules, shots):
    f.relay_policy(up.port)
    f.ctl("hop", "add", "down", "--host", "127.0.0.1", "--port",
          str(free_port()), "--tls", "none")
    f.ctl("route", "set", "defer.test", "down")
    v = f.policy_version()
    f.start_relay("n1")
    f.wait_node_version("n1", v)
    f.add_operator("op1", "operator", "op1 correct horse")
    f.add_operator("view1", "viewer", "view1 battery staple")
    f.send("n1", "app@client.test", ["ok@example.com"], "delivered")
    qid = f.send("n1", "app@client.test", ["u@defer.test"], "deferred")
    wait_until(lambda: f.spool("n1").get(qid) == "deferred", 20,
               "a deferred message on n1")
    env = dict(os.environ, CONSOLE_URL="https://127.0.0.1:%d" %
               f.console_port, CHROMIUM=exe, SHOTS=shots, OP_NAME="op1",
               OP_PASS="op1 correct horse", VIEWER_NAME="view1",
               VIEWER_PASS="view1 battery staple", QID=qid, NODE="n1",
               NODE_PATH=os.path.join(modules, "node_modules"))
    r = subprocess.run(["node", os.path.join(HERE, "browser", "drive.js")],
                       env=env, capture_output=True, text=True, timeout=240)
    print(r.stderr, file=sys.stderr)
    found = json.loads(r.stdout.strip().splitlines()[-1] or "{}")
    print(json.dumps(found, indent=1))
    assert r.returncode == 0, "drive.js failed: %s" % r.stderr[-3000:]

    # The fleet page showed the node up, running the head policy.
    n1 = [row for row in found["fleet_nodes"] if row[0] == "n1"]
    assert n1 and n1[0][1] == "up" and n1[0][2] == "v%d" % v, found
    assert any("up" in h for h in found["hops"]), found
    # The queue list showed the last reply of the deferred message (the
    # hop nobody listens on refused the connection).
    assert found["last_reply"].strip(), found
    assert any("defer.test" in q for q in found["qshape"]), found
    assert "Hold message %s on n1?" % qid == found["confirm_hold"], found
    # Hold and release reached the node and the record.
    assert f.spool("n1").get(qid) == "deferred", f.spool("n1")
    k = kinds(f, qid)
    assert "held" in k and "released" in k, k
    assert {"held", "released"} <= set(found["trace_kinds"]), found
    assert found["log_rows"] >= 2, found
    assert any(r.startswith("+") for r in found["diff_rows"]), found
    # Phone width: nothing wider than the screen but the table boxes.
    assert found["phone_scroll_width"] <= 400, found
    # The viewer: no buttons, no actions column, and the API says no.
    assert found["viewer_buttons"] == 0, found
    assert not found["viewer_actions_column"], found
    va = found["viewer_api"]
    assert va["role"] == "viewer" and va["status"] == 403, va
    assert va["body"]["error"]["code"] == "denied", va
    assert found["page_errors"] == [], found["page_errors"]
    # Every action is in the audit history with the operator's name.
    audit = [(a["identity"], a["action"], a["detail"]) for a in f.audit()]
    who = "op1 (console 127.0.0.1)"
    assert (who, "queue hold", "queue_id=%s node=n1 commands=1" % qid) \
        in audit, audit
    assert (who, "queue release",
            "queue_id=%s node=n1 commands=1" % qid) in audit, audit
    assert ("view1 (console 127.0.0.1)", "queue action refused (viewer)",
            "hold") in audit, audit
    for name in ("login", "fleet", "hops", "queues", "queues-confirm",
                 "queues-held", "trace", "policy", "alerts", "fleet-phone",
                 "queues-phone", "queues-viewer"):
        p = os.path.join(shots, name + ".png")
        assert os.path.getsize(p) > 5000, p


if __name__ == "__main__":
    main()
