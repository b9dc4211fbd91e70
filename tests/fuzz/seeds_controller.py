#!/usr/bin/env python3
"""seeds_controller.py - writes the seed corpora of the controller fuzz
targets (corpus/controller_node, corpus/controller_admin) and of the node's policy
snapshot target (corpus/policy_snapshot): packed NodeRequest
and AdminRequest messages of proto/control.proto, encoded by hand (no protoc
on the build machines).  The node seeds carry the fuzz node's name and token
(controller_api.inc) so a fuzzing run with SLUICE_FUZZ_PG gets past
authentication.  Run from tests/fuzz/: python3 seeds_controller.py"""
import os


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f(num, v):
    """One field: int -> varint, bool -> varint, str/bytes -> length-delimited,
    list -> repeated."""
    if isinstance(v, list):
        return b"".join(f(num, x) for x in v)
    if isinstance(v, bool) or isinstance(v, int):
        return varint(num << 3) + varint(int(v))
    if isinstance(v, str):
        v = v.encode()
    return varint((num << 3) | 2) + varint(len(v)) + v


def msg(*fields):
    return b"".join(f(n, v) for n, v in fields)


NODE = "fuzz-node"
TOKEN = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuz"
auth = msg((1, NODE), (2, TOKEN))
bad_auth = msg((1, NODE), (2, "wrong"))


def event(seq, kind, **kw):
    fields = [(1, seq), (2, 1700000000000 + seq), (3, kind),
              (4, "0660E452449926"), (5, "<m%d@example.com>" % seq)]
    num = {"client": 6, "auth_user": 7, "sender": 8, "recipients": 9,
           "recipient": 10, "size": 11, "hop": 12, "host": 13, "code": 14,
           "enhanced": 15, "reply": 16, "duration_ms": 17, "tls": 18}
    fields += [(num[k], v) for k, v in kw.items()]
    return msg(*fields)


metrics = msg((1, 12), (2, 3), (3, 4096), (4, 60))
node = {
    "hello": msg((1, msg((1, auth), (2, "0.1.0"), (3, "127.0.0.1:2525")))),
    "hello_bad_token": msg((1, msg((1, bad_auth), (2, "0.1.0")))),
    "hello_no_auth": msg((1, msg((2, "0.1.0")))),
    "heartbeat": msg((2, msg((1, auth), (2, 3), (3, metrics), (5, True)))),
    "heartbeat_results": msg((2, msg((1, auth), (2, 1), (4, msg(
        (1, 7), (2, True), (3, "done")))))),
    "get_policy": msg((3, msg((1, auth)))),
    "report_events": msg((4, msg((1, auth), (2, [
        event(1, "received", client="[192.0.2.7]:52100", sender="a@b",
              recipients=["c@d", "e@f"], size=1834, tls=True),
        event(2, "delivered", recipient="c@d", hop="primary",
              host="10.0.0.5:25", code=250, enhanced="2.0.0",
              reply="250 2.0.0 ok", duration_ms=40),
        event(3, "deferred", recipient="e@f", code=451, reply="451 later"),
    ])))),
    "empty": b"",
    "no_body": msg(),
}

hop = msg((1, "primary"), (2, "10.0.0.5"), (3, 25), (4, 1), (6, "u"),
          (7, "hop-secret"), (12, 1))
policy = msg((2, msg((1, "127.0.0.0/8"))), (2, msg((1, "10.9.0.0/16"),
                                                      (2, True))),
             (3, msg((1, "app1"), (2, "$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA"),
                     (3, ["*@example.com"]))),
             (4, hop), (4, msg((1, "mx"))),
             (5, msg((1, "*"), (2, msg((1, ["primary"]))),
                     (2, msg((1, ["mx"]))))),
             (6, msg((1, "max_message_size"), (2, 1048576))))
admin = {
    "node_add": msg((1, msg((1, "edge-1")))),
    "node_list": msg((2, b"")),
    "node_remove": msg((3, msg((1, "edge-1")))),
    "node_drain": msg((4, msg((1, "fuzz-node")))),
    "node_resume": msg((5, msg((1, "fuzz-node")))),
    "policy_get": msg((6, msg((1, 0)))),
    "policy_get_v1": msg((6, msg((1, 1)))),
    "policy_apply": msg((7, msg((1, policy), (2, 0), (3, "fuzz"),
                                (4, "fuzzer")))),
    "policy_apply_keep": msg((7, msg((1, msg((4, msg(
        (1, "primary"), (2, "h"), (3, 25), (9, True))))), (2, 1)))),
    "policy_history": msg((8, b"")),
    "trace": msg((9, msg((1, "0660E452449926")))),
    "log": msg((10, msg((1, "a@"), (2, "c@"), (3, "delivered"),
                        (4, 3600), (5, 10), (6, "fuzz-node")))),
    "status": msg((11, b"")),
    "alerts": msg((12, msg((1, True), (2, 5)))),
    "queue_command": msg((13, msg((1, 1), (2, "fuzz-node"),
                                  (3, "0660E452449926")))),
    "command_status": msg((14, msg((1, [1, 2, 3])))),
    "empty": b"",
}

snapshot = {
    "policy": msg((1, 7)) + policy,
    "empty": b"",
    "dkim": msg((1, 2), (7, msg((1, "example.com"), (2, "s1"),
                                (3, "-----BEGIN PRIVATE KEY-----"),
                                (5, ["from", "to"])))),
}

for target, seeds in (("controller_node", node), ("controller_admin", admin),
                      ("policy_snapshot", snapshot)):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as fh:
            fh.write(data)
