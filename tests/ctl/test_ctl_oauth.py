"""ctl_oauth: XOAUTH2 hops through sluicectl against a real controller
(issue 15).  `hop add --oauth2 m365` with a client secret or a
certificate key file, `--oauth2 google` with a service account file;
incomplete ones refused with one line; `hop list --json`, `policy export`
and `policy show` never carry the credential; export applies back as no
change (credentials by reference); a YAML file with cert_key_file and
service_account_file applies; `policy check -f` refuses an incomplete
oauth2 hop with one line naming the file line."""
import json
import os
import subprocess

from fleet import Fleet, binary

SECRET = "m365-client-s3cret-never-shown"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def one_line_error(r, what):
    check(r.returncode == 1, "%s: exit %d, want 1 (%r %r)"
          % (what, r.returncode, r.stdout, r.stderr))
    check(r.stderr.count("\n") == 1 and r.stderr.startswith("sluicectl: "),
          "%s: stderr must be one 'sluicectl: ' line: %r" % (what, r.stderr))


def version(f):
    v = f.ctl_json("policy", "history")["versions"]
    return v[0]["version"] if v else 0


def main():
    f = Fleet("ctloauth")
    os.chmod(f.dir, 0o755)
    with f:
        f.start_pg()
        dbs = f.pg.psql("SELECT datname FROM pg_database", db="postgres")
        if "sluice" not in dbs.split():
            f.pg.create_db("sluice")
        f.start_controller()
        run(f)
    print("ok")


def run(f):
    d = f.dir
    key, crt, pem = (os.path.join(d, n) for n in ("app.key", "app.crt",
                                                  "app.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=app"], check=True, capture_output=True)
    with open(pem, "w") as fh:
        fh.write(open(key).read() + open(crt).read())
    sa = os.path.join(d, "sa.json")
    with open(sa, "w") as fh:
        json.dump({"type": "service_account", "project_id": "p",
                   "private_key": open(key).read(),
                   "client_email": "relay@p.iam.gserviceaccount.com",
                   "token_uri": "https://oauth2.googleapis.com/token"}, fh)

    # -- hop add
    v0 = version(f)
    f.ctl("hop", "add", "o365", "--oauth2", "m365", "--tenant",
          "contoso.example", "--client-id", "app-1", "--user",
          "app@contoso.example", "--client-secret-stdin", input=SECRET)
    f.ctl("hop", "add", "o365c", "--oauth2", "m365", "--tenant",
          "contoso.example", "--client-id", "app-1", "--user",
          "app@contoso.example", "--cert-key-file", pem)
    f.ctl("hop", "add", "gw", "--oauth2", "google", "--service-account-file",
          sa, "--impersonate", "app@example.com", "--token-url",
          "https://127.0.0.1:1/token")
    check(version(f) == v0 + 3, "three versions")
    for what, args, want in [
            ("no client id", ["o2", "--oauth2", "m365", "--tenant", "t",
                              "--user", "a@b.example",
                              "--client-secret-stdin"], "client_id"),
            ("no credential", ["o3", "--oauth2", "m365", "--tenant", "t",
                               "--client-id", "c", "--user", "a@b.example"],
             "client secret"),
            ("no tenant", ["o4", "--oauth2", "m365", "--client-id", "c",
                           "--user", "a@b.example", "--client-secret-stdin"],
             "tenant"),
            ("google without user", ["g2", "--oauth2", "google",
                                     "--service-account-file", sa],
             "impersonate"),
            ("cert not a key", ["o5", "--oauth2", "m365", "--tenant", "t",
                                "--client-id", "c", "--user", "a@b.example",
                                "--cert-key-file", crt], "private key"),
            ("key without cert", ["o6", "--oauth2", "m365", "--tenant", "t",
                                  "--client-id", "c", "--user",
                                  "a@b.example", "--cert-key-file", key],
             "certificate"),
            ("plain http", ["o7", "--oauth2", "m365", "--tenant", "t",
                            "--client-id", "c", "--user", "a@b.example",
                            "--client-secret-stdin", "--token-url",
                            "http://x.example/t"], "https"),
            ("bad kind", ["o8", "--oauth2", "yahoo"], "m365|google")]:
        r = f.ctl("hop", "add", *args, input="x", check=False)
        one_line_error(r, what)
        check(want in r.stderr, "%s: %r" % (what, r.stderr))
    check(version(f) == v0 + 3, "refusals changed nothing")

    # -- nothing shows the credential
    hops = {h["name"]: h for h in f.ctl_json("hop", "list")["hops"]}
    check(hops["o365"]["oauth2"] == "m365" and hops["o365"]["has_secret"]
          and hops["o365"]["tenant"] == "contoso.example"
          and hops["o365"]["host"] == "smtp.office365.com"
          and hops["o365"]["port"] == 587 and hops["o365"]["tls"] ==
          "require", hops["o365"])
    check(hops["o365c"]["cert_key"] is True, hops["o365c"])
    check(hops["gw"]["client_id"] == "relay@p.iam.gserviceaccount.com" and
          hops["gw"]["user"] == "app@example.com" and
          hops["gw"]["host"] == "smtp.gmail.com", hops["gw"])
    listing = f.ctl("hop", "list").stdout
    check("oauth2 cert" in listing and "oauth2 key" in listing, listing)
    export = f.ctl("policy", "export").stdout
    shown = f.ctl("--json", "policy", "show").stdout
    for text in (export, shown, json.dumps(hops), listing):
        check(SECRET not in text and "PRIVATE KEY" not in text, text)
    for want in ("oauth2: m365", "tenant: contoso.example",
                 "client_id: app-1", "cert_key: keep",
                 "client_id: relay@p.iam.gserviceaccount.com",
                 "token_url: \"https://127.0.0.1:1/token\""):
        check(want.replace('"', "") in export.replace('"', ""),
              "%s not in export:\n%s" % (want, export))

    # -- export round-trips by reference: applying it changes nothing
    path = os.path.join(d, "p.yaml")
    with open(path, "w") as fh:
        fh.write(export)
    v1 = version(f)
    r = f.ctl("policy", "apply", "-f", path)
    check(version(f) == v1 and "no changes" in r.stdout, r.stdout)

    # -- a file with the credential files applies
    y = export.replace("hops:\n", "hops:\n"
                       "  - name: o365y\n    oauth2: m365\n"
                       "    tenant: fabrikam.example\n"
                       "    client_id: app-2\n"
                       "    user: relay@fabrikam.example\n"
                       "    cert_key_file: %s\n"
                       "  - name: gwy\n    preset: google\n"
                       "    oauth2: google\n"
                       "    impersonate: app@example.org\n"
                       "    service_account_file: %s\n" % (pem, sa), 1)
    with open(path, "w") as fh:
        fh.write(y)
    f.ctl("policy", "apply", "-f", path)
    check(version(f) == v1 + 1, "file applied")
    hops = {h["name"]: h for h in f.ctl_json("hop", "list")["hops"]}
    check(hops["o365y"]["cert_key"] and hops["o365y"]["has_secret"],
          hops["o365y"])
    check(hops["gwy"]["user"] == "app@example.org", hops["gwy"])

    # -- policy check -f: an incomplete oauth2 hop is one line
    bad = os.path.join(d, "bad.yaml")
    nowhere = "ipc://%s/no-controller.sock" % d
    for what, text, want in [
            ("google without key", "hops:\n  - name: g\n    oauth2: google\n"
             "    impersonate: a@example.com\n",
             "bad.yaml:2: hop 'g': oauth2 google needs client_id"),
            ("m365 without secret", "hops:\n  - name: m\n    oauth2: m365\n"
             "    tenant: t.example\n    client_id: c\n"
             "    user: a@t.example\n",
             "bad.yaml:2: hop 'm': oauth2 m365 needs the client secret"),
            ("tenant without oauth2", "hops:\n  - name: h\n"
             "    host: h.example\n    port: 25\n    tls: none\n"
             "    tenant: t.example\n", "bad.yaml:2: "),
            ("cert_key literal", "hops:\n  - name: m\n    oauth2: m365\n"
             "    cert_key: abc\n", "cert_key takes only keep")]:
        with open(bad, "w") as fh:
            fh.write(text)
        r = subprocess.run([binary("sluicectl"), "--admin", nowhere,
                            "policy", "check", "-f", bad],
                           capture_output=True, text=True, timeout=30)
        one_line_error(r, what)
        check(want in r.stderr, "%s: %r" % (what, r.stderr))


if __name__ == "__main__":
    main()
