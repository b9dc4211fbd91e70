"""sluicectl against a real controller and PostgreSQL: every command in
human and --json form; each change is exactly one new policy version;
mistakes are one line on stderr, exit 1 and change nothing; a policy file
round-trips through export; secrets never come back out."""
import json
import os
import pwd
import subprocess
import sys

from fleet import Fleet, binary

SECRET = "SG.s3cr3t-never-shown-0123456789"
PASSWORD = "app1-password-never-shown"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def one_line_error(r, what):
    check(r.returncode == 1, "%s: exit %d, want 1 (%r %r)"
          % (what, r.returncode, r.stdout, r.stderr))
    check(r.stderr.count("\n") == 1 and r.stderr.startswith("sluicectl: "),
          "%s: stderr must be one 'sluicectl: ' line: %r" % (what, r.stderr))


def main():
    f = Fleet("ctl")
    # PostgreSQL runs as "postgres" when we are root: it must reach its
    # directory inside ours.
    os.chmod(f.dir, 0o755)
    with f:
        f.start_pg()
        dbs = f.pg.psql("SELECT datname FROM pg_database", db="postgres")
        if "sluice" not in dbs.split():
            f.pg.create_db("sluice")
        f.start_controller()
        run(f)
    print("ok")


def version(f):
    v = f.ctl_json("policy", "history")["versions"]
    return v[0]["version"] if v else 0


def mutate(f, *args, input=None):
    """A change through sluicectl: exactly one new version."""
    before = version(f)
    r = f.ctl(*args, input=input)
    after = version(f)
    check(after == before + 1, "%s: version %d -> %d, want +1 (%s)"
          % (" ".join(args), before, after, r.stdout))
    check(("policy version %d" % after) in r.stdout, r.stdout)
    return r


def refused(f, what, *args, input=None):
    before = version(f)
    r = f.ctl(*args, input=input, check=False)
    one_line_error(r, what)
    check(version(f) == before, "%s changed the policy" % what)
    return r


def run(f):
    me = pwd.getpwuid(os.geteuid()).pw_name

    # -- usage and transport errors
    r = f.ctl("frobnicate", "now", check=False)
    check(r.returncode == 2 and r.stderr.count("\n") == 1, r)
    r = f.ctl("--help")
    check("node add" in r.stdout and "policy apply" in r.stdout, r.stdout)
    import subprocess
    from fleet import binary
    r = subprocess.run([binary("sluicectl"), "--admin",
                        "ipc://%s/nobody.sock" % f.dir, "node", "list"],
                       capture_output=True, text=True, timeout=30)
    one_line_error(r, "unreachable controller")
    check("cannot reach controller at ipc://" in r.stderr, r.stderr)

    # -- nodes
    r = f.ctl("node", "add", "edge-1")
    check(r.stdout.startswith("node edge-1 added; enrollment token: ")
          and "(shown once)" in r.stdout, r.stdout)
    tok = f.ctl_json("node", "add", "edge-2")
    check(tok["name"] == "edge-2" and len(tok["token"]) >= 20, tok)
    one_line_error(f.ctl("node", "add", "edge-1", check=False), "dup node")
    r = f.ctl("node", "list")
    lines = r.stdout.splitlines()
    check(lines[0].split() == ["NAME", "STATE", "ADDRESS", "VERSION",
                               "POLICY", "LAST-SEEN", "QUEUE"], lines)
    check(any(line.startswith("edge-1 ") for line in lines), r.stdout)
    nl = f.ctl_json("node", "list")
    check("latest_policy_version" in nl and len(nl["nodes"]) == 2, nl)
    n = nl["nodes"][0]
    for k in ("name", "id", "address", "software_version", "policy_version",
              "last_heartbeat_at", "state", "policy_from_cache", "drift",
              "metrics"):
        check(k in n, "node json lacks %s: %r" % (k, n))
    for k in ("messages", "bytes", "active", "deferred", "held",
              "oldest_age_s", "connections", "accepted", "refused",
              "delivered", "deferred_attempts", "bounced", "auth_failures",
              "hops", "draining", "drained"):
        check(k in n["metrics"], "metrics json lacks %s" % k)
    r = f.ctl("node", "show", "edge-1")
    check("name:" in r.stdout and "edge-1" in r.stdout, r.stdout)
    check(f.ctl_json("node", "show", "edge-1")["name"] == "edge-1", "show")
    one_line_error(f.ctl("node", "show", "nope", check=False), "show nope")
    for verb in ("drain", "resume"):
        r = f.ctl("node", verb, "edge-1", check=False)
        check(r.returncode == 0 or (r.returncode == 1 and
              r.stderr.count("\n") == 1), (verb, r))
    check(f.ctl_json("node", "remove", "edge-2")["ok"] is True, "remove")
    check(f.ctl("node", "show", "edge-2", check=False).returncode == 1,
          "removed node still shown")

    # -- networks
    mutate(f, "network", "allow", "10.0.0.0/8")
    mutate(f, "network", "deny", "10.9.0.0/16")
    r = mutate(f, "network", "allow", "2001:DB8::/32")
    check("2001:db8::/32" in r.stdout, r.stdout)   # canonical
    r = refused(f, "bad CIDR", "network", "allow", "10.0.0.300/8")
    check("10.0.0.300/8" in r.stderr, r.stderr)
    refused(f, "host bits", "network", "allow", "10.0.0.1/8")
    refused(f, "del absent", "network", "del", "192.0.2.0/24")
    r = f.ctl("network", "allow", "10.0.0.0/8")
    check("no changes" in r.stdout, r.stdout)
    nets = f.ctl_json("network", "list")["networks"]
    check({"cidr": "10.9.0.0/16", "action": "deny"} in nets, nets)
    check("10.9.0.0/16" in f.ctl("network", "list").stdout, "net list")
    mutate(f, "network", "allow", "192.0.2.0/24")
    mutate(f, "network", "del", "192.0.2.0/24")

    # -- users
    refused(f, "no password", "user", "add", "app1", "--sender",
            "*@example.com")
    mutate(f, "user", "add", "app1", "--password-stdin", "--sender",
           "*@example.com", "--sender", "ops@example.org", "--rate", "120",
           input=PASSWORD + "\n")
    r = mutate(f, "user", "add", "app1", "--sender", "*@example.com")
    check("updated" in r.stdout, r.stdout)
    refused(f, "bad sender", "user", "add", "app2", "--password-stdin",
            "--sender", "not a pattern", input="x\n")
    users = f.ctl_json("user", "list")["users"]
    check(users[0]["name"] == "app1" and users[0]["has_password"], users)
    check("app1" in f.ctl("user", "list").stdout, "user list")
    mutate(f, "user", "add", "tmp", "--password-stdin", "--sender", "*",
           input="pw\n")
    mutate(f, "user", "del", "tmp")

    # -- hops
    mutate(f, "hop", "add", "primary", "--host", "10.0.0.5", "--port", "25",
           "--tls", "starttls", "--max-conn", "10")
    mutate(f, "hop", "add", "sendgrid", "--preset", "sendgrid",
           "--secret-stdin", input=SECRET + "\n")
    mutate(f, "hop", "add", "ses", "--preset", "ses", "--region",
           "eu-west-1", "--user", "AKIA", "--secret-stdin",
           input="ses-" + SECRET + "\n")
    refused(f, "ses without region", "hop", "add", "ses2", "--preset", "ses")
    # A provider preset without the credentials it needs (issue 10): one
    # line naming the missing flag, nothing stored.
    for name, args, flag in (
            ("sg2", ["--preset", "sendgrid"], "--secret-stdin"),
            ("ses3", ["--preset", "ses", "--region", "eu-west-1"], "--user"),
            ("mg", ["--preset", "mailgun"], "--user"),
            ("mg", ["--preset", "mailgun", "--user", "postmaster@mg.test"],
             "--secret-stdin")):
        r = refused(f, "%s without credentials" % args[1], "hop", "add",
                    name, *args)
        check(len(r.stderr.strip().splitlines()) == 1 and flag in r.stderr
              and "preset %s needs" % args[1] in r.stderr, r.stderr)
    check("sg2" not in f.ctl("hop", "list").stdout, "sg2 not stored")
    # Re-adding a preset hop keeps its stored secret: not refused.
    r = f.ctl("hop", "add", "sendgrid", "--preset", "sendgrid", check=False)
    check(r.returncode == 0 and "no changes" in r.stdout + r.stderr, r)
    r = mutate(f, "hop", "add", "primary", "--host", "10.0.0.6", "--port",
               "25", "--tls", "starttls", "--weight", "2")
    check("updated" in r.stdout, r.stdout)
    hops = {h["name"]: h for h in f.ctl_json("hop", "list")["hops"]}
    check(hops["sendgrid"]["host"] == "smtp.sendgrid.net"
          and hops["sendgrid"]["port"] == 587
          and hops["sendgrid"]["user"] == "apikey"
          and hops["sendgrid"]["tls"] == "require"
          and hops["sendgrid"]["verify_cert"]
          and hops["sendgrid"]["has_secret"], hops["sendgrid"])
    check(hops["ses"]["host"] == "email-smtp.eu-west-1.amazonaws.com"
          and hops["ses"]["max_rcpt"] == 50, hops["ses"])
    check(hops["primary"]["host"] == "10.0.0.6", hops["primary"])
    check("sendgrid" in f.ctl("hop", "list").stdout, "hop list")

    # -- routes
    refused(f, "unknown hop", "route", "set", "*", "primary", "foo")
    mutate(f, "route", "set", "*", "primary", "sendgrid,ses")
    mutate(f, "route", "set", "example.com", "mx")
    routes = f.ctl_json("route", "list")["routes"]
    check({"pattern": "*", "groups": [["primary"], ["sendgrid", "ses"]]}
          in routes, routes)
    check("primary > sendgrid,ses" in f.ctl("route", "list").stdout,
          "route list")
    r = refused(f, "hop in use", "hop", "del", "ses")
    check("route" in r.stderr, r.stderr)
    mutate(f, "route", "del", "example.com")

    # -- limits
    refused(f, "negative limit", "limit", "set", "max_recipients", "-1")
    r = refused(f, "limit range", "limit", "set", "max_recipients", "0")
    check("1" in r.stderr and "100000" in r.stderr, r.stderr)
    refused(f, "unknown limit", "limit", "set", "no_such_limit", "1")
    mutate(f, "limit", "set", "max_recipients", "50")
    lims = {x["key"]: x for x in f.ctl_json("limit", "list")["limits"]}
    check(lims["max_recipients"]["value"] == 50
          and lims["max_recipients"]["default"] == 100, lims)
    check("max_message_size" in f.ctl("limit", "list").stdout, "lim list")
    mutate(f, "limit", "set", "max_recipients", "100")   # the default
    check("max_recipients" not in f.ctl("policy", "export").stdout,
          "a limit set to its default stays listed")
    mutate(f, "limit", "set", "max_recipients", "50")

    # -- export -> apply: no change
    path = os.path.join(f.dir, "p.yaml")
    exported = f.ctl("policy", "export").stdout
    with open(path, "w") as fh:
        fh.write(exported)
    before = version(f)
    r = f.ctl("policy", "apply", "-f", path)
    check(r.stdout.strip() == "no changes (version %d)" % before, r.stdout)
    check(version(f) == before, "no-op apply bumped the version")
    r = f.ctl("policy", "diff", "-f", path)
    check("no changes" in r.stdout, r.stdout)
    check(f.ctl_json("policy", "diff", "-f", path)["changes"] == [], "diff")

    # -- a file with changes: diff, dry run, apply
    edited = exported.replace("max_recipients: 50", "max_recipients: 25")
    edited = edited.replace("deny: [10.9.0.0/16]",
                            "deny: [10.9.0.0/16, 198.51.100.0/24]")
    with open(path, "w") as fh:
        fh.write(edited)
    r = f.ctl("policy", "diff", "-f", path)
    check("+ network 198.51.100.0/24" in r.stdout
          and "~ limit max_recipients: 50 -> 25" in r.stdout, r.stdout)
    r = f.ctl("policy", "apply", "-f", path, "--dry-run")
    check("dry run" in r.stdout and version(f) == before, r.stdout)
    r = f.ctl("policy", "apply", "-f", path)
    check(version(f) == before + 1, r.stdout)
    check(f.ctl_json("policy", "apply", "-f", path)["changed"] is False,
          "second apply changed")

    # -- broken files: one line naming the line, nothing applied
    bad = os.path.join(f.dir, "bad.yaml")
    cases = [
        # the line where the unclosed "[" starts, not where it is noticed
        ("malformed", "networks:\n  allow: [10.0.0.0/8\nhops: []\n",
         "bad.yaml:2: "),
        ("unknown hop", "hops:\n  - name: a\n    host: h.example\n"
         "    port: 25\n    tls: none\nroutes:\n  - pattern: \"*\"\n"
         "    groups: [[a], [foo]]\n", "bad.yaml:7: "),
        ("negative", "limits:\n  max_recipients: -3\n", "bad.yaml:2: "),
        ("unknown key", "networks: {}\nfrob: 1\n", "bad.yaml:2: "),
        ("bad cidr", "networks:\n  allow: [10.0.0.0/33]\n", "bad.yaml:2: "),
    ]
    # A provider preset without its credentials (issue 10), in YAML and in
    # JSON: refused like `hop add --preset`, naming the hop and the key.
    preset_cases = [
        ("preset sendgrid without secret", "networks: {}\nhops:\n"
         "  - name: sg\n    preset: sendgrid\n", "bad.yaml:3: ",
         "hop 'sg': preset sendgrid needs secret, secret_file or "
         "secret_env (the SendGrid API key)"),
        ("preset ses without user", "hops:\n  - name: s\n    preset: ses\n"
         "    region: eu-west-1\n    secret: s3cret\n", "bad.yaml:2: ",
         "hop 's': preset ses needs user (the SES SMTP user name)"),
        ("preset mailgun without secret (JSON)",
         '{"hops": [{"name": "mg", "preset": "mailgun", '
         '"user": "postmaster@mg.test"}]}\n', "bad.yaml:1: ",
         "hop 'mg': preset mailgun needs secret"),
    ]
    for what, text, prefix, msg in preset_cases:
        with open(bad, "w") as fh:
            fh.write(text)
        r = refused(f, what, "policy", "apply", "-f", bad)
        check(prefix + msg in r.stderr, "%s: %r" % (what, r.stderr))
    cases += [c[:3] for c in preset_cases]
    for what, text, prefix in cases:
        with open(bad, "w") as fh:
            fh.write(text)
        r = refused(f, what, "policy", "apply", "-f", bad)
        check(r.stderr.startswith("sluicectl: " + bad.replace(
            "bad.yaml", "") + prefix) or (prefix in r.stderr),
            "%s: %r" % (what, r.stderr))
        one_line_error(f.ctl("policy", "diff", "-f", bad, check=False),
                       what + " (diff)")

    # -- offline: `policy check` needs no controller, and apply/diff
    # report errors in the file before contacting one
    nowhere = "ipc://%s/no-controller.sock" % f.dir

    def offline(*args):
        return subprocess.run([binary("sluicectl"), "--admin", nowhere] +
                              list(args), capture_output=True, text=True,
                              timeout=30)
    r = offline("policy", "check", "-f", path)
    check(r.returncode == 0 and r.stdout.startswith(path + ": ok ("), r)
    js = json.loads(offline("--json", "policy", "check", "-f", path).stdout)
    check(js["ok"] is True and js["hops"] >= 1, js)
    for what, text, prefix in cases:
        with open(bad, "w") as fh:
            fh.write(text)
        for cmd in ("check", "apply", "diff"):
            r = offline("policy", cmd, "-f", bad)
            one_line_error(r, "%s (offline %s)" % (what, cmd))
            check(prefix in r.stderr and "controller" not in r.stderr,
                  "%s (offline %s): %r" % (what, cmd, r.stderr))

    # -- history and show
    hist = f.ctl_json("policy", "history")["versions"]
    check(hist[0]["version"] == version(f), hist[0])
    check([h["version"] for h in hist] == sorted(
        [h["version"] for h in hist], reverse=True), "history order")
    sums = [h["summary"] for h in hist]
    check("network allow 10.0.0.0/8" in sums, sums)
    check(any(s.startswith("policy apply") for s in sums), sums)
    check(all(me in h["identity"] for h in hist), hist)
    r = f.ctl("policy", "history")
    check(r.stdout.split("\n")[0].split() == ["VERSION", "CREATED",
          "IDENTITY", "SUMMARY"], r.stdout)
    r = f.ctl("policy", "show", "--version", "1")
    check("10.0.0.0/8" in r.stdout and "hops:" not in r.stdout, r.stdout)
    shown = f.ctl_json("policy", "show", "--version", "1")
    check(shown["version"] == 1, shown)
    check(f.ctl_json("policy", "export")["version"] == version(f), "export")

    # -- secrets never come back out
    outputs = []
    for args in (("policy", "export"), ("policy", "show"),
                 ("hop", "list"), ("user", "list"), ("policy", "history"),
                 ("route", "list"), ("node", "list")):
        outputs.append(f.ctl(*args).stdout)
        outputs.append(f.ctl(*args, json_out=True).stdout)
    outputs.append(f.ctl("policy", "show", "--version", "3").stdout)
    for out in outputs:
        check(SECRET not in out and PASSWORD not in out
              and "$scrypt$" not in out, "a secret leaked: %s" % out)
    ex = f.ctl("policy", "export").stdout
    check("secret: keep" in ex, ex)
    # ...and the kept secrets survive every round trip.
    hops = {h["name"]: h for h in f.ctl_json("hop", "list")["hops"]}
    check(hops["sendgrid"]["has_secret"] and hops["ses"]["has_secret"],
          hops)
    users = f.ctl_json("user", "list")["users"]
    check(users[0]["has_password"], users)
    json.dumps(hist)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        sys.stderr.write("FAIL: %s\n" % e)
        sys.exit(1)
