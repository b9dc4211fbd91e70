/* allowance.h - pure: a node's share of a fleet-wide per-credential quota
 * (issue 15; docs/smtp.md, "Quotas").  Every heartbeat the controller
 * re-divides what is left of a user's quota in the current window: a node
 * gets its own count plus a part of the rest, in proportion to what it
 * accepted (1 + count: a busy node gets more, an idle one keeps a little),
 * never more than the quota minus everything the other nodes accepted or
 * still hold as allowance.  So the allowances of the live nodes never sum
 * past the quota; a node falling silent has its allowance given back to
 * the others (its bounded overshoot).  No I/O: api_node.c feeds it the
 * stored rows. */
#ifndef SLUICE_ALLOWANCE_H
#define SLUICE_ALLOWANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct allowance_node {
	uint64_t used;    /* accepted in the window */
	uint64_t granted; /* allowance last handed out (absolute) */
	bool is_live;     /* heard from within silent_after */
};

/* How many more the node that accepted self_used may accept, given the
 * other nodes' rows (quota 0: none). */
uint64_t allowance_share(uint64_t quota, uint64_t self_used,
    const struct allowance_node *others, size_t n);

#endif
