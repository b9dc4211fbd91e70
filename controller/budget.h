/* budget.h - pure: fleet-wide hop budgets.  A hop's max_conn and
 * rate_per_minute in the policy are for the whole fleet (a provider's
 * quota); each live node gets a share in proportion to its demand, re-
 * divided at every heartbeat, so shares follow nodes coming, going and
 * falling silent.  No I/O: api_node.c feeds it the live nodes. */
#ifndef SLUICE_BUDGET_H
#define SLUICE_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct budget_node {
	uint64_t id;
	uint64_t demand; /* messages queued on the node */
};

struct budget_share {
	char hop[64];
	uint32_t max_conn; /* 0: not budgeted */
	uint32_t rate;     /* per minute, 0: not budgeted */
};

/* True when some hop of p has max_conn or rate_per_minute set. */
bool budget_any(const Sluice__Policy *p);
/* Node self's shares of every budgeted hop: value x (1 + demand) / sum of
 * (1 + demand) over the live nodes (self counts as live even if absent
 * from nodes), rounded down, at least 1.  Writes at most max; returns
 * how many. */
size_t budget_shares(const Sluice__Policy *p, const struct budget_node *nodes,
    size_t n, uint64_t self, struct budget_share *out, size_t max);

#endif
