"""Crash test: clients stream messages on several connections, the node
is SIGKILLed mid-stream, restarted, and the queue must hold every
250-acknowledged message exactly once and no partial ones.

A message whose final dot was sent but whose reply was lost with the
node may be queued (it was durable a moment before the kill) - at most
one per connection; the client never saw a 250 for it and would send it
again, which is SMTP's at-least-once contract.  Anything else queued, or
any acknowledged message missing, fails the test."""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smtpkit import SPOOL_LIST, Node, message, wait_until  # noqa: E402

CONNS = 6


class Streamer(threading.Thread):
    def __init__(self, n, idx):
        super().__init__(daemon=True)
        self.n, self.idx = n, idx
        self.acked = {}           # queue id -> message id
        self.inflight = None      # message id sent, reply not seen
        self.error = None

    def run(self):
        try:
            c = self.n.connect(timeout=30)
            c.expect("220 ")
            c.ehlo()
            i = 0
            while True:
                msgid = "<crash-%d-%d@client.test>" % (self.idx, i)
                i += 1
                # one transaction per send: PIPELINING end to end
                c.send_raw("MAIL FROM:<a@example.com>\r\n"
                           "RCPT TO:<b@example.net>\r\nDATA\r\n")
                c.expect("250 ")
                c.expect("250 ")
                c.expect("354 ")
                self.inflight = msgid
                c.send_raw(message("crash", msgid, size=2000) + ".\r\n")
                r = c.expect("250 ")[-1]
                self.acked[r.split()[-1]] = msgid
                self.inflight = None
        except (OSError, EOFError, AssertionError) as e:
            self.error = e        # the kill; expected


def main():
    with Node("crash", networks=["127.0.0.0/8"]) as n:
        n.start()
        streams = [Streamer(n, i) for i in range(CONNS)]
        for s in streams:
            s.start()
        wait_until(lambda: sum(len(s.acked) for s in streams) >= 200, 60,
                   "200 acknowledged messages")
        n.kill()                              # SIGKILL, mid-stream
        for s in streams:
            s.join(30)
            assert not s.is_alive()
        acked = {}
        inflight = set()
        for s in streams:
            acked.update(s.acked)
            if s.inflight:
                inflight.add(s.inflight)
        # restart: recovery runs, the node serves again
        n.start()
        c = n.connect()
        c.expect("220 ")
        c.close()
        n.stop()
        # the queue, read through the spool API
        out = subprocess.run([SPOOL_LIST, n.spool], capture_output=True,
                             text=True, check=True).stdout
        queued = {}
        for line in out.splitlines():
            qid, nrcpt, msgid = line.split()
            assert qid not in queued, "queued twice: " + qid
            queued[qid] = msgid
        missing = set(acked) - set(queued)
        assert not missing, "acknowledged but lost: %s" % sorted(missing)
        for qid in acked:
            assert queued[qid] == acked[qid], (qid, queued[qid], acked[qid])
        extra = {q: m for q, m in queued.items() if q not in acked}
        assert set(extra.values()) <= inflight, (extra, inflight)
        assert len(set(queued.values())) == len(queued), "duplicate msgid"
        print("ok: %d acknowledged, %d queued, %d in flight at the kill"
              % (len(acked), len(queued), len(inflight)))


if __name__ == "__main__":
    main()
