"""test_verify.py - signatures made by node/dkim.c (through
sluice-dkim-sign) verify with dkimpy, an independent implementation:
7-bit, 8-bit, multipart with an attachment, long folded headers, lines
that were dot-stuffed on the wire, CRLF edge cases; relaxed and simple;
RSA-SHA256 and Ed25519-SHA256, alone and dual; any chunking.  A message
changed after signing must fail (the verifier is not a rubber stamp)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dkimkit  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))
from scratch import scratch_dir  # noqa: E402

BUILD = os.environ.get("SLUICE_BUILD", "build")
SIGN = os.path.join(BUILD, "tests", "sluice-dkim-sign")

def sign(keys, domain, msg, canon, chunk, tmp, name):
    args = [SIGN, "-c", canon, "-n", str(chunk)]
    for sel, path in keys:
        args += ["-k", "%s:%s" % (sel, path)]
    r = subprocess.run(args + [domain], input=msg.encode(),
                       capture_output=True, check=True)
    out = r.stdout.split(b"\n", 1)
    assert out[0].startswith(b"# from-domain "), out[0]
    path = os.path.join(tmp, name + ".eml")
    with open(path, "wb") as f:
        f.write(out[1])
    return out[0][14:].decode(), path


def main():
    tmp = scratch_dir("sluice-dkim-")
    rsa, ed = os.path.join(tmp, "rsa.pem"), os.path.join(tmp, "ed.pem")
    records = {
        "r1._domainkey.example.com.": dkimkit.make_key(rsa, "rsa"),
        "e1._domainkey.example.com.": dkimkit.make_key(ed, "ed25519"),
        "r1._domainkey.sub.example.com.": open(rsa).read() and
        dkimkit.txt_record(open(rsa).read(), "rsa"),
    }
    paths = []
    for name, msg in dkimkit.MESSAGES.items():
        domain = "sub.example.com" if name == "fromcase" else "example.com"
        keysets = {"rsa": [("r1", rsa)], "ed": [("e1", ed)],
                   "dual": [("r1", rsa), ("e1", ed)]}
        if domain != "example.com":
            keysets = {"rsa": [("r1", rsa)]}
        for kname, keys in keysets.items():
            for canon in ("relaxed", "simple"):
                # chunking matters to the streaming code, not to the
                # canonicalisation: one pass of simple is enough
                for chunk in ((1, 7, 65536) if canon == "relaxed"
                              else (65536,)):
                    tag = "%s-%s-%s-%d" % (name, kname, canon, chunk)
                    got, p = sign(keys, domain, msg, canon, chunk, tmp, tag)
                    want = domain
                    assert got == want, (tag, got)
                    paths.append(p)
    ok, out = dkimkit.verify(records, paths, tmp)
    print("\n".join(l for l in out.splitlines() if not l.startswith("ok ")))
    assert ok, "dkimpy refused a signature"
    assert out.count("ok ") == len(paths), out

    # Tampering must fail: a body octet, a signed header, an added From.
    _, p = sign([("r1", rsa), ("e1", ed)], "example.com",
                dkimkit.MESSAGES["7bit"], "relaxed", 4096, tmp, "tamper")
    signed = open(p, "rb").read()
    bad = [signed.replace(b"Hello Bob", b"Hello Eve"),
           signed.replace(b"Subject: plain", b"Subject: plain!"),
           signed.replace(b"\r\n\r\nHello", b"\r\nFrom: eve@evil.test"
                          b"\r\n\r\nHello")]
    for i, b in enumerate(bad):
        q = os.path.join(tmp, "bad%d.eml" % i)
        open(q, "wb").write(b)
        ok, out = dkimkit.verify(records, [q], tmp)
        assert not ok, ("tampered message %d verified" % i, out)
    # Relaxed survives what relaxed forgives: refolding, WSP, case.
    q = os.path.join(tmp, "refold.eml")
    open(q, "wb").write(signed.replace(b"Subject: plain",
                                       b"subject:   plain  ")
                        .replace(b"Hello Bob,", b"Hello   Bob,  "))
    ok, out = dkimkit.verify(records, [q], tmp)
    assert ok, ("relaxed refused a relaxed-equivalent message", out)
    print("dkim verify: %d signed messages verified, tampering caught"
          % len(paths))


if __name__ == "__main__":
    main()
