"""Hostile bytes at BOTH endpoints: random garbage, a truncated protobuf,
an empty message and a 16 MiB oversized message.  The controller answers
"bad_request" where it can (nng drops the oversized one), logs a warning,
stays up and serves the next good request."""
from storelib import Env, check, enroll, error_code, run


def main():
    with Env("hostile") as env:
        c = env.controller()
        token = enroll(c, "n1")
        for kind, call in (("node", c.node), ("admin", c.admin)):
            for n in (1, 7, 100, 4096, 65536):
                r = call("raw-random", n)
                # Random bytes may happen to decode as a message with
                # unknown fields; either way the reply is an error.
                check(error_code(r) in ("bad_request", "denied"),
                      "%s random %d: %r" % (kind, n, r))
            for cmd in ("truncated", "empty"):
                r = call(cmd)
                check(error_code(r) == "bad_request",
                      "%s %s: %r" % (kind, cmd, r))
            r = call("oversize", 16 * 1024 * 1024, timeout_ms=1500)
            check("noreply" in r or error_code(r) == "bad_request",
                  "%s oversize: %r" % (kind, r))
            check(c.proc.alive(), "controller survives %s garbage" % kind)
            # And the next good request works.
            r = c.node("hello", "n1", token)
            check("hello" in r, "%s: good request after garbage: %r"
                  % (kind, r))
            check("node_list" in c.admin("node-list"), "admin still up")
        check("undecodable request" in c.log() and
              "request without a body" in c.log(), "garbage is logged")


run(main)
