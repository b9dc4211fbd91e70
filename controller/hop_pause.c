/* hop_pause.c - pure: the longest own pause of every hop over the live
 * nodes' metrics (hop_pause.h). */
#include "hop_pause.h"

#include <stdio.h>
#include <string.h>

void
hop_pause_add(struct hop_pause_set *set, const char *node, int64_t age_ms,
    const Sluice__QueueMetrics *m)
{
	size_t i, k;

	if (m == NULL)
		return;
	if (age_ms < 0)
		age_ms = 0;
	for (i = 0; i < m->n_hops; i++) {
		const Sluice__HopMetrics *h = m->hops[i];
		int64_t left;

		if (h == NULL || h->name == NULL || h->name[0] == '\0' ||
		    h->own_throttled_for_s == 0)
			continue;
		left = (int64_t)h->own_throttled_for_s * 1000 - age_ms;
		if (left <= 0)
			continue;
		for (k = 0; k < set->n; k++)
			if (strcmp(set->v[k].hop, h->name) == 0)
				break;
		if (k == set->n) {
			if (set->n == HOP_PAUSE_MAX)
				continue;
			memset(&set->v[k], 0, sizeof(set->v[k]));
			snprintf(set->v[k].hop, sizeof(set->v[k].hop), "%s",
			    h->name);
			set->n++;
		} else if (set->v[k].left_ms >= left)
			continue;
		snprintf(set->v[k].node, sizeof(set->v[k].node), "%s", node);
		set->v[k].left_ms = left;
		set->v[k].window_s = h->throttle_window_s;
	}
}
