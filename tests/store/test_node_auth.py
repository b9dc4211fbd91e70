"""Node enrollment: the right token is accepted (hello, heartbeat,
get_policy); a wrong token and an unknown name are refused with "denied",
learn nothing else, and are logged with the peer address.  node_list shows
the node's state, drain/resume become commands, remove forgets the node."""
from storelib import Env, check, enroll, error_code, run, wait_until


def main():
    with Env("auth") as env:
        c = env.controller("silent_after_ms = 1500\n")
        token = enroll(c, "n1")
        check(len(token) == 43 and "=" not in token, "base64url token")
        check(error_code(c.admin("node-add", "n1")) == "exists",
              "second add of a name is refused")
        check(error_code(c.admin("node-add", "bad name!")) == "invalid",
              "bad node names are refused")
        digest = env.pg.psql("SELECT token_digest FROM nodes "
                             "WHERE name = 'n1'")
        check(len(digest) == 64 and token not in digest,
              "only a digest is stored")

        st = c.admin("node-list")["node_list"]["nodes"][0]
        check(st["state"] == "new" and st["last_heartbeat_at"] == 0,
              "never seen node is new: %r" % st)

        r = c.node("hello", "n1", token)
        check("hello" in r and r["hello"]["node_id"] > 0, "hello: %r" % r)
        check(r["hello"]["policy_version"] == 0, "no policy yet")
        r = c.node("heartbeat", "n1", token, 0)
        check(r.get("heartbeat", {}).get("policy_version") == 0,
              "heartbeat: %r" % r)
        check(r["heartbeat"]["commands"] == [], "no commands")
        r = c.node("getpolicy", "n1", token)
        check(r["get_policy"]["policy"]["version"] == 0, "empty policy")

        st = c.admin("node-list")["node_list"]["nodes"][0]
        check(st["state"] == "up" and st["software_version"] == "probe-1"
              and st["address"] == "127.0.0.1:2525"
              and st["metrics"]["messages"] == 7, "node up: %r" % st)

        # Refusals: one code, one sentence, nothing else.
        for name, tok, reason in (("n1", "x" * 43, "wrong token"),
                                  ("n1", "", "wrong token"),
                                  ("ghost", token, "unknown node")):
            for cmd in (("hello",), ("heartbeat", 0), ("getpolicy",)):
                r = c.node(cmd[0], name, tok, *cmd[1:])
                check(error_code(r) == "denied" and list(r) == ["error"],
                      "refused %s/%s: %r" % (name, cmd, r))
                check(r["error"]["message"] == "node '%s' is not enrolled "
                      "or its token is wrong" % name, "message: %r" % r)
            wait_until(lambda: "denied name=%s peer=127.0.0.1 "
                       "reason=\"%s\"" % (name, reason) in c.log(), 5,
                       "denial of %s logged with peer" % name)
        r = c.node("events", "ghost", token, 1)
        check(error_code(r) == "denied", "events need auth too")

        # Drain and resume: the flag travels as a command until the node's
        # metrics follow it.
        check("done" in c.admin("node-drain", "n1"), "drain")
        r = c.node("heartbeat", "n1", token, 0)
        check([x["kind"] for x in r["heartbeat"]["commands"]] == [1],
              "drain command: %r" % r)
        r = c.node("heartbeat", "n1", token, 0, "draining")
        check(r["heartbeat"]["commands"] == [], "node follows")
        check(c.admin("node-list")["node_list"]["nodes"][0]["state"] ==
              "draining", "draining state")
        check("done" in c.admin("node-resume", "n1"), "resume")
        r = c.node("heartbeat", "n1", token, 0, "draining")
        check([x["kind"] for x in r["heartbeat"]["commands"]] == [2],
              "resume command: %r" % r)

        # Silent after silent_after_ms without a heartbeat.
        wait_until(lambda: c.admin("node-list")["node_list"]["nodes"][0]
                   ["state"] == "silent", 5, "node silent")

        check(error_code(c.admin("node-remove", "nope")) == "not_found",
              "remove unknown")
        check(error_code(c.admin("node-drain", "nope")) == "not_found",
              "drain unknown")
        check("done" in c.admin("node-remove", "n1"), "remove")
        check(error_code(c.node("hello", "n1", token)) == "denied",
              "removed node is refused")


run(main)
