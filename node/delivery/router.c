/* router.c - recipient route → ordered hop list for one attempt, with
 * weighted sharing inside a hop group and a circuit breaker per hop.
 * Pure: state is a small table keyed by hop name, mutated only by
 * router_result() and router_take() (probe bookkeeping), given now.
 * Called by delivery.c on the loop thread. */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct router_hop {
	char *name;
	uint32_t failures; /* consecutive */
	uint64_t delivered, failed;
	int64_t open_until_ms; /* 0: closed */
	int64_t probe_at_ms;   /* a probe is out since; 0: none */
	int64_t throttled_until_ms;
	int64_t throttle_ms;        /* current back-off */
	int64_t throttle_window_ms; /* provider's window, when it named one */
	int64_t fleet_until_ms;     /* paused fleet-wide (controller) */
	int64_t fleet_window_ms;
	char fleet_by[64];      /* the node that met the throttle */
	char problem_scope[16]; /* "" unless the operator must act */
	char problem[200];
	char last[200]; /* the last failure's reply */
};

struct router {
	struct router_params p;
	struct router_hop *hops;
	size_t nhops, cap;
};

uint32_t
router_rand(uint32_t *seed)
{
	uint32_t x = *seed != 0 ? *seed : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *seed = x;
}

struct router *
router_new(const struct router_params *p)
{
	struct router *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if (p != NULL)
		r->p = *p;
	if (r->p.circuit_failures <= 0)
		r->p.circuit_failures = 5;
	if (r->p.circuit_cooldown_ms <= 0)
		r->p.circuit_cooldown_ms = 30000;
	if (r->p.throttle_ms <= 0)
		r->p.throttle_ms = 5000;
	if (r->p.throttle_max_ms < r->p.throttle_ms)
		r->p.throttle_max_ms =
		    r->p.throttle_ms > 300000 ? r->p.throttle_ms : 300000;
	return r;
}

void
router_free(struct router *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nhops; i++)
		free(r->hops[i].name);
	free(r->hops);
	free(r);
}

static struct router_hop *
router_find(struct router *r, const char *name, bool create)
{
	struct router_hop *h;
	size_t i;

	for (i = 0; i < r->nhops; i++)
		if (strcmp(r->hops[i].name, name) == 0)
			return &r->hops[i];
	if (!create)
		return NULL;
	if (r->nhops == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct router_hop *n = realloc(r->hops, cap * sizeof(*n));

		if (n == NULL)
			return NULL;
		r->hops = n;
		r->cap = cap;
	}
	h = &r->hops[r->nhops];
	memset(h, 0, sizeof(*h));
	if ((h->name = strdup(name)) == NULL)
		return NULL;
	r->nhops++;
	return h;
}

/* Where the hop's circuit stands for a job at now; take: the job gets
 * the probe when one is due. */
static enum router_admit
router_admit(struct router *r, struct router_hop *h, int64_t now, bool take)
{
	if (h == NULL || h->open_until_ms == 0)
		return ROUTER_GO;
	if (now < h->open_until_ms)
		return ROUTER_SKIP;
	/* Half-open: one probe at a time; a probe that never reported back
	 * (its connection still hanging) is replaced after a cool-down. */
	if (h->probe_at_ms != 0 &&
	    now - h->probe_at_ms < r->p.circuit_cooldown_ms)
		return ROUTER_WAIT;
	if (take)
		h->probe_at_ms = now;
	return ROUTER_PROBE;
}

bool
router_hop_available(struct router *r, const char *name, int64_t now_ms)
{
	enum router_admit a =
	    router_admit(r, router_find(r, name, false), now_ms, false);

	return a == ROUTER_GO || a == ROUTER_PROBE;
}

enum router_admit
router_take(struct router *r, const char *name, int64_t now_ms)
{
	return router_admit(r, router_find(r, name, false), now_ms, true);
}

enum router_admit
router_state(struct router *r, const char *name, int64_t now_ms)
{
	return router_admit(r, router_find(r, name, false), now_ms, false);
}

int64_t
router_cooldown_ms(const struct router *r)
{
	return r->p.circuit_cooldown_ms;
}

size_t
router_plan(struct router *r, const Sluice__Route *route, router_hop_fn fn,
    void *arg, uint64_t size, int64_t now_ms, uint32_t *seed,
    const Sluice__Hop **out, size_t max)
{
	const Sluice__Hop *cand[64], *late[64];
	size_t g, i, n = 0, nlate = 0, nc;

	if (route == NULL)
		return 0;
	for (g = 0; g < route->n_groups; g++) {
		const Sluice__HopGroup *grp = route->groups[g];
		uint64_t total = 0;

		nc = 0;
		for (i = 0; i < grp->n_hops && nc < 64; i++) {
			const Sluice__Hop *h = fn(arg, grp->hops[i]);
			struct router_hop *st;
			size_t k;
			bool dup = false;

			if (h == NULL ||
			    (h->max_size != 0 && size > h->max_size))
				continue;
			for (k = 0; k < n; k++)
				dup |= out[k] == h;
			for (k = 0; k < nlate; k++)
				dup |= late[k] == h;
			if (dup)
				continue;
			st = router_find(r, h->name, false);
			if (st != NULL && (st->throttled_until_ms > now_ms ||
			                      st->fleet_until_ms > now_ms)) {
				if (nlate < 64)
					late[nlate++] = h;
				continue;
			}
			if (router_admit(r, st, now_ms, false) == ROUTER_SKIP)
				continue;
			cand[nc++] = h;
			total += h->weight ? h->weight : 1;
		}
		/* Weighted order without replacement: each pick is drawn in
		 * proportion to weight among the hops still left. */
		while (nc > 0 && n < max) {
			uint64_t x = router_rand(seed) % total, acc = 0;
			size_t pick = nc - 1;

			for (i = 0; i < nc; i++) {
				acc += cand[i]->weight ? cand[i]->weight : 1;
				if (x < acc) {
					pick = i;
					break;
				}
			}
			out[n++] = cand[pick];
			total -= cand[pick]->weight ? cand[pick]->weight : 1;
			cand[pick] = cand[--nc];
		}
	}
	for (i = 0; i < nlate && n < max; i++)
		out[n++] = late[i];
	return n;
}

enum router_change
router_result(
    struct router *r, const char *name, enum router_outcome o, int64_t now_ms)
{
	struct router_hop *h = router_find(r, name, true);
	bool was_open;

	if (h == NULL)
		return ROUTER_SAME;
	was_open = h->open_until_ms != 0;
	switch (o) {
	case ROUTER_OK:
	case ROUTER_ANSWERED:
	case ROUTER_THROTTLED:
		/* The hop answered: whatever it said, it is up. */
		if (o == ROUTER_OK) {
			/* It takes our mail: whatever was wrong is fixed. */
			h->delivered++;
			h->problem_scope[0] = '\0';
			h->problem[0] = '\0';
		}
		h->failures = 0;
		h->open_until_ms = 0;
		h->probe_at_ms = 0;
		if (o != ROUTER_THROTTLED) {
			if (h->throttled_until_ms <= now_ms) {
				h->throttle_ms = 0;
				h->throttle_window_ms = 0;
			}
			break;
		}
		/* Not a failure of the hop: back off, doubling while the
		 * provider keeps saying so. */
		h->throttle_ms =
		    h->throttle_ms == 0 ? r->p.throttle_ms : h->throttle_ms * 2;
		if (h->throttle_ms > r->p.throttle_max_ms)
			h->throttle_ms = r->p.throttle_max_ms;
		if (h->throttled_until_ms < now_ms + h->throttle_ms)
			h->throttled_until_ms = now_ms + h->throttle_ms;
		break;
	case ROUTER_FAIL:
		h->failed++;
		h->failures++;
		/* A failed probe, or a failure while half-open, opens the
		 * circuit again; a closed one opens after the threshold.
		 * While open (cooling down) late results of sessions that
		 * started before change nothing. */
		if (was_open && now_ms < h->open_until_ms)
			return ROUTER_SAME;
		h->probe_at_ms = 0;
		if (was_open ||
		    h->failures >= (uint32_t)r->p.circuit_failures) {
			h->open_until_ms = now_ms + r->p.circuit_cooldown_ms;
			return ROUTER_OPENED;
		}
		return ROUTER_SAME;
	}
	return was_open ? ROUTER_CLOSED : ROUTER_SAME;
}

bool
router_problem(
    struct router *r, const char *name, const char *scope, const char *reply)
{
	struct router_hop *h = router_find(r, name, true);
	char p[sizeof(h->problem)];

	if (h == NULL)
		return false;
	snprintf(p, sizeof(p), "%s", reply);
	if (strcmp(h->problem_scope, scope) == 0 && strcmp(h->problem, p) == 0)
		return false;
	snprintf(h->problem_scope, sizeof(h->problem_scope), "%s", scope);
	memcpy(h->problem, p, sizeof(p));
	return true;
}

void
router_set_last(struct router *r, const char *name, const char *reply)
{
	struct router_hop *h = router_find(r, name, true);

	if (h != NULL)
		snprintf(h->last, sizeof(h->last), "%s", reply);
}

const char *
router_last(struct router *r, const char *name)
{
	struct router_hop *h = router_find(r, name, false);

	return h != NULL ? h->last : "";
}

void
router_throttle_for(
    struct router *r, const char *name, int64_t window_ms, int64_t now_ms)
{
	struct router_hop *h = router_find(r, name, true);

	if (h == NULL || window_ms <= 0)
		return;
	h->throttle_window_ms = window_ms;
	if (h->throttled_until_ms < now_ms + window_ms)
		h->throttled_until_ms = now_ms + window_ms;
}

void
router_fleet_reset(struct router *r)
{
	size_t i;

	for (i = 0; i < r->nhops; i++)
		r->hops[i].fleet_until_ms = 0;
}

bool
router_fleet_paused(struct router *r, const char *name, int64_t now_ms)
{
	struct router_hop *h = router_find(r, name, false);

	return h != NULL && h->fleet_until_ms > now_ms;
}

void
router_fleet_pause(struct router *r, const char *name, int64_t for_ms,
    int64_t window_ms, const char *by, int64_t now_ms)
{
	struct router_hop *h;

	if (for_ms <= 0 || (h = router_find(r, name, true)) == NULL)
		return;
	h->fleet_until_ms = now_ms + for_ms;
	h->fleet_window_ms = window_ms;
	snprintf(h->fleet_by, sizeof(h->fleet_by), "%s", by);
}

void
router_foreach(struct router *r, int64_t now_ms,
    void (*cb)(const struct router_hop_state *, void *), void *arg)
{
	struct router_hop_state s;
	size_t i;

	for (i = 0; i < r->nhops; i++) {
		const struct router_hop *h = &r->hops[i];

		memset(&s, 0, sizeof(s));
		s.name = h->name;
		s.circuit_open =
		    h->open_until_ms != 0 && now_ms < h->open_until_ms;
		s.half_open =
		    h->open_until_ms != 0 && now_ms >= h->open_until_ms;
		s.own_throttled = h->throttled_until_ms > now_ms;
		s.fleet_paused = h->fleet_until_ms > now_ms;
		s.throttled = s.own_throttled || s.fleet_paused;
		s.recent_failures = h->failures;
		s.delivered = h->delivered;
		s.failed = h->failed;
		s.open_until_ms = h->open_until_ms;
		s.throttled_until_ms = h->throttled_until_ms;
		s.throttle_window_ms = h->throttle_window_ms;
		s.own_throttled_until_ms = h->throttled_until_ms;
		if (s.fleet_paused) {
			if (h->fleet_until_ms > s.throttled_until_ms)
				s.throttled_until_ms = h->fleet_until_ms;
			if (h->fleet_window_ms > s.throttle_window_ms)
				s.throttle_window_ms = h->fleet_window_ms;
			s.fleet_by = h->fleet_by;
		}
		s.problem_scope = h->problem_scope;
		s.problem = h->problem;
		cb(&s, arg);
	}
}
