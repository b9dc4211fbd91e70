"""The spool's filesystem fills up (docs/security.md, "Faults").

The node's spool is a small tmpfs (skipped when mount is not permitted).
Once a filler file takes every free block, a message that must spill to
disk (over 256 KiB) is answered 452 4.3.1 and nothing is queued for it; the
node stays up and serves the next command.  When the filler is removed the
same message is accepted and delivered, and the delivery record in
PostgreSQL holds every acknowledged message: the event journal (on the same
full disk) lost nothing either.
"""
import errno
import os
import re
import smtplib
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "delivery"))
from fleet import Fleet, free_port, wait_until  # noqa: E402
from dlvkit import Upstream  # noqa: E402

BIG = 1024 * 1024  # spills to queue/tmp (past 256 KiB)


def fill(path):
    """Writes zeros until ENOSPC; returns the bytes written."""
    n = 0
    chunk = b"\0" * 65536
    # unbuffered: a short last write leaves nothing for close() to retry
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        try:
            os.fsync(f.fileno())
        except OSError:
            pass
    # tmpfs keeps a partial page: fill to the last byte
    while True:
        try:
            with open(path, "ab") as f:
                f.write(b"\0" * 512)
            n += 512
        except OSError:
            return n


def message(mid, size):
    body = ("x" * 76 + "\r\n") * (size // 78 + 1)
    return "Subject: big\r\nMessage-ID: %s\r\n\r\n%s" % (mid, body)


def send(port, mid, size):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.test")
    s.mail("a@example.com")
    s.rcpt("b@example.net")
    code, resp = s.data(message(mid, size))
    # the session survives a refusal: NOOP still answered
    assert s.noop()[0] == 250
    s.quit()
    return code, resp.decode()


def main():
    mnt = tempfile.mkdtemp(prefix="sluice-spoolfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80m,mode=0700",
                        "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP: cannot mount a tmpfs (%s)" % r.stderr.strip())
        os.rmdir(mnt)
        return
    try:
        run(mnt)
    finally:
        subprocess.run(["umount", "-l", mnt])
        os.rmdir(mnt)
    print("1 passed, 0 failed")


def run(mnt):
    with Fleet("diskfull", heartbeat_ms=200).start() as f:
        sink = Upstream(f.dir, "sink").start()
        f.ctl("network", "allow", "127.0.0.0/8")
        f.ctl("hop", "add", "sink", "--host", "127.0.0.1", "--port",
              str(sink.port), "--tls", "none")
        f.ctl("route", "set", "*", "sink")
        port = free_port()
        spool = os.path.join(mnt, "spool")
        os.mkdir(spool, 0o700)
        f.start_node("edge-1", extra="listen = 127.0.0.1:%d relay\n"
                     "hostname = relay.test\nspool = %s\n" % (port, spool))
        f.wait_node_version("edge-1", f.policy_version(), timeout=20)
        acked = []

        code, resp = send(port, "<d0@full.test>", BIG)
        assert code == 250, (code, resp)
        acked.append("<d0@full.test>")

        filler = os.path.join(mnt, "filler")
        n = fill(filler)
        print("filled the spool filesystem with %d MiB" % (n >> 20))
        for i in range(3):
            code, resp = send(port, "<full%d@full.test>" % i, BIG)
            assert code == 452 and resp.startswith("4.3.1"), (code, resp)
        print("ok: full disk: 452 %s" % resp)
        node = f.nodes["edge-1"]
        assert node.alive()
        wait_until(lambda: "4.3.1" in node.output() or "ENOSPC" in
                   node.output() or "No space" in node.output(),
                   what="the node to log the full disk")

        os.unlink(filler)
        code, resp = send(port, "<d1@full.test>", BIG)
        assert code == 250, (code, resp)
        acked.append("<d1@full.test>")
        print("ok: space back: 250 %s" % resp)

        wait_until(lambda: len(sink.messages()) >= len(acked), timeout=30,
                   what="delivery of the acknowledged messages")
        got = sorted(re.search(r"Message-ID: (<[^>]+>)", m["data"]).group(1)
                     for m in sink.messages())
        assert got == sorted(acked), got
        wait_until(lambda: f.pg.psql(
            "SELECT count(*) FROM events WHERE kind = 'delivered'") == "2",
            timeout=30, what="delivered events in PostgreSQL")
        rec = f.pg.psql("SELECT message_id FROM events WHERE kind = "
                        "'received' ORDER BY 1").split()
        assert rec == sorted(acked), rec
        assert node.alive()
        print("ok: refused messages were not queued; acknowledged ones "
              "delivered and recorded")
        f.stop()
    sink.stop()


if __name__ == "__main__":
    main()
