/* allowance.c - fleet-wide quota shares (allowance.h).  With free = what
 * nobody accepted yet and pool = what no other node holds either, the
 * share is min(pool, floor(free x w_self / W)), w = 1 + count over the
 * live nodes, and the busiest node also gets what the rounding left.  Two idle
 * nodes of a quota of 10 get 5 each; a node that used its 5 while the other
 * used none gets the other's unused part as soon as the other's next heartbeat
 * gives it back. */
#include "allowance.h"

static uint64_t
allowance_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

uint64_t
allowance_share(uint64_t quota, uint64_t self_used,
    const struct allowance_node *others, size_t n)
{
	uint64_t used = self_used, held = self_used, w = 1 + self_used;
	uint64_t w_all = w, free_, pool, target, parts;
	bool heaviest = true;
	size_t i;

	for (i = 0; i < n; i++) {
		used += others[i].used;
		if (!others[i].is_live) {
			held += others[i].used;
			continue;
		}
		held += others[i].granted > others[i].used ? others[i].granted
		                                           : others[i].used;
		w_all += 1 + others[i].used;
		if (others[i].used > self_used)
			heaviest = false;
	}
	free_ = allowance_sub(quota, used);
	pool = allowance_sub(quota, held);
	/* Rounded down, so an idle node gives back its last unit; what the
	 * rounding leaves goes to the busiest node (to each of them on a
	 * tie: the pool still bounds them).  Counts and quotas are far
	 * below 2^32: the products fit 64 bits. */
	target = free_ * w / w_all;
	if (heaviest) {
		parts = target;
		for (i = 0; i < n; i++)
			if (others[i].is_live)
				parts += free_ * (1 + others[i].used) / w_all;
		target += allowance_sub(free_, parts);
	}
	return target < pool ? target : pool;
}
