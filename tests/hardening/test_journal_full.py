"""The event journal on a full spool filesystem (issue 11).

The node's spool (and so its event journal) is a small loop-mounted ext4
filesystem (skipped when loop mounts are not permitted).  The spool's
first segment preallocates 64 MiB on a 40 MiB filesystem and so takes
every free block.  Before, the journal's next append then failed: messages
still got 250 but their events were dropped.  Now the journal owns its
reserved blocks from the start:
  * messages sent after the spool took the disk are acknowledged and every
    one has its received and delivered events in PostgreSQL;
  * messages with many recipients eat the journal's reservation; once the
    events of one more message would not fit, the node answers 452 4.3.1
    before accepting it, the session goes on, and still every acknowledged
    message has all its events stored.
"""
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "fleet"))
from fleetkit import FleetOps, Upstream, wait_until  # noqa: E402

NRCPT = 60


def send(port, i, nrcpt):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.test")
    rcpts = ["r%03d%s@%s.example.net" % (k, "x" * 58, "d" * 60)
             for k in range(nrcpt)]
    s.mail("a@example.com")
    for r in rcpts:
        code, resp = s.rcpt(r)
        assert code == 250, (code, resp)
    code, resp = s.data(("Subject: j\r\nMessage-ID: <j%d@full.test>\r\n\r\n"
                         "hi\r\n" % i).encode())
    assert s.noop()[0] == 250    # the session survives a refusal
    s.quit()
    return code, resp.decode()


def main():
    base = tempfile.mkdtemp(prefix="sluice-journalfs-")
    img, mnt = os.path.join(base, "fs.img"), os.path.join(base, "mnt")
    os.mkdir(mnt)
    with open(img, "wb") as f:
        f.truncate(40 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    r = subprocess.run(["mount", "-o", "loop", img, mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP: cannot loop-mount (%s)" % r.stderr.strip())
        shutil.rmtree(base)
        return
    try:
        run(mnt)
    finally:
        subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(base, ignore_errors=True)
    print("1 passed, 0 failed")


def run(mnt):
    with FleetOps("journalfull", heartbeat_ms=200) as f:
        f.start()
        up = Upstream(f.dir, "up").start()
        try:
            spool = os.path.join(mnt, "spool")
            os.mkdir(spool, 0o700)
            v = f.relay_policy(up.port)
            f.start_relay("n1", extra="spool = %s\n" % spool)
            f.wait_node_version("n1", v)
            check(f, up, spool)
        finally:
            up.stop()


def stored(f, kind):
    return int(f.pg.psql("SELECT count(*) FROM events WHERE kind = '%s'"
                         % kind))


def check(f, up, spool):
    port = f.smtp_ports["n1"]
    acked = 0
    for i in range(10):
        code, resp = send(port, i, 1)
        assert code == 250, (code, resp)
        acked += 1
    st = os.statvfs(spool)
    print("spool filesystem: %d KiB free after the first segment" %
          (st.f_bavail * st.f_frsize // 1024))
    assert st.f_bavail * st.f_frsize < (1 << 20), "the disk is not full"
    wait_until(lambda: stored(f, "received") == acked and
               stored(f, "delivered") == acked, 30,
               "events of the messages sent on a full disk")
    print("ok: %d messages on a full disk, every event stored" % acked)

    delivered = acked
    refused = None
    for i in range(10, 60):
        code, resp = send(port, i, NRCPT)
        if code == 452:
            refused = resp
            break
        assert code == 250, (code, resp)
        acked += 1
        delivered += NRCPT
    assert refused is not None and refused.startswith("4.3.1"), refused
    print("ok: 452 %s after %d messages of %d recipients" % (
        refused, acked - 10, NRCPT))
    node = f.nodes["n1"]
    assert node.alive()
    assert "event journal has no room" in node.output()
    wait_until(lambda: stored(f, "received") == acked and
               stored(f, "delivered") == delivered, 60,
               "every event of every acknowledged message")
    assert ": append:" not in node.output(), "a journal append failed"
    print("ok: %d acknowledged messages, %d delivered events, none lost" % (
        acked, delivered))


if __name__ == "__main__":
    main()
