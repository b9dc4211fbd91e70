"""Enrollment: the right token is accepted and the node shows up; a wrong
token or an unknown name is refused, logged, and the node exits non-zero
with a clear message."""
import os
import re
import subprocess
import time

from fleet import Fleet, binary, wait_until


def main():
    with Fleet("enroll", heartbeat_ms=200).start() as f:
        token = f.add_node("edge-1")
        assert len(token) >= 40, token
        node = f.start_node("edge-1", token,
                            extra="address = 127.0.0.1:2525\n"
                            "sched_slice_us = 250\n")
        st = wait_until(lambda: (f.node_status("edge-1") or {})
                        .get("state") == "up" and f.node_status("edge-1"),
                        what="edge-1 up")
        assert st["address"] == "127.0.0.1:2525", st
        assert st["software_version"], st
        assert st["last_heartbeat_at"] > time.time() - 30, st
        first = st["last_heartbeat_at"]
        wait_until(lambda: f.node_status("edge-1")["last_heartbeat_at"]
                   > first or time.sleep(0.2), timeout=10,
                   what="heartbeats to continue")
        # Its threads carry names (top -H, perf; docs/operations.md).
        names = set()
        for tid in os.listdir("/proc/%d/task" % node.p.pid):
            with open("/proc/%d/task/%s/comm" % (node.p.pid, tid)) as c:
                names.add(c.read().strip())
        for want in ("spool-flush", "spool-prep", "journal-sync", "uplink"):
            assert want in names, (want, names)
        # sched_slice_us: every thread asks for it (Linux 6.12 and later
        # honour it and show it; older kernels ignore the request).
        if tuple(map(int, re.findall(r"\d+", os.uname().release)[:2])) \
                >= (6, 12):
            for tid in os.listdir("/proc/%d/task" % node.p.pid):
                with open("/proc/%d/task/%s/sched" % (node.p.pid, tid)) as c:
                    sl = re.search(r"se\.slice\s*:\s*(\d+)", c.read())
                assert sl and int(sl.group(1)) == 250000, (tid, sl)
        # out of range: refused by --check-config, one line
        bad = os.path.join(f.dir, "bad-slice.conf")
        with open(os.path.join(f.dir, "edge-1", "node.conf")) as c, \
                open(bad, "w") as o:
            o.write(c.read().replace("sched_slice_us = 250",
                                     "sched_slice_us = 50"))
        r = subprocess.run([binary("sluice-node"), "--check-config",
                            "--config", bad], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0, r
        assert "sched_slice_us must be 0 or 100..100000" in r.stderr, r
        human = f.ctl("node", "list").stdout
        assert "edge-1" in human and "up" in human, human

        # Adding the same name twice is refused with one line.
        r = f.ctl("node", "add", "edge-1", check=False)
        assert r.returncode != 0 and r.stderr.count("\n") == 1, r

        # Wrong token: refused, logged by the controller, node exits 1.
        f.add_node("edge-2")
        bad = f.start_node("edge-2", "A" * 43)
        rc = bad.wait(15)
        assert rc != 0, rc
        assert "refused" in bad.output(), bad.output()
        st2 = f.node_status("edge-2")
        assert st2["state"] == "new", st2
        wait_until(lambda: "edge-2" in f.controllers[0].output(),
                   what="controller to log the refusal")

        # Unknown name: same.
        ghost = f.start_node("ghost", "B" * 43)
        assert ghost.wait(15) != 0
        assert "refused" in ghost.output(), ghost.output()
        assert f.node_status("ghost") is None

        # The good node was never disturbed.
        assert node.alive()
        assert f.node_status("edge-1")["state"] == "up"
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
