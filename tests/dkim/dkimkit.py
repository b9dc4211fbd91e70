"""dkimkit.py - DKIM keys and offline verification for tests: keys made
with the openssl CLI, their DNS TXT records, and dkimcheck.py (dkimpy,
run by the Debian interpreter that has python3-dkim)."""
import base64
import json
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PY = "/usr/bin/python3"


def make_key(path, alg):
    """Writes a PKCS#8 PEM private key; returns its TXT record."""
    if alg == "rsa":
        cmd = ["openssl", "genpkey", "-algorithm", "RSA",
               "-pkeyopt", "rsa_keygen_bits:2048"]
    else:
        cmd = ["openssl", "genpkey", "-algorithm", "ed25519"]
    subprocess.run(cmd + ["-out", path], check=True, capture_output=True)
    return txt_record(open(path).read(), alg)


def txt_record(pem, alg):
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"],
                         input=pem.encode(), check=True,
                         capture_output=True).stdout
    if alg == "ed25519":
        der = der[-32:]   # RFC 8463 4.2: the raw public key
    return "v=DKIM1; k=%s; p=%s" % (alg, base64.b64encode(der).decode())


def verify(records, paths, tmpdir):
    """Runs dkimcheck over messages; returns (ok, output)."""
    rec = os.path.join(tmpdir, "records.json")
    with open(rec, "w") as f:
        json.dump(records, f)
    r = subprocess.run([DEBIAN_PY, os.path.join(HERE, "dkimcheck.py"), rec]
                       + list(paths), capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


# Real-world shapes of message, by name: CRLF text, un-dot-stuffed.
HDR = ("From: Alice Example <alice@example.com>\r\n"
       "To: bob@example.net\r\n"
       "Subject: %s\r\n"
       "Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
       "Message-ID: <%s@example.com>\r\n")

att = base64.encodebytes(os.urandom(3000)).decode().replace("\n", "\r\n")
MESSAGES = {
    "7bit": HDR % ("plain", "a") + "\r\nHello Bob,\r\n\r\nregards\r\n",
    "8bit": (HDR % ("8bit", "b") + "MIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\n"
             "Gr\u00fc\u00dfe aus K\u00f6ln \u2013 \u65e5\u672c\r\n"),
    "multipart": (HDR % ("attachment", "c") + "MIME-Version: 1.0\r\n"
                  "Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n"
                  "\r\nThis is MIME.\r\n--XyZ\r\n"
                  "Content-Type: text/plain\r\n\r\nsee attached\r\n"
                  "--XyZ\r\nContent-Type: application/octet-stream\r\n"
                  "Content-Transfer-Encoding: base64\r\n"
                  "Content-Disposition: attachment; filename=x.bin\r\n"
                  "\r\n" + att + "--XyZ--\r\n"),
    "folded": ("From: Alice <alice@example.com>\r\n"
               "To: " + ",\r\n ".join("u%d@example.net" % i
                                      for i in range(40)) + "\r\n"
               "Subject: a very long subject line that goes on\r\n"
               "\tand on   across\r\n  three lines  \r\n"
               "X-Long: " + "y" * 900 + "\r\n"
               "Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
               "\r\nbody\r\n"),
    "dots": (HDR % ("dots", "d") + "\r\n.\r\n..\r\n.leading dot\r\n"
             "...\r\n. \r\nend\r\n"),
    "crlf": (HDR % ("crlf", "e") + "\r\n  \r\nline with trailing  \t\r\n"
             "\r\n \t \r\nin  between\tspaces\r\n\r\n\r\n \r\n\r\n"),
    "notrailing": HDR % ("no final crlf", "f") + "\r\nlast line",
    "emptybody": HDR % ("empty", "g") + "\r\n",
    "headeronly": HDR % ("header only", "h"),
    "fromcase": ("FROM: <Alice@Sub.Example.COM>\r\nsubject: x\r\n\r\n"
                 "x\r\n"),
}


def records_of(text):
    """{name.: value} from `sluicectl dkim add/dns` lines (quoted strings
    joined)."""
    out = {}
    for ln in text.splitlines():
        m = re.match(r"^(\S+) IN TXT (.*)$", ln)
        if m:
            out[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return out
