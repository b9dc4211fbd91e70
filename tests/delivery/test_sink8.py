"""delivery_sink8: 8BITMIME against a real peer, Postfix's smtp-sink
(docs/delivery.md, "8BITMIME").  Skipped (exit 0 with a note) when
smtp-sink is not installed.

  smtp-sink     (offers 8BITMIME): MAIL ... BODY=8BITMIME, data byte
                for byte (its dump file's X-Mail-Args and content)
  smtp-sink -8  (does not):        MAIL without BODY=, 7-bit data,
                quoted-printable that decodes to the original body
"""
import email
import email.policy
import glob
import os
import sys

from dlvkit import (Node, Scenario, free_port, message, port_open,
                    split_received, wait_until)
from fleet import Proc

SINK = "/usr/sbin/smtp-sink"
BODY = "Grüße, ça va? — 日本語\r\n".encode()


class Sink:
    def __init__(self, d, name, *opts):
        self.dir = os.path.join(d, name)
        os.makedirs(self.dir)
        os.chmod(d, 0o711)          # smtp-sink drops to nobody
        os.chmod(self.dir, 0o777)
        self.port = free_port()
        self.proc = Proc([SINK] + list(opts) + [
            "-u", "nobody", "-d", os.path.join(self.dir, "%H%M%S"),
            "127.0.0.1:%d" % self.port, "10"],
            os.path.join(d, name + ".log")).start()
        wait_until(lambda: port_open("127.0.0.1", self.port), 10,
                   "smtp-sink %s" % name)

    def stop(self):
        self.proc.stop()

    def dumps(self):
        out = []
        for f in sorted(glob.glob(os.path.join(self.dir, "*"))):
            with open(f, "rb") as fh:
                raw = fh.read()
            env, _, data = raw.partition(b"\nReceived: from ")
            if not data:
                continue    # still being written
            # smtp-sink's dump: its X- envelope lines (LF), then its own
            # Received: (LF), then the message as received
            lines = (b"Received: from " + data).split(b"\n")
            k = 1
            while lines[k].startswith((b"\t", b" ")):
                k += 1
            out.append((env, b"\r\n".join(lines[k:])))
        return out


def main():
    if not os.access(SINK, os.X_OK):
        print("skipped: %s not installed (apt-get install postfix)" % SINK)
        sys.exit(77)        # CTest reports the test as skipped, not passed
    with Scenario("sink8") as sc:
        full = sc.add(Sink(sc.dir, "full"))
        seven = sc.add(Sink(sc.dir, "seven", "-8"))
        node = sc.add(Node(sc.dir, hops=[
            "full:host=127.0.0.1,port=%d" % full.port,
            "seven:host=127.0.0.1,port=%d" % seven.port],
            routes=["*=full", "seven.test=seven"])).start()
        data = message("sink8", body="") + BODY
        node.send("a@example.com", ["b@full.test"], data)
        node.send("a@example.com", ["c@seven.test"], data)
        env, got = wait_until(full.dumps, 20, "dump at smtp-sink")[0]
        assert b"BODY=8BITMIME" in env.upper(), env
        assert split_received(got)[1].rstrip(b"\r\n") == \
            data.rstrip(b"\r\n"), got
        env, got = wait_until(seven.dumps, 20, "dump at smtp-sink -8")[0]
        assert b"BODY=" not in env.upper(), env
        assert max(got) < 128, got
        msg = email.message_from_bytes(split_received(got)[1],
                                       policy=email.policy.compat32)
        assert msg["Content-Transfer-Encoding"] == "quoted-printable"
        assert msg.get_payload(decode=True).rstrip(b"\r\n") == \
            BODY.rstrip(b"\r\n"), msg.get_payload()
        print("ok")


if __name__ == "__main__":
    sys.exit(main())
