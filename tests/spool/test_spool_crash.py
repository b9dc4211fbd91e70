"""test_spool_crash.py - SIGKILL a committing process at random moments.

spool_crash keeps 16 messages in flight through the spool and prints
"ACK <queue id> <size>" once each commit callback said ok (when a session
would answer 250).  We kill it with SIGKILL several times at random
moments, restart it on the same spool each time, and check with spool_list
that every acknowledged message is queued exactly once, with its full size,
and nothing else half-written is: every listed message carries the size it
was written with (in its sender), and tmp/ is empty after recovery.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("SLUICE_BUILD", os.path.join(
    os.path.dirname(__file__), "..", "..", "build"))
CRASH = os.path.join(BUILD, "tests", "spool_crash")
LIST = os.path.join(BUILD, "tests", "spool_list")


def listing(spool):
    out = subprocess.run([LIST, spool], check=True, capture_output=True,
                         text=True).stdout
    rows = {}
    for line in out.splitlines():
        qid, rest = line.split(" ", 1)
        assert qid not in rows, "queue id listed twice: %s" % qid
        f = dict(kv.split("=", 1) for kv in rest.split(" "))
        rows[qid] = f
    return rows


def run_once(spool, seconds, outpath, churn=False):
    # stdout to a file: a pipe we did not drain would stall the writer.
    with open(outpath, "w") as out:
        p = subprocess.Popen([CRASH, spool, "0", "16", "1" if churn else "0"],
                             stdout=out,
                             stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            with open(outpath) as f:
                if f.readline() == "READY\n":
                    break
            assert time.monotonic() < deadline, "spool_crash not ready"
            time.sleep(0.01)
        # The kill comes at a random moment after the first commit was
        # acknowledged: on a loaded machine the first fdatasync alone can
        # take longer than the shortest random delay, and a round with
        # nothing acknowledged proves nothing.
        deadline = time.monotonic() + 60
        while True:
            with open(outpath) as f:
                if any(ln.startswith("ACK ") and ln.endswith("\n")
                       for ln in f):
                    break
            assert p.poll() is None, "spool_crash exited: %s" % p.returncode
            assert time.monotonic() < deadline, "no commit acknowledged"
            time.sleep(0.01)
        time.sleep(seconds)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    with open(outpath) as f:
        text = f.read()
    acked, removed, done, asked = {}, set(), set(), set()
    recycled = 0
    # The last line may be cut by the kill: only whole lines count.
    for line in text.split("\n")[:-1]:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ACK":
            acked[parts[1]] = int(parts[2])
        elif len(parts) == 2 and parts[0] == "RM":
            removed.add(parts[1])
        elif len(parts) == 3 and parts[0] == "DONE":
            done.add(parts[1])
        elif len(parts) == 2 and parts[0] == "RMREQ":
            asked.add(parts[1])
        elif len(parts) == 2 and parts[0] == "RECYCLED":
            recycled = int(parts[1])
    return acked, removed, done, asked, recycled


def check(spool, all_acked, removed, done, asked):
    rows = listing(spool)
    # A removal asked for but not confirmed before the kill may or may not
    # have happened.
    missing = set(all_acked) - asked - set(rows)
    assert not missing, "acknowledged but lost: %s" % sorted(missing)[:5]
    back = removed & set(rows)
    assert not back, "removed but back after restart: %s" % sorted(back)[:5]
    for qid, row in rows.items():
        size = int(row["size"])
        assert row["from"] == "<crash-%d@test>" % size, \
            "%s: partial message %r" % (qid, row)
        if qid in all_acked:
            assert all_acked[qid] == size, (qid, size)
        if qid in done and qid not in asked:
            assert row["to"].startswith("<one@example.net>:delivered"), \
                "%s: recipient state lost: %r" % (qid, row)
    return rows


def crash_rounds(top, name, rnd, churn):
    spool = os.path.join(top, name)
    all_acked, removed, done, asked = {}, set(), set(), set()
    recycled = 0
    for i in range(6):
        acked, rm, dn, ask, rec = run_once(spool, rnd.uniform(0.05, 0.5),
                                 os.path.join(top, "%s.%d" % (name, i)),
                                 churn)
        dup = set(acked) & set(all_acked)
        assert not dup, "queue id reused after restart: %s" % dup
        assert len(acked) > 0, "nothing acknowledged in a round"
        all_acked.update(acked)
        removed |= rm
        done |= dn
        asked |= ask
        recycled += rec
        assert rm <= ask
        rows = check(spool, all_acked, removed, done, asked)
        segs = [f for f in os.listdir(os.path.join(spool, "queue"))
                if f.endswith(".seg")]
        print("%s round %d: %d acked (%d total), %d removed, %d queued, "
              "%d segments" % (name, i, len(acked), len(all_acked),
                               len(removed), len(rows), len(segs)))
    # Under churn, reclaimed segments were reused as new ones between
    # the kills (their old records must not come back: check() above).
    assert not churn or recycled > 0, "no segment was recycled"
    # A clean recovery: tmp/ is emptied, the queue is unchanged.
    before = listing(spool)
    subprocess.run([CRASH, spool, "-1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = os.path.join(spool, "queue", "tmp")
    assert os.listdir(tmp) == [], os.listdir(tmp)
    assert listing(spool) == before
    # Unacknowledged messages may be queued (killed between the
    # fdatasync and the print): at most the 16 in flight per round.
    extra = set(before) - set(all_acked)
    assert len(extra) <= 16 * 6, len(extra)
    print("%s ok: %d acknowledged, all queued exactly once; %d removed "
          "stay removed; %d queued without an ack (in flight at the kill); "
          "%d segments recycled"
          % (name, len(all_acked), len(removed), len(extra), recycled))


def main():
    for b in (CRASH, LIST):
        if not os.path.exists(b):
            print("missing %s (build the spool_crash and spool_list "
                  "targets)" % b)
            return 1
    seed = int(os.environ.get("SEED", time.time()))
    print("SEED=%d" % seed)
    rnd = random.Random(seed)
    top = tempfile.mkdtemp(prefix="spool_crash.")
    try:
        crash_rounds(top, "ingest", rnd, churn=False)
        crash_rounds(top, "churn", rnd, churn=True)
        return 0
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
