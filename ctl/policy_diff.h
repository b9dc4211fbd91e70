/* policy_diff.h - what changes between two policies, element by element:
 * networks by CIDR, users and hops by name, routes by pattern, limits by
 * key, DKIM keys by selector and domain.  Pure; `policy diff` and `policy apply
 * --dry-run` print it. */
#ifndef SLUICECTL_POLICY_DIFF_H
#define SLUICECTL_POLICY_DIFF_H

#include <stddef.h>

#include "proto.h"

struct policy_change {
	char op;          /* '+' added, '-' removed, '~' changed */
	const char *kind; /* "network", "user", "hop", ... */
	char name[128];   /* the element: CIDR, name, pattern, key */
	char detail[512]; /* '~': "port 25 -> 2525, weight 1 -> 2";
	                   * '+'/'-': a short description */
};

struct policy_diff {
	struct policy_change *v;
	size_t n;
};

/* Fills d with the changes from old to new (d->n == 0: equal).  Secrets
 * and hashes count as changed when new carries one (it cannot be compared
 * with a redacted old one) and as unchanged when new keeps the stored one. */
void policy_diff(const Sluice__Policy *old, const Sluice__Policy *new,
    struct policy_diff *d);
void policy_diff_free(struct policy_diff *);

#endif
