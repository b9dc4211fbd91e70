"""Mutual TLS on the control plane (docs/security.md).

C = controller with node_listen tls+tcp:// (fleet CA) and a second
controller on the same database with a tls+tcp:// admin endpoint (admin CA).

- a node with a certificate from the fleet CA enrolls and pulls a policy
  (with a smart-host secret) over tls+tcp://;
- a TLS client without a certificate, or with one from another CA, is
  refused in the handshake (openssl s_client); a node with a certificate
  from another CA never gets through (state stays "new"); a node that does
  not trust the controller's CA never gets through either;
- tls+tcp:// without certificates, plain tcp:// to a non-loopback address
  (node and controller) and a world-readable key are refused at start with
  the reason, before any socket exists (no traffic leaves the machine);
- sluicectl reaches a tls+tcp:// admin endpoint only with an admin-CA
  certificate: a node's certificate (fleet CA) is refused.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, Proc, binary, free_port, wait_until  # noqa: E402
from pki import Pki  # noqa: E402


class TlsFleet(Fleet):
    conf_extra = ""

    def controller_conf(self, node_url=None, admin_url=None, idx=0):
        path = super().controller_conf(node_url, admin_url, idx)
        with open(path, "a") as f:
            f.write(self.conf_extra)
        return path


def s_client(port, pki, cert=None):
    """TLS handshake with openssl s_client; True when it completed and
    the server accepted us (an application byte exchange is not needed:
    a refused client certificate ends the handshake with an alert)."""
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-CAfile", pki.path("fleet-ca.crt"), "-verify_return_error",
            "-tls1_2"]
    if cert:
        args += ["-cert", cert, "-key", cert]
    r = subprocess.run(args, input="", capture_output=True, text=True,
                       timeout=20)
    out = r.stdout + r.stderr
    # TLS 1.2: the server's verdict on our certificate arrives before
    # the handshake completes.
    ok = r.returncode == 0 and "alert" not in out and \
        "Verify return code: 0" in out
    return ok, out


def node_refused_at_start(f, name, extra, controllers, needle):
    token = f.add_node(name)
    n = f.start_node(name, token, extra=extra, controllers=controllers)
    rc = n.wait(15)
    out = n.output()
    assert rc != 0, (rc, out)
    for s in needle:
        assert s in out, (s, out)
    # --check-config refuses the same configuration, for the same reason
    r = subprocess.run([binary("sluice-node"), "--check-config", "--config",
                        os.path.join(f.dir, name, "node.conf")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, (r.stdout, r.stderr)
    for s in needle:
        assert s in r.stderr, (s, r.stderr)
    return out


def main():
    with TlsFleet("mtls", heartbeat_ms=200) as f:
        pki = Pki(os.path.join(f.dir, "pki"))
        fleet_ca = pki.ca("fleet-ca")
        pki.ca("rogue-ca")
        admin_ca = pki.ca("admin-ca")
        ctrl_pem = pki.leaf("controller", "fleet-ca", "127.0.0.1",
                            dns=["localhost", "127.0.0.1"],
                            ips=["127.0.0.1"])
        edge_pem = pki.leaf("edge-1", "fleet-ca", "edge-1")
        rogue_pem = pki.leaf("rogue", "rogue-ca", "edge-2")
        admin_pem = pki.leaf("alice", "admin-ca", "alice")

        port = free_port()
        f.node_url = "tls+tcp://127.0.0.1:%d" % port
        f.conf_extra = ("tls_ca = %s\ntls_cert_key = %s\nadmin_ca = %s\n"
                        % (fleet_ca, ctrl_pem, admin_ca))
        f.start()
        tls_node = "controller_ca = %s\ncontroller_cert_key = %s\n"

        # 1. The good node enrolls and fetches a policy with a secret.
        f.start_node("edge-1", extra=tls_node % (fleet_ca, edge_pem))
        wait_until(lambda: (f.node_status("edge-1") or {}).get("state")
                   == "up", timeout=20, what="edge-1 up over tls+tcp")
        r = subprocess.run([binary("sluice-node"), "--check-config",
                            "--config", os.path.join(f.dir, "edge-1",
                                                     "node.conf")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "configuration ok" in r.stdout, r
        f.ctl("hop", "add", "primary", "--host", "127.0.0.1", "--port",
              "2500", "--tls", "none", "--user", "u", "--secret-stdin",
              input="mtls-hop-secret\n")
        f.wait_node_version("edge-1", f.policy_version(), timeout=20)
        print("ok: node with a fleet-CA certificate enrolled and pulled "
              "the policy over tls+tcp://")
        # The certificate and the key as two files (what Ansible deploys).
        sep_key = pki.path("edge-1.key")
        os.chmod(sep_key, 0o600)
        f.start_node("edge-1b", extra="controller_ca = %s\n"
                     "controller_cert = %s\ncontroller_key = %s\n"
                     % (fleet_ca, pki.path("edge-1.crt"), sep_key))
        f.wait_node_version("edge-1b", f.policy_version(), timeout=20)
        print("ok: controller_cert + controller_key as separate files")

        # 2. Raw TLS clients: the server requires a fleet-CA certificate.
        ok, out = s_client(port, pki)
        assert not ok, out
        ok, out = s_client(port, pki, rogue_pem)
        assert not ok, out
        ok, out = s_client(port, pki, edge_pem)
        assert ok, out
        print("ok: TLS clients without a certificate or with another CA's "
              "are refused in the handshake; a fleet certificate passes")

        # 3. Nodes that must never get through, though enrolled.
        f.start_node("edge-2", extra=tls_node % (fleet_ca, rogue_pem))
        f.start_node("edge-3", extra=tls_node % (
            pki.path("rogue-ca.crt"), edge_pem))
        # Both sides log the failed handshakes with what nng 1.5 tells:
        # the node the controller's URL and the kind of failure, the
        # controller its listener and how many (no peer address in nng).
        for name in ("edge-2", "edge-3"):
            wait_until(lambda: "%s: TLS handshake failed: a certificate "
                       "was not accepted" % f.node_url
                       in f.nodes[name].output(), timeout=20,
                       what="%s logs the failed handshake" % name)
        wait_until(lambda: re.search(
            r"rpc %s: \d+ connection\(s\) refused in the last \d+ s: "
            r"TLS handshake failed" % re.escape(f.node_url),
            f.controllers[0].output()), timeout=20,
            what="the controller logs the refused handshakes")
        for name in ("edge-2", "edge-3"):
            st = f.node_status(name)
            assert st["state"] == "new", (name, st)
            assert f.nodes[name].alive(), f.nodes[name].output()
        log = f.controllers[0].output()
        assert "hello name=edge-2" not in log, log
        assert "hello name=edge-3" not in log, log
        f.nodes["edge-2"].stop()
        f.nodes["edge-3"].stop()
        print("ok: a node with another CA's certificate, and a node that "
              "does not trust the controller's CA, never reach it")

        # 4. Refused at start, with the reason, before any socket.
        node_refused_at_start(
            f, "edge-4", "", [f.node_url],
            ["tls+tcp://", "mutual TLS", "controller_ca and "
             "controller_cert_key"])
        node_refused_at_start(
            f, "edge-5", "", ["tcp://192.0.2.1:7701"],
            ["refusing tcp://192.0.2.1:7701", "non-loopback",
             "unencrypted", "insecure = yes"])
        loose = pki.path("loose.pem")
        with open(loose, "w") as fh:
            fh.write(open(edge_pem).read())
        os.chmod(loose, 0o644)
        node_refused_at_start(
            f, "edge-6", tls_node % (fleet_ca, loose), [f.node_url],
            ["readable by every user", "0644"])
        # The controller: plain tcp on every interface is refused.
        bad = Proc([binary("sluice-controller"), "--config",
                    f.controller_conf("tcp://0.0.0.0:%d" % free_port(),
                                      "ipc://%s/a2.sock" % f.dir, 9)],
                   os.path.join(f.dir, "controller-bad.log")).start()
        assert bad.wait(20) != 0
        out = bad.output()
        assert "every interface" in out and "insecure = yes" in out, out
        # insecure = yes lets nodes in over plain tcp, never remote admin
        saved = f.conf_extra
        f.conf_extra = saved + "insecure = yes\n"
        bad = Proc([binary("sluice-controller"), "--config",
                    f.controller_conf("tcp://127.0.0.1:%d" % free_port(),
                                      "tcp://0.0.0.0:%d" % free_port(), 8)],
                   os.path.join(f.dir, "controller-bad2.log")).start()
        f.conf_extra = saved
        assert bad.wait(20) != 0
        out = bad.output()
        assert "every interface" in out and "admin_ca" in out, out
        print("ok: tls+tcp:// without certificates, plain tcp:// off "
              "loopback (node, controller) and a world-readable key are "
              "refused at start with the reason")

        # 5. Remote admin over mutual TLS with the admin CA.
        aport = free_port()
        admin_tls = "tls+tcp://127.0.0.1:%d" % aport
        c2 = f.start_controller("tls+tcp://127.0.0.1:%d" % free_port(),
                                admin_tls, wait=False)

        def remote(*args, ca=fleet_ca, cert=admin_pem):
            argv = [binary("sluicectl"), "--admin", admin_tls]
            if ca:
                argv += ["--admin-ca", ca]
            if cert:
                argv += ["--admin-cert-key", cert]
            return subprocess.run(argv + list(args), capture_output=True,
                                  text=True, timeout=30)
        r = wait_until(lambda: remote("node", "list").returncode == 0 and
                       remote("node", "list"), timeout=20,
                       what="remote admin over tls+tcp")
        assert "edge-1" in r.stdout, r.stdout
        r = remote("node", "list", cert=edge_pem)
        assert r.returncode != 0, r
        r = remote("node", "list", cert=None)
        assert r.returncode != 0 and "--admin-cert-key" in r.stderr, r
        assert c2.alive()
        print("ok: remote sluicectl needs an admin-CA certificate; a "
              "node's certificate is refused")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
