#!/usr/bin/python3
"""dkimcheck.py - verifies every DKIM-Signature of a message with dkimpy
(Debian's python3-dkim), an implementation independent of sluice's, and
offline: TXT records come from a JSON file {"sel._domainkey.dom.": "v=..."}.

  dkimcheck.py RECORDS.json MESSAGE...

Prints one line per message: "ok N" (N signatures, all valid) or
"fail ..." and exits non-zero if any message fails.  Run with the Debian
interpreter (/usr/bin/python3), where python3-dkim lives."""
import json
import sys

import dkim


def main():
    with open(sys.argv[1]) as f:
        records = json.load(f)

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        r = records.get(n) or records.get(n.rstrip("."))
        return r.encode() if r is not None else None

    bad = 0
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            msg = f.read()
        d = dkim.DKIM(msg)
        sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
        results = []
        for i in range(len(sigs)):
            try:
                results.append(d.verify(idx=i, dnsfunc=dnsfunc))
            except dkim.DKIMException as e:
                results.append(False)
                print("error", path, i, e, file=sys.stderr)
        if sigs and all(results):
            print("ok", len(sigs), path)
        else:
            bad += 1
            print("fail", path, results)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
