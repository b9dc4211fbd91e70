/* store_metrics.c - the per-minute metrics history (node_minutes): each
 * heartbeat adds its counter increments to the node's row of the current
 * minute and sets the queue gauges; old rows are expired by the health
 * thread.  Called by api_node.c and health.c; errors as in store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>

int
store_metrics_minute(
    struct store *s, uint64_t node_id, const struct store_minute *m)
{
	char b[10][24];
	const char *vals[10];
	const uint64_t v[10] = {node_id, m->connections, m->accepted,
	    m->refused, m->delivered, m->deferred_attempts, m->bounced,
	    m->auth_failures, m->messages, m->oldest_age_s};
	int i;

	for (i = 0; i < 10; i++) {
		/* bigint columns: clamp what a confused node might send */
		snprintf(b[i], sizeof(b[i]), "%" PRIu64,
		    v[i] > INT64_MAX ? (uint64_t)INT64_MAX : v[i]);
		vals[i] = b[i];
	}
	return store_run(s,
	    "INSERT INTO node_minutes (node_id, minute, connections,"
	    " accepted, refused, delivered, deferred_attempts, bounced,"
	    " auth_failures, messages, oldest_age_s)"
	    " VALUES ($1, date_trunc('minute', now()), $2, $3, $4, $5, $6,"
	    " $7, $8, $9, $10)"
	    " ON CONFLICT (node_id, minute) DO UPDATE SET"
	    " connections = node_minutes.connections + excluded.connections,"
	    " accepted = node_minutes.accepted + excluded.accepted,"
	    " refused = node_minutes.refused + excluded.refused,"
	    " delivered = node_minutes.delivered + excluded.delivered,"
	    " deferred_attempts = node_minutes.deferred_attempts"
	    "  + excluded.deferred_attempts,"
	    " bounced = node_minutes.bounced + excluded.bounced,"
	    " auth_failures = node_minutes.auth_failures"
	    "  + excluded.auth_failures,"
	    " messages = excluded.messages,"
	    " oldest_age_s = excluded.oldest_age_s",
	    10, vals);
}

int
store_metrics_expire(struct store *s, int64_t minutes)
{
	char b[24];
	const char *vals[1] = {b};

	snprintf(b, sizeof(b), "%" PRId64, minutes);
	return store_run(s,
	    "DELETE FROM node_minutes WHERE minute <"
	    " now() - make_interval(mins => $1::int)",
	    1, vals);
}
