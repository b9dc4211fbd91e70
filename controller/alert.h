/* alert.h - the controller's health tick: evaluates health (health.c)
 * over the store's node rows and policy, raises and clears alerts (once
 * fleet-wide: the store's unique index and an advisory lock), expires the
 * metrics history and unanswered commands, and once a minute keeps the
 * delivery record's day partitions (made ahead, dropped after retention).  Runs
 * on the controller's health thread with its own store connection. */
#ifndef SLUICE_ALERT_H
#define SLUICE_ALERT_H

#include <stdint.h>

#include "store.h"

struct webhook;

struct alert_config {
	int64_t silent_after_ms;       /* 0: three of each node's heartbeats */
	int64_t interval_ms;           /* between ticks */
	int64_t retention_minutes;     /* node_minutes kept */
	int64_t command_timeout_s;     /* unanswered commands fail after */
	const char *who;               /* "controller pid 123", for raised_by */
	struct webhook *webhook;       /* NULL: none */
	int64_t events_retention_days; /* 0: keep the delivery record */
	int64_t webhook_alert_after_s; /* event webhook failing this long */
	int64_t maintained_at;         /* last partition upkeep, monotonic s */
	/* Watching without a break since (monotonic ms, 0: not now): set
	 * when a tick reaches the store, reset by a failed tick or a gap
	 * between ticks (the process was stopped). */
	int64_t watch_from_ms;
	int64_t last_tick_ms;
	/* The last tick found the store away: the node endpoint's store,
	 * which records heartbeats, reconnects on its own schedule. */
	bool store_was_away;
	uint64_t store_reconnects; /* store_reconnects() at the last tick */
};

/* One evaluation.  Errors are logged by the store and retried next tick. */
void alert_tick(struct store *, struct alert_config *);

#endif
