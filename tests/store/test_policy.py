"""Policy versions: apply creates version 1, 2...; a stale base_version is
a "conflict" and changes nothing; an identical policy is changed=false and
no new version; kept secrets are merged from the head and redacted in
policy_get; nodes get them in get_policy; invalid policies are refused
with "<section> #<n>: ..."; history is newest first."""
import threading

from storelib import Env, check, enroll, error_code, run

HASH = "$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA"


def versions(env):
    return env.pg.psql("SELECT count(*) FROM policy_versions")


def main():
    with Env("policy") as env:
        c = env.controller()
        token = enroll(c, "n1")

        r = c.admin("policy-get", 0)
        check(r["policy_get"]["policy"]["version"] == 0, "empty: %r" % r)
        check(c.admin("policy-history")["policy_history"]["versions"] == [],
              "no history")
        check(error_code(c.admin("policy-get", 5)) == "not_found",
              "unknown version")

        items = ["net:10.0.0.0/8", "hop:relay:smtp.example.com:587:apikey:s3cr3t",
                 "user:app1:" + HASH, "route:*:relay"]
        r = c.admin("policy-apply", 0, "first", "alice", *items)
        check(r["policy_apply"] == {"version": 1, "changed": True},
              "first apply: %r" % r)

        # Identical policy: no new version.
        r = c.admin("policy-apply", 1, "again", "alice", *items)
        check(r["policy_apply"] == {"version": 1, "changed": False},
              "identical: %r" % r)
        check(versions(env) == "1", "no version for identical apply")

        # Kept secrets are identical too.
        kept = ["net:10.0.0.0/8", "hop:relay:smtp.example.com:587:apikey:keep",
                "user:app1:keep", "route:*:relay"]
        r = c.admin("policy-apply", 1, "kept", "alice", *kept)
        check(r["policy_apply"] == {"version": 1, "changed": False},
              "kept secrets are unchanged: %r" % r)

        # Stale base version.
        r = c.admin("policy-apply", 0, "stale", "bob", "net:192.0.2.0/24")
        check(error_code(r) == "conflict", "stale base: %r" % r)
        check("version 0 was read" in r["error"]["message"], "message")
        check(versions(env) == "1", "conflict stores nothing")

        # Change with kept secrets: version 2, secrets carried over.
        kept2 = kept + ["net:192.0.2.0/24"]
        r = c.admin("policy-apply", 1, "add net", "bob", *kept2)
        check(r["policy_apply"] == {"version": 2, "changed": True},
              "second: %r" % r)
        pol = c.admin("policy-get", 0)["policy_get"]["policy"]
        check(pol["version"] == 2, "latest is 2")
        hop = pol["hops"][0]
        check(hop["secret"] == "" and hop["has_secret"] is True
              and hop["keep_secret"] is False, "hop redacted: %r" % hop)
        user = pol["users"][0]
        check(user["password_hash"] == "" and user["has_password"] is True,
              "user redacted: %r" % user)
        check([n["cidr"] for n in pol["networks"]] ==
              ["10.0.0.0/8", "192.0.2.0/24"], "networks")
        # Nodes get the secrets.
        gp = c.node("getpolicy", "n1", token)["get_policy"]["policy"]
        check(gp["version"] == 2 and gp["hops"][0]["secret"] == "s3cr3t"
              and gp["users"][0]["password_hash"] == HASH,
              "node snapshot has secrets: %r" % gp)
        r = c.node("heartbeat", "n1", token, 2)
        check(r["heartbeat"]["policy_version"] == 2, "heartbeat sees 2")
        old = c.admin("policy-get", 1)["policy_get"]["policy"]
        check(old["version"] == 1 and len(old["networks"]) == 1, "v1 kept")

        # A new user without a hash; an invalid policy.
        r = c.admin("policy-apply", 2, "x", "bob", *(kept2 + ["user:new:keep"]))
        check(error_code(r) == "invalid" and
              r["error"]["message"] == "users #2: user 'new' has no password",
              "new user without password: %r" % r)
        r = c.admin("policy-apply", 2, "x", "bob", "net:10.0.0.1/8")
        check(error_code(r) == "invalid" and
              r["error"]["message"].startswith("networks #1: "),
              "invalid: %r" % r)
        r = c.admin("policy-apply", 2, "x", "bob", "route:*:nohop")
        check(error_code(r) == "invalid", "route to unknown hop: %r" % r)
        check(versions(env) == "2", "invalid applies store nothing")

        # Keeping a secret that was never stored: the hop has none.
        r = c.admin("policy-apply", 2, "new hop", "carol",
                    *(kept2 + ["hop:other:mx.example.net:25:u:keep"]))
        check(r["policy_apply"]["version"] == 3, "v3: %r" % r)
        gp = c.node("getpolicy", "n1", token)["get_policy"]["policy"]
        other = [h for h in gp["hops"] if h["name"] == "other"][0]
        check(other["secret"] == "" and other["has_secret"] is False,
              "nothing to keep: %r" % other)

        hist = c.admin("policy-history")["policy_history"]["versions"]
        check([v["version"] for v in hist] == [3, 2, 1], "newest first")
        check(hist[0]["identity"] == "carol (uid %d)" % __import__("os")
              .geteuid() and hist[2]["summary"] == "first",
              "identity and summary: %r" % hist)
        check(c.admin("node-list")["node_list"]["latest_policy_version"]
              == 3, "node list latest")

        # Two controllers, eight applies racing from the same base: exactly
        # one wins, the rest get "conflict".
        c2 = env.controller()
        results = []

        def apply(ctl, i):
            results.append(ctl.admin("policy-apply", 3, "race %d" % i, "r",
                                     *(kept2 + ["net:198.51.100.%d/32" % i])))
        ts = [threading.Thread(target=apply, args=((c, c2)[i % 2], i))
              for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        won = [r for r in results if "policy_apply" in r]
        check(len(won) == 1 and won[0]["policy_apply"]["version"] == 4,
              "one winner: %r" % results)
        check(sum(error_code(r) == "conflict" for r in results) == 7,
              "seven conflicts: %r" % results)
        check(versions(env) == "4", "one new version")


run(main)
