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
	ROUTER_OK,        /* hop accepted mail: credited as a delivery */
	ROUTER_ANSWERED,  /* hop worked but accepted nothing (5xx to all) */
	ROUTER_FAIL,      /* refused, timeout, TLS, AUTH, any 4xx, close */
	ROUTER_THROTTLED, /* throttling: slow down, no failure */
};

/* May a job use a hop now (router_take)? */
enum router_admit {
	ROUTER_GO,    /* circuit closed */
	ROUTER_PROBE, /* half-open: the caller now holds the one probe */
	ROUTER_WAIT,  /* half-open, a probe is out: wait for its outcome */
	ROUTER_SKIP,  /* circuit open, cooling down */
};

/* What a result did to the circuit, for the one log line per change. */
enum router_change {
	ROUTER_SAME,
	ROUTER_OPENED, /* closed or half-open -> open */
	ROUTER_CLOSED, /* open or half-open -> closed */
};

/* Health of one hop, as the metrics see it. */
struct router_hop_state {
	const char *name;
	bool circuit_open;        /* skipped until cool-down ends */
	bool half_open;           /* cool-down over, probing */
	bool throttled;           /* own_throttled or fleet_paused */
	bool own_throttled;       /* from this node's own replies */
	bool fleet_paused;        /* the controller said so (another node's) */
	const char *fleet_by;     /* that node, when fleet_paused */
	uint32_t recent_failures; /* consecutive */
	uint64_t delivered;       /* successful uses */
	uint64_t failed;          /* failed uses */
	int64_t open_until_ms;
	int64_t throttled_until_ms; /* the later of both pauses */
	int64_t own_throttled_until_ms;
	int64_t throttle_window_ms; /* from the provider's reply; 0: back-off */
	const char *problem_scope;  /* "hop-config", "account" or "" */
	const char *problem;        /* the reply that said so */
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
 * hops whose max_size the message exceeds, hops whose circuit is open and
 * cooling down.  A half-open hop (cool-down over) is included: whether
 * the job may use it is decided when it gets there (router_take).
 * Throttled hops move behind every healthy one.  Returns the number
 * written.  No side effects on the circuits.
 */
size_t router_plan(struct router *, const Sluice__Route *, router_hop_fn,
    void *arg, uint64_t size, int64_t now_ms, uint32_t *seed,
    const Sluice__Hop **out, size_t max);
/*
 * A job is about to hand mail to hop name.  GO: closed.  PROBE: the
 * cool-down is over and no probe is out; the caller's transaction is the
 * probe (a probe that has not reported back for a cool-down is replaced).
 * WAIT: another job's probe is out; its outcome decides.  SKIP: open.
 */
enum router_admit router_take(
    struct router *, const char *name, int64_t now_ms);
/* The same answer without taking the probe. */
enum router_admit router_state(
    struct router *, const char *name, int64_t now_ms);
/* Records the outcome of a use of hop name at now_ms. */
enum router_change router_result(
    struct router *, const char *name, enum router_outcome, int64_t now_ms);
/* A throttling reply named its window (a provider's daily quota): the
 * hop stays behind the others until now_ms + window_ms at least. */
void router_throttle_for(
    struct router *, const char *name, int64_t window_ms, int64_t now_ms);
/* Fleet-wide pauses (issue 10), from the controller's heartbeat reply,
 * which lists them all: reset, then one router_fleet_pause per hop.  A
 * paused hop goes behind the others like a throttled one until now_ms +
 * for_ms; by names the node that met the throttle. */
void router_fleet_reset(struct router *);
void router_fleet_pause(struct router *, const char *name, int64_t for_ms,
    int64_t window_ms, const char *by, int64_t now_ms);
bool router_fleet_paused(struct router *, const char *name, int64_t now_ms);
/* A reply said the hop needs its operator (credentials, configuration,
 * the provider account): kept, for alerts, until the hop accepts mail
 * again.  True when this is news (another scope or reply text). */
bool router_problem(
    struct router *, const char *name, const char *scope, const char *reply);
/* The reply (or local reason) the hop's last failure ended with, for
 * the circuit's log lines; "" when none.  Valid until the next call. */
void router_set_last(struct router *, const char *name, const char *reply);
const char *router_last(struct router *, const char *name);
/* Is the hop usable right now (circuit closed or due for a probe)? */
bool router_hop_available(struct router *, const char *name, int64_t now_ms);
/* Cool-down, for callers that re-check waiting jobs. */
int64_t router_cooldown_ms(const struct router *);
/* Calls cb for every hop seen so far (for metrics and explain). */
void router_foreach(struct router *, int64_t now_ms,
    void (*cb)(const struct router_hop_state *, void *), void *arg);
/* Small xorshift generator shared by the engine and tests. */
uint32_t router_rand(uint32_t *seed);

#endif
