"""Least privilege (docs/security.md).

sluice-node started as root with `user = nobody` binds its listener, drops
to nobody (uid, gid, supplementary groups; no capabilities left, no way
back to root) and only then opens its spool and its controller link: the
spool is chowned to nobody and every file in it is nobody's, and mutual TLS
to the controller works with the certificate+key file readable by the
node's group only (0640 root:nogroup).  The controller's local admin
socket is 0600: sluicectl run as another user is refused.  Skipped when
not root.
"""
import grp
import os
import pwd
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, binary, free_port  # noqa: E402
from pki import Pki  # noqa: E402


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid)
    with Fleet("priv", heartbeat_ms=200) as f:
        pki = Pki(os.path.join(f.dir, "pki"))
        ca = pki.ca("fleet-ca")
        ctrl = pki.leaf("controller", "fleet-ca", "127.0.0.1",
                        dns=["127.0.0.1"])
        node_pem = pki.leaf("edge-1", "fleet-ca", "edge-1")
        os.chown(node_pem, 0, group.gr_gid)
        os.chmod(node_pem, 0o640)
        f.node_url = "tls+tcp://127.0.0.1:%d" % free_port()

        def conf(node_url=None, admin_url=None, idx=0, _orig=f.controller_conf):
            p = _orig(node_url, admin_url, idx)
            with open(p, "a") as fh:
                fh.write("tls_ca = %s\ntls_cert_key = %s\n" % (ca, ctrl))
            return p
        f.controller_conf = conf
        f.start()
        f.ctl("network", "allow", "127.0.0.0/8")
        port = free_port()
        f.start_node("edge-1", extra=(
            "user = nobody\nlisten = 127.0.0.1:%d relay\n"
            "hostname = relay.test\ncontroller_ca = %s\n"
            "controller_cert_key = %s\n" % (port, ca, node_pem)))
        node = f.nodes["edge-1"]
        f.wait_node_version("edge-1", f.policy_version(), timeout=20)
        st = status(node.p.pid)
        assert st["Uid"] == [str(nobody.pw_uid)] * 4, st["Uid"]
        assert st["Gid"] == [str(nobody.pw_gid)] * 4, st["Gid"]
        assert st.get("Groups", []) in ([], [str(nobody.pw_gid)]), \
            st["Groups"]
        assert int(st["CapEff"][0], 16) == 0, st["CapEff"]
        assert int(st["CapPrm"][0], 16) == 0, st["CapPrm"]
        assert "running as nobody" in node.output(), node.output()
        print("ok: node runs as nobody (uid, gid, groups), no capabilities")

        s = smtplib.SMTP("127.0.0.1", port, timeout=10)
        assert s.ehlo()[0] == 250
        s.quit()
        spool = os.path.join(f.dir, "edge-1", "spool")
        wrong = []
        for root, dirs, files in os.walk(spool):
            for name in dirs + files + ["."]:
                p = os.path.join(root, name)
                if os.lstat(p).st_uid != nobody.pw_uid:
                    wrong.append(p)
        assert not wrong, wrong
        print("ok: listener bound before the drop; spool owned by nobody; "
              "mutual TLS with a 0640 root:%s key" % group.gr_name)

        # The local admin socket: owner only, so another user is refused.
        sock = f.admin_url[len("ipc://"):]
        assert os.stat(sock).st_mode & 0o077 == 0, oct(os.stat(sock).st_mode)
        os.chmod(f.dir, 0o755)
        r = subprocess.run(["runuser", "-u", "nobody", "--",
                            binary("sluicectl"), "--admin", f.admin_url,
                            "node", "list"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode != 0 and "permission denied" in r.stderr, r
        assert f.ctl("node", "list").returncode == 0
        print("ok: admin socket is 0600; another user's sluicectl is "
              "refused: %s" % r.stderr.strip())
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
