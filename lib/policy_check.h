/* policy_check.h - validation of a whole policy snapshot.  Pure.  The same
 * rules run in sluicectl (early, with YAML line numbers), the controller
 * (authoritative, before a version is stored) and the node (before a
 * fetched or cached snapshot is applied). */
#ifndef SLUICE_POLICY_CHECK_H
#define SLUICE_POLICY_CHECK_H

#include <stddef.h>

#include "proto.h"

struct policy_error {
	const char *section; /* "networks", "users", "hops", ... */
	int index;           /* element in that section, -1: none */
	char msg[256];       /* one sentence, names the element */
};

enum policy_check_mode {
	POLICY_CHECK_APPLY,    /* secrets may be "kept" (keep_secret) */
	POLICY_CHECK_SNAPSHOT, /* complete: secrets and hashes present */
};

/* 0 when valid; -1 with *err filled at the first problem. */
int policy_check(
    const Sluice__Policy *, enum policy_check_mode, struct policy_error *err);
/* Longest suppressed address (RFC 5321 4.5.3.1.3: a path is 256). */
#define POLICY_ADDRESS_MAX 254

/* Valid route pattern: "*", "*.example.com" or "example.com". */
int policy_check_pattern(const char *pattern);
/* Valid sender pattern for a user: "*", "*@example.com", "a@example.com",
 * "@example.com". */
int policy_check_sender(const char *pattern);
/* Valid name of a user, hop or node: [A-Za-z0-9._@+-], 1..64 chars. */
int policy_check_name(const char *name);

#endif
