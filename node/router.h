/* router.h - pure route selection: which hops a recipient's mail tries,
 * in which order, this attempt; and the per-hop health (circuit breaker,
 * throttling) that shapes that order.  No I/O and no clock: callers pass
 * now and a random seed.  Owned by the delivery engine on the loop thread;
 * the unit tests drive it directly (tests/unit/test_router.c). */
#ifndef SLUICE_ROUTER_H
#define SLUICE_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct router;

struct router_params {
	int circuit_failures;        /* consecutive failures to open, def 5 */
	int64_t circuit_cooldown_ms; /* open for, then probe, def 30000 */
	int64_t throttle_ms;         /* first throttle back-off, def 5000 */
	int64_t throttle_max_ms;     /* longest throttle back-off, 300000 */
};

/* What one use of a hop (a connection or a transaction) came to. */
enum router_outcome {
	ROUTER_OK,        /* hop worked (whatever the recipients got) */
	ROUTER_FAIL,      /* refused, timeout, TLS, AUTH, 4xx session */
	ROUTER_THROTTLED, /* 454 throttling: slow down, no failure */
};

/* Health of one hop, as the metrics see it. */
struct router_hop_state {
	const char *name;
	bool circuit_open; /* skipped until cool-down ends */
	bool throttled;
	uint32_t recent_failures; /* consecutive */
	uint64_t delivered;       /* successful uses */
	uint64_t failed;          /* failed uses */
	int64_t open_until_ms;
	int64_t throttled_until_ms;
};

/* Looks a hop up by name in the running policy (policy_hop()). */
typedef const Sluice__Hop *(*router_hop_fn)(void *arg, const char *name);

struct router *router_new(const struct router_params *);
void router_free(struct router *);

/*
 * The hops to try for one attempt of a message of size octets to a
 * recipient whose most specific route is route, best first, at most max:
 * the route's groups in order, each group's hops in a weighted random
 * order (weight 0 counts as 1; *seed is advanced).  Skipped: unknown hops,
 * hops whose max_size the message exceeds, hops whose circuit is open.  A
 * hop whose cool-down has ended is included once as the probe.  Throttled
 * hops move behind every healthy one.  Returns the number written.
 */
size_t router_plan(struct router *, const Sluice__Route *, router_hop_fn,
    void *arg, uint64_t size, int64_t now_ms, uint32_t *seed,
    const Sluice__Hop **out, size_t max);
/* Records the outcome of a use of hop name at now_ms. */
void router_result(
    struct router *, const char *name, enum router_outcome, int64_t now_ms);
/* Is the hop usable right now (circuit closed or due for a probe)? */
bool router_hop_available(struct router *, const char *name, int64_t now_ms);
/* Calls cb for every hop seen so far (for metrics and explain). */
void router_foreach(struct router *, int64_t now_ms,
    void (*cb)(const struct router_hop_state *, void *), void *arg);
/* Small xorshift generator shared by the engine and tests. */
uint32_t router_rand(uint32_t *seed);

#endif
