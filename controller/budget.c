/* budget.c - pure fleet-wide hop budgets (budget.h).  The sum of the
 * shares never exceeds the fleet value, except that every live node gets
 * at least one connection and one message a minute of a budgeted hop (a
 * budget smaller than the number of live nodes is overcommitted by that
 * floor).  Demand weights are capped so a huge queue cannot starve the
 * rest of the fleet to the floor. */
#include "budget.h"

#include <stdio.h>
#include <string.h>

#define BUDGET_DEMAND_CAP 100000

bool
budget_any(const Sluice__Policy *p)
{
	size_t i;

	for (i = 0; p != NULL && i < p->n_hops; i++)
		if (p->hops[i]->max_conn != 0 ||
		    p->hops[i]->rate_per_minute != 0)
			return true;
	return false;
}

static uint64_t
budget_weight(uint64_t demand)
{
	return 1 + (demand > BUDGET_DEMAND_CAP ? BUDGET_DEMAND_CAP : demand);
}

static uint32_t
budget_part(uint32_t value, uint64_t w, uint64_t total)
{
	uint64_t v;

	if (value == 0)
		return 0;
	v = (uint64_t)value * w / total;
	return v == 0 ? 1 : (uint32_t)v;
}

size_t
budget_shares(const Sluice__Policy *p, const struct budget_node *nodes,
    size_t n, uint64_t self, struct budget_share *out, size_t max)
{
	uint64_t total = 0, w_self = 1;
	bool seen = false;
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		total += budget_weight(nodes[i].demand);
		if (nodes[i].id == self) {
			w_self = budget_weight(nodes[i].demand);
			seen = true;
		}
	}
	if (!seen)
		total += w_self;
	for (i = 0; p != NULL && i < p->n_hops && k < max; i++) {
		const Sluice__Hop *h = p->hops[i];

		if (h->max_conn == 0 && h->rate_per_minute == 0)
			continue;
		memset(&out[k], 0, sizeof(out[k]));
		snprintf(out[k].hop, sizeof(out[k].hop), "%s", h->name);
		out[k].max_conn = budget_part(h->max_conn, w_self, total);
		out[k].rate = budget_part(h->rate_per_minute, w_self, total);
		k++;
	}
	return k;
}
