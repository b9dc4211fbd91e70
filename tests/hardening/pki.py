"""pki.py - a throwaway PKI for hardening tests, made with the openssl CLI:
CAs and leaf certificates (EC P-256, serverAuth + clientAuth) written as the
combined PEM files (certificate chain + key, mode 0600) that sluice's
tls_cert_key / controller_cert_key / --admin-cert-key take."""
import os
import subprocess


def _run(args):
    subprocess.run(["openssl"] + args, check=True, capture_output=True)


class Pki:
    def __init__(self, d):
        self.d = d
        os.makedirs(d, exist_ok=True)

    def path(self, name):
        return os.path.join(self.d, name)

    def ca(self, name):
        """A self-signed CA; returns the CA certificate path."""
        key, crt = self.path(name + ".key"), self.path(name + ".crt")
        _run(["req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
              "-out", crt, "-days", "2", "-subj", "/CN=%s" % name,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return crt

    def leaf(self, name, ca, cn, dns=(), ips=()):
        """A certificate for cn signed by CA `ca`; returns the combined
        PEM path (mode 0600)."""
        key, csr = self.path(name + ".key"), self.path(name + ".csr")
        crt, ext = self.path(name + ".crt"), self.path(name + ".ext")
        _run(["req", "-new", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
              "-out", csr, "-subj", "/CN=%s" % cn])
        san = ["DNS:%s" % x for x in dns] + ["IP:%s" % x for x in ips]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write("keyUsage=critical,digitalSignature\n")
            f.write("extendedKeyUsage=serverAuth,clientAuth\n")
            if san:
                f.write("subjectAltName=%s\n" % ",".join(san))
        _run(["x509", "-req", "-in", csr, "-CA", self.path(ca + ".crt"),
              "-CAkey", self.path(ca + ".key"), "-CAcreateserial",
              "-out", crt, "-days", "2", "-extfile", ext])
        pem = self.path(name + ".pem")
        fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(open(crt).read())
            f.write(open(key).read())
        return pem
