"""A real apply of ansible/site.yml to localhost (-c local) into a throwaway
prefix, then the installed binaries run from the rendered configurations.

- PostgreSQL is "external": a throwaway server (pg.py) given to the
  controller role as a conninfo; the sluice_db group is empty.
- sluice_build builds from a snapshot of this checkout (CMake on the
  host) and installs into <prefix>/usr/local/bin.
- Services are not managed (sluice_common_manage_services: false): the
  test starts the controller itself as soon as the play has rendered its
  configuration (the play waits for the admin endpoint, then enrolls the
  node through it), and starts the node after the play.
Environment: SLUICE_ANSIBLE_SRC builds another tree than this checkout;
SLUICE_ANSIBLE_KEEP=1 keeps the temporary directory.
- The node must show up at the controller with the play's policy, accept a
  message with 250 and deliver it to a test upstream (tests/upstream).
- A second apply must report changed=0 for every host, keep the token and
  store no new policy version.
"""
import json
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time

from common import ANSIBLE_DIR, REPO, ansible_env, require
from fleet import Proc, free_port, wait_until
from pg import PgServer

# The whole test's budget in seconds, below its CTest TIMEOUT (780 in
# tests/ansible.cmake): CTest kills a test past its TIMEOUT with SIGKILL,
# so the test stops itself first and cleans up (its PostgreSQL is also
# guarded by pg.py for a kill).  The first apply compiles the binaries and
# each of the five runs has some 80 tasks: on a loaded 2-core machine
# (scripts/test.sh runs it at nice 5 beside both test passes) that can
# take many minutes; ~2 on an idle one.
BUDGET_S = float(os.environ.get("SLUICE_ANSIBLE_BUDGET", "720"))
T0 = time.monotonic()

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+"
                   r"unreachable=(\d+)\s+failed=(\d+)", re.M)


def snapshot_sources(dst):
    """Copy the checkout without .git and build trees, so the apply builds
    exactly one source state (and never touches the suite's builds)."""
    def ignore(d, names):
        out = {n for n in names if n in (".git", ".fleet", ".cache")
               or n.startswith("__pycache__")}
        if os.path.abspath(d) == REPO:
            out |= {n for n in names if os.path.exists(
                os.path.join(d, n, "CMakeCache.txt"))}
        return out
    shutil.copytree(os.environ.get("SLUICE_ANSIBLE_SRC", REPO), dst,
                    ignore=ignore, symlinks=True)


def yaml_dump(obj):
    """Just enough YAML (JSON is YAML) for the inventory."""
    return json.dumps(obj, indent=2)


def recap(out):
    hosts = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)),
                          "unreachable": int(m.group(4)),
                          "failed": int(m.group(5))}
             for m in RECAP.finditer(out)}
    assert hosts, "no PLAY RECAP in:\n" + out[-3000:]
    return hosts


class Run:
    def __init__(self, tmp):
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        self.bindir = os.path.join(self.root, "usr/local/bin")
        self.confdir = os.path.join(self.root, "etc/sluice")
        self.env = ansible_env(tmp)
        self.procs = []

    def playbook(self, inv, log, on_progress=None, playbook="site.yml",
                 extra=(), check=True):
        argv = ["ansible-playbook", "-i", inv, playbook, "--diff"] + \
            list(extra)
        with open(log, "w") as out:
            p = subprocess.Popen(argv, cwd=ANSIBLE_DIR, env=self.env,
                                 stdout=out, stderr=subprocess.STDOUT)
            deadline = T0 + BUDGET_S
            while p.poll() is None:
                if on_progress:
                    on_progress()
                if time.monotonic() > deadline:
                    p.kill()
                    p.wait()
                    break
                time.sleep(0.1)
        with open(log) as f:
            text = f.read()
        if time.monotonic() > deadline:
            sys.stderr.write(text[-8000:])
            raise AssertionError("ansible-playbook %s still running at the "
                                 "end of the test's %.0f s budget (killed)"
                                 % (playbook, BUDGET_S))
        if check and p.returncode != 0:
            sys.stderr.write(text[-8000:])
            raise AssertionError("ansible-playbook failed (%s)"
                                 % p.returncode)
        return text

    def ctl(self, admin, *args):
        r = subprocess.run([os.path.join(self.bindir, "sluicectl"), "--admin",
                            admin, "--json"] + list(args),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return json.loads(r.stdout)

    def ctl_plain(self, admin, *args):
        r = subprocess.run([os.path.join(self.bindir, "sluicectl"), "--admin",
                            admin] + list(args),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def start(self, args, log):
        p = Proc(args, os.path.join(self.tmp, log)).start()
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            p.stop()

    def dump_logs(self):
        for p in self.procs:
            sys.stderr.write("--- %s\n%s" % (p.log_path, p.output()[-4000:]))


def main():
    # A SIGTERM (or ^C) still runs the cleanup below: stop what we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    require("ansible-playbook")
    if os.geteuid() != 0:
        print("SKIP: the apply installs root-owned files (run as root, as "
              "scripts/test.sh does)")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="sluice-ansible-")
    os.chmod(tmp, 0o755)
    run = Run(tmp)
    pg = PgServer(base=os.path.join(tmp, "pg"))
    os.makedirs(pg.base)
    ok = False
    checks = []
    try:
        t0 = time.monotonic()
        pg.start()   # guarded: stopped by PID if this process is killed
        conninfo = pg.create_db("sluice")
        src = os.path.join(tmp, "src")
        snapshot_sources(src)

        up_port, smtp_port = free_port(), free_port()
        metrics_port, ctl_port = free_port(), free_port()
        record = os.path.join(tmp, "upstream.jsonl")
        run.start([sys.executable, os.path.join(REPO, "tests", "upstream",
                                                "upstream.py"),
                   "--port", str(up_port), "--record", record],
                  "upstream.log")
        admin = "ipc://%s/run/sluice/admin.sock" % run.root
        policy = {
            "networks": {"allow": ["127.0.0.0/8"]},
            "hops": [{"name": "upstream", "host": "127.0.0.1",
                      "port": up_port, "tls": "none"}],
            "routes": [{"pattern": "*", "groups": [["upstream"]]}],
        }
        inventory = {"all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "ansible_become": False,
                "sluice_common_prefix": run.root,
                "sluice_common_user": "root",
                "sluice_common_group": "root",
                "sluice_common_create_user": False,
                "sluice_common_manage_services": False,
                "sluice_common_controller_port": ctl_port,
                "sluice_build_src": src,
                "sluice_build_dir": os.path.join(tmp, "build"),
                "sluice_build_install_deps": False,
                "sluice_controller_database": conninfo,
                "sluice_controller_address": "127.0.0.1",
                "sluice_controller_bind_address": "127.0.0.1",
                "sluice_controller_wait_retries": 60,
                "sluice_controller_wait_delay": 1,
                "sluice_node_heartbeat_ms": 200,
                "sluice_node_hostname": "relay-test.sluice.test",
                "sluice_node_address": "127.0.0.1:%d" % smtp_port,
                "sluice_node_listen": [{"address": "127.0.0.1:%d" % smtp_port,
                                        "role": "relay"}],
                "sluice_node_metrics_listen": "127.0.0.1:%d" % metrics_port,
            },
            "children": {
                "sluice_db": {"hosts": {}},
                "sluice_controllers": {"hosts": {"ctl1": {}},
                                       "vars": {"sluice_policy": policy}},
                "sluice_nodes": {"hosts": {"edge1": {}}},
            },
        }}
        inv = os.path.join(tmp, "inventory.yml")
        with open(inv, "w") as f:
            f.write(yaml_dump(inventory))

        # --- first apply; the controller is started by us as soon as the
        # play has installed it and rendered its configuration.
        ctl_conf = os.path.join(run.confdir, "controller.conf")
        ctl_bin = os.path.join(run.bindir, "sluice-controller")
        state = {}

        def start_controller():
            if "ctl" not in state and os.path.exists(ctl_conf) \
                    and os.path.exists(ctl_bin):
                state["ctl"] = run.start([ctl_bin, "--config", ctl_conf],
                                         "controller.log")

        out1 = run.playbook(inv, os.path.join(tmp, "apply1.log"),
                            start_controller)
        r1 = recap(out1)
        assert set(r1) == {"ctl1", "edge1"}, r1
        for h, st in r1.items():
            assert st["failed"] == 0 and st["unreachable"] == 0, (h, st)
            assert st["changed"] > 0, (h, st)
        assert "ctl" in state, "controller config never appeared"
        t1 = time.monotonic()

        # --- what the play installed
        for b in ("sluice-node", "sluice-controller", "sluicectl"):
            assert os.access(os.path.join(run.bindir, b), os.X_OK), b
        conf = open(os.path.join(run.confdir, "node.conf")).read()
        token = re.search(r"^token = (\S+)$", conf, re.M).group(1)
        assert len(token) >= 40, conf
        # Mutual TLS on the control plane is the default.
        assert "controller = tls+tcp://127.0.0.1:%d" % ctl_port in conf, conf
        assert "controller_ca = " in conf and "controller_key = " in conf
        assert "listen = 127.0.0.1:%d relay" % smtp_port in conf, conf
        assert os.stat(os.path.join(run.confdir, "node.conf")).st_mode \
            & 0o777 == 0o640
        assert "insecure" not in conf, conf
        cconf = open(ctl_conf).read()
        assert "node_listen = tls+tcp://127.0.0.1:%d" % ctl_port in cconf
        assert "tls_ca = " in cconf and "insecure" not in cconf, cconf
        assert 'database = "%s"' % conninfo in cconf, cconf
        unit = open(os.path.join(run.root, "etc/systemd/system/"
                                 "sluice-node.service")).read()
        for line in ("NoNewPrivileges=yes", "ProtectSystem=strict",
                     "ReadWritePaths=%s/var/spool/sluice" % run.root,
                     "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                     "Restart=on-failure", "User=root"):
            assert line in unit.splitlines(), (line, unit)
        cunit = open(os.path.join(run.root, "etc/systemd/system/"
                                  "sluice-controller.service")).read()
        for line in ("NoNewPrivileges=yes", "ProtectSystem=strict",
                     "Restart=on-failure", "CapabilityBoundingSet="):
            assert line in cunit.splitlines(), (line, cunit)
        if shutil.which("systemd-analyze"):
            for u in ("sluice-node", "sluice-controller"):
                r = subprocess.run(["systemd-analyze", "verify", os.path.join(
                    run.root, "etc/systemd/system", u + ".service")],
                    capture_output=True, text=True)
                bad = [ln for ln in (r.stdout + r.stderr).splitlines()
                       if re.search(r"Unknown|[Ii]nvalid|parse", ln)]
                assert not bad, (u, bad)
        pki = os.path.join(run.confdir, "pki")
        for who in ("node", "controller"):
            v = subprocess.run(["openssl", "verify", "-CAfile",
                                os.path.join(pki, "ca.crt"),
                                os.path.join(pki, who + ".crt")],
                               capture_output=True, text=True)
            assert v.returncode == 0, (who, v.stdout, v.stderr)
        assert oct(os.stat(os.path.join(run.confdir, "ca", "ca.key"))
                   .st_mode & 0o777) == "0o600"
        chk = subprocess.run([os.path.join(run.bindir, "sluice-node"),
                              "--check-config", "--config",
                              os.path.join(run.confdir, "node.conf")],
                             capture_output=True, text=True)
        assert chk.returncode == 0, chk
        version = run.ctl(admin, "policy", "history")["versions"][0]["version"]
        assert version >= 1, version

        # --- the node, from the rendered configuration: enrolls, runs the
        # play's policy
        node = run.start([os.path.join(run.bindir, "sluice-node"), "--config",
                          os.path.join(run.confdir, "node.conf")], "node.log")

        def node_status():
            for n in run.ctl(admin, "node", "list")["nodes"]:
                if n["name"] == "edge1":
                    return n
            return None
        st = wait_until(lambda: (node_status() or {}).get("state") == "up"
                        and (node_status()["policy_version"] >= version)
                        and node_status(), timeout=20,
                        what="edge1 up on policy version %d" % version)
        assert st["address"] == "127.0.0.1:%d" % smtp_port, st
        checks.append("node enrolled and up on policy version %d" % version)

        # --- a message through the node to the upstream
        body = ("From: app@example.com\r\nTo: user@example.org\r\n"
                "Subject: ansible apply\r\nMessage-ID: <ansible-%d@test>\r\n"
                "\r\ndeployed by ansible\r\n" % os.getpid())
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=15) as s:
            s.ehlo("client.test")
            code, _ = s.mail("app@example.com")
            assert code == 250, code
            code, _ = s.rcpt("user@example.org")
            assert code == 250, code
            code, reply = s.data(body.encode())
            assert code == 250, (code, reply)
        checks.append("message accepted with 250")

        def delivered():
            if not os.path.exists(record):
                return None
            for ln in open(record):
                ev = json.loads(ln)
                if ev.get("ev") == "message" and \
                        "deployed by ansible" in ev.get("data", ""):
                    return ev
            return None
        # The delivery engine (node/delivery.c) is its own issue; until the
        # tree has one, say so loudly instead of passing silently.
        if os.path.exists(os.path.join(src, "node", "delivery.c")):
            ev = wait_until(delivered, timeout=30, interval=0.2,
                            what="the message at the upstream")
            assert ev["rcpts"] == ["user@example.org"], ev
            assert ev["from"] == "app@example.com", ev
            checks.append("delivered to the upstream")
        else:
            print("NOT CHECKED: delivery to the upstream (this tree has no "
                  "node/delivery.c yet); the message was accepted with 250")

        # --- second apply: nothing changes, nothing re-enrolls, no new
        # policy version, the node keeps running
        t2 = time.monotonic()
        out2 = run.playbook(inv, os.path.join(tmp, "apply2.log"))
        r2 = recap(out2)
        t3 = time.monotonic()
        changed = {h: st["changed"] for h, st in r2.items()
                   if st["changed"] or st["failed"]}
        if changed:
            tasks = re.findall(r"^changed: \[(\S+)\].*$|^TASK \[(.+)\]",
                               out2, re.M)
            sys.stderr.write(out2[-8000:])
            raise AssertionError("second apply not idempotent: %s %s"
                                 % (changed, tasks[-5:]))
        conf2 = open(os.path.join(run.confdir, "node.conf")).read()
        assert conf2 == conf, "node.conf changed on the second apply"
        v2 = run.ctl(admin, "policy", "history")["versions"][0]["version"]
        assert v2 == version, (version, v2)
        assert node.alive() and node_status()["state"] == "up"
        checks.append("second apply changed=0, same token, same policy "
                      "version")

        # --- rolling-update.yml: drain, wait until drained, (re)install,
        # resume, wait until up.  Needs a node that reports "drained"
        # (fleet operations); until the node has it, say so.
        if subprocess.run(["grep", "-qs", "drained", "-r",
                           os.path.join(src, "node")]).returncode == 0:
            out3 = run.playbook(inv, os.path.join(tmp, "rolling.log"),
                                playbook="rolling-update.yml",
                                extra=["-e", "sluice_rolling_drain_delay=1",
                                       "-e", "sluice_rolling_drain_retries=60"])
            r3 = recap(out3)
            assert set(r3) == {"edge1"}, r3
            assert "Wait until the node is drained" in out3, out3[-3000:]
            # the node says it resumed with its next heartbeat: poll
            st = wait_until(
                lambda: (lambda x: x if x and x["state"] == "up" and
                         not x.get("metrics", {}).get("draining")
                         else None)(node_status()),
                20, "edge1 up and no longer draining after the update")
            assert node.alive(), st
            checks.append("rolling update (drain, drained, resume, up)")
        else:
            # Until then: the drain reaches the controller and the play
            # stops at the wait for "drained", as it must.
            out3 = run.playbook(inv, os.path.join(tmp, "rolling.log"),
                                playbook="rolling-update.yml",
                                extra=["-e", "sluice_rolling_drain_delay=1",
                                       "-e", "sluice_rolling_drain_retries=2"],
                                check=False)
            assert recap(out3)["edge1"]["failed"] == 1, out3[-3000:]
            assert re.search(r"^TASK \[Wait until the node is drained\]",
                             out3, re.M), out3[-3000:]
            assert node_status()["state"] == "draining", node_status()
            run.ctl_plain(admin, "node", "resume", "edge1")
            wait_until(lambda: node_status()["state"] == "up",
                       what="edge1 resumed")
            checks.append("rolling update drains, then waits for 'drained'")
            print("NOT CHECKED: rolling-update.yml past the wait for "
                  "'drained' (the node does not report it yet)")
        # --- a rebuilt node host (no token on disk) is not re-enrolled
        # silently; with sluice_node_reenroll it is, with a new token.
        node.stop()
        os.rename(os.path.join(run.confdir, "node.conf"),
                  os.path.join(tmp, "node.conf.old"))
        out4 = run.playbook(inv, os.path.join(tmp, "rebuilt.log"),
                            extra=["--limit", "edge1"], check=False)
        assert "holds no token" in out4 and recap(out4)["edge1"]["failed"], \
            out4[-3000:]
        assert not os.path.exists(os.path.join(run.confdir, "node.conf"))
        run.playbook(inv, os.path.join(tmp, "reenroll.log"),
                     extra=["--limit", "edge1",
                            "-e", "sluice_node_reenroll=true"])
        conf3 = open(os.path.join(run.confdir, "node.conf")).read()
        token3 = re.search(r"^token = (\S+)$", conf3, re.M).group(1)
        assert token3 != token, "re-enrollment kept the old token"
        node = run.start([os.path.join(run.bindir, "sluice-node"), "--config",
                          os.path.join(run.confdir, "node.conf")],
                         "node2.log")
        wait_until(lambda: (node_status() or {}).get("state") == "up",
                   timeout=20, what="re-enrolled edge1 up")
        checks.append("rebuilt host refused, then re-enrolled on request")

        print("apply %.0fs, second apply %.0fs, total %.0fs"
              % (t1 - t0, t3 - t2, time.monotonic() - t0))
        print("checked: " + ", ".join(checks))
        ok = True
    finally:
        if not ok:
            run.dump_logs()
        run.stop()
        pg.destroy()
        if ok and not os.environ.get("SLUICE_ANSIBLE_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            sys.stderr.write("kept %s for inspection\n" % tmp)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
