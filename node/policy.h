/* policy.h - the node's compiled, immutable view of a policy snapshot and
 * the pure verdicts the SMTP server asks of it.  A struct policy is
 * reference-counted so a session can keep the version it started with
 * while a new one is swapped in. */
#ifndef SLUICE_NODE_POLICY_H
#define SLUICE_NODE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limit_table.h"
#include "proto.h"

struct policy;

/* Validates (policy_check, snapshot mode) and compiles; takes ownership of
 * snap (freed with protobuf_c_message_free_unpacked) on success only.
 * NULL with err on an invalid snapshot. */
struct policy *policy_new(Sluice__Policy *snap, char *err, size_t errlen);
/* The empty policy: relays nothing, default limits. */
struct policy *policy_empty(void);
struct policy *policy_ref(struct policy *);
void policy_unref(struct policy *);

uint64_t policy_version(const struct policy *);
const Sluice__Policy *policy_snapshot(const struct policy *);
int64_t policy_limit(const struct policy *, const char *key);
/* The same, typed and compiled once: an array read. */
int64_t policy_limit_of(const struct policy *, enum limit_key);

/* Relay without AUTH?  Longest-prefix match over networks; deny wins on a
 * tie; no match: false.  addr is 4 (AF_INET) or 16 (AF_INET6) bytes. */
bool policy_client_trusted(
    const struct policy *, int family, const uint8_t *addr);
const Sluice__User *policy_user(const struct policy *, const char *name);
/* May this user use this envelope sender ("a@example.com")? */
bool policy_sender_allowed(const Sluice__User *, const char *addr);
const Sluice__Hop *policy_hop(const struct policy *, const char *name);
/* The route of a message for one recipient domain: the most specific
 * matching route (lib/route_match.h: recipient domain, sender, AUTH user,
 * listener, client network), or the user's default route where only "*"
 * matches; NULL: no route. */
struct route_ctx;
const Sluice__Route *policy_route(
    const struct policy *, const struct route_ctx *);

/* The suppression list's entry for a recipient (compared in lower case),
 * NULL when it is not suppressed. */
const Sluice__Suppression *policy_suppressed(
    const struct policy *, const char *addr);
/* suppression_mode bounce: suppressed recipients are accepted at RCPT
 * and bounced by delivery (false: refused at RCPT). */
bool policy_suppression_bounces(const struct policy *);

#endif
