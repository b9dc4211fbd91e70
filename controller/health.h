/* health.h - pure: from the fleet's latest node rows, the policy and the
 * alert thresholds, the set of alert conditions that hold now.  No I/O:
 * alert.c feeds it from the store and turns its answer into raised and
 * cleared alerts; tests/unit feeds it tables. */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct health_node {
	const char *name;
	bool is_new;                         /* never heard from */
	int64_t heartbeat_age_ms;            /* -1: never */
	const Sluice__QueueMetrics *metrics; /* NULL: none yet */
	uint64_t auth_failures_per_min;
	int64_t heartbeat_ms;        /* the node's own interval, 0: unknown */
	uint64_t events_quarantined; /* in the last day */
};

struct health_input {
	const struct health_node *nodes;
	size_t nnodes;
	const Sluice__Policy *policy; /* routes and alert_* limits; NULL */
	int64_t silent_after_ms;      /* 0: three of each node's heartbeats */
	/* How long this controller has watched without a break: running,
	 * PostgreSQL reachable, receiving.  A node is judged silent only
	 * after a whole silent period of watching: heartbeats that could
	 * not arrive (controller restart, store outage) prove nothing. */
	int64_t watched_ms;
};

/* One condition: kind, subject and a sentence for the operator. */
struct health_alert {
	char kind[24];
	char subject[160];
	char message[256];
};

/* Calls cb for every condition that holds; returns how many. */
typedef void (*health_cb)(void *arg, const struct health_alert *);
size_t health_evaluate(const struct health_input *, health_cb, void *arg);

/* The silent period of one node: the configured one, else three of the
 * node's heartbeat intervals (the node's default, 2 s, when unknown), at
 * least HEALTH_SILENT_MIN_MS (migration 005's sluice_silent_after() says
 * the same in SQL). */
#define HEALTH_SILENT_MIN_MS 2000
int64_t health_silent_after(int64_t configured_ms, int64_t heartbeat_ms);

/* A node's state for people: "new" (never heard from), "silent" (no
 * heartbeat for silent_after_ms), "drained" (draining and the node says
 * its queue is empty), "draining", "up". */
const char *health_state(int64_t last_heartbeat_at, int64_t heartbeat_age_ms,
    int64_t silent_after_ms, bool is_draining, const Sluice__QueueMetrics *);

#endif
