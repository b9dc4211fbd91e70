"""Propagation: each policy command of the issue is one transaction that
bumps the version by one, and every running node runs the new version
within two heartbeats (asserted from what the nodes report).  A node that
cannot follow shows up as drift in `node list`."""
import signal
import time

from fleet import Fleet, wait_until

HB_MS = 300
# Two heartbeats, plus one for the report that tells the controller, plus
# scheduling slack for sanitizer builds on a loaded 2-core machine.
DEADLINE_S = 3 * HB_MS / 1000.0 + 2.0


def both_run(f, version):
    return all((f.node_status(n) or {}).get("policy_version") == version
               for n in ("edge-1", "edge-2"))


def main():
    with Fleet("propagation", heartbeat_ms=HB_MS).start() as f:
        f.start_node("edge-1")
        f.start_node("edge-2")
        wait_until(lambda: all((f.node_status(n) or {}).get("state") == "up"
                               for n in ("edge-1", "edge-2")),
                   what="both nodes up")
        steps = [
            (["network", "allow", "10.0.0.0/8"], None),
            (["user", "add", "app1", "--password-stdin", "--sender",
              "*@example.com"], "s3cret-app1\n"),
            (["hop", "add", "primary", "--host", "127.0.0.1", "--port",
              "2600", "--tls", "none"], None),
            (["hop", "add", "sendgrid", "--preset", "sendgrid",
              "--secret-stdin"], "SG.secret-key\n"),
            (["route", "set", "*", "primary", "sendgrid"], None),
            (["limit", "set", "max_message_size", "26214400"], None),
        ]
        version = 0
        worst = 0.0
        for args, stdin in steps:
            r = f.ctl(*args, input=stdin)
            hist = f.ctl_json("policy", "history")["versions"]
            assert hist[0]["version"] == version + 1, (args, hist[0])
            version += 1
            t0 = time.monotonic()
            wait_until(lambda: both_run(f, version), timeout=DEADLINE_S,
                       what="both nodes on version %d after %s" % (
                           version, " ".join(args)))
            worst = max(worst, time.monotonic() - t0)
            assert r.stdout.strip(), "command printed nothing: %r" % args
        print("worst propagation %.2fs (heartbeat %d ms)" % (worst, HB_MS))

        # Secrets never come back out.
        out = f.ctl("policy", "export").stdout + \
            f.ctl("hop", "list", json_out=True).stdout + \
            f.ctl("user", "list", json_out=True).stdout
        assert "SG.secret-key" not in out and "s3cret" not in out
        assert "$scrypt$" not in out

        # Drift: freeze edge-2, change policy, edge-2 lags behind.
        f.nodes["edge-2"].p.send_signal(signal.SIGSTOP)
        try:
            f.ctl("network", "allow", "192.168.0.0/16")
            version += 1
            wait_until(lambda: f.node_status("edge-1")["policy_version"]
                       == version, timeout=DEADLINE_S, what="edge-1")
            nodes = f.ctl_json("node", "list")
            e2 = [n for n in nodes["nodes"] if n["name"] == "edge-2"][0]
            assert nodes["latest_policy_version"] == version
            assert e2["policy_version"] == version - 1 and e2["drift"], e2
            human = f.ctl("node", "list").stdout
            assert "latest %d" % version in human or "DRIFT" in human, human
        finally:
            f.nodes["edge-2"].p.send_signal(signal.SIGCONT)
        wait_until(lambda: both_run(f, version), timeout=DEADLINE_S + 5,
                   what="edge-2 catching up")
        nodes = f.ctl_json("node", "list")["nodes"]
        assert not any(n["drift"] for n in nodes), nodes
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
