/* store_quota.c - per-credential quota counts (013_quota_usage.sql): a
 * node's counts and allowance upserted at each heartbeat, the rows of a
 * window read back to share what is left, the refusals for the health
 * tick's alerts, old windows removed.  Called by api_node.c and alert.c;
 * errors as in store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int
store_quota_rows(struct store *s, int64_t since, store_quota_cb cb, void *arg)
{
	struct store_quota_row r;
	char b[24];
	const char *vals[1] = {b};
	PGresult *res;
	int rc, i, stop = 0;

	snprintf(b, sizeof(b), "%" PRId64, since);
	if ((res = store_exec(s,
	         "SELECT node_id, user_name, dim, window_start, used, granted,"
	         " refused FROM quota_usage WHERE window_start >= $1::bigint",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++) {
		r.node_id = (uint64_t)store_int(res, i, 0);
		r.user = PQgetvalue(res, i, 1);
		r.dim = PQgetvalue(res, i, 2);
		r.window_start = store_int(res, i, 3);
		r.used = (uint64_t)store_int(res, i, 4);
		r.granted = (uint64_t)store_int(res, i, 5);
		r.refused = (uint64_t)store_int(res, i, 6);
		stop = cb(arg, &r);
	}
	PQclear(res);
	return STORE_OK;
}

int
store_quota_put(struct store *s, const struct store_quota_row *r)
{
	char id[24], ws[24], used[24], granted[24], refused[24];
	const char *vals[7] = {id, r->user, r->dim, ws, used, granted, refused};

	snprintf(id, sizeof(id), "%" PRIu64, r->node_id);
	snprintf(ws, sizeof(ws), "%" PRId64, r->window_start);
	snprintf(used, sizeof(used), "%" PRIu64, r->used);
	snprintf(granted, sizeof(granted), "%" PRIu64, r->granted);
	snprintf(refused, sizeof(refused), "%" PRIu64, r->refused);
	/* A restarted node counts from zero again: its row keeps the
	 * larger count (the mail it accepted before still counts). */
	return store_run(s,
	    "INSERT INTO quota_usage (node_id, user_name, dim, window_start,"
	    " used, granted, refused) VALUES ($1::bigint, $2, $3, $4::bigint,"
	    " $5::bigint, $6::bigint, $7::bigint)"
	    " ON CONFLICT (user_name, dim, window_start, node_id) DO UPDATE"
	    " SET used = GREATEST(quota_usage.used, EXCLUDED.used),"
	    " granted = EXCLUDED.granted,"
	    " refused = GREATEST(quota_usage.refused, EXCLUDED.refused)",
	    7, vals);
}

int
store_quota_expire(struct store *s, int64_t before)
{
	char b[24];
	const char *vals[1] = {b};

	snprintf(b, sizeof(b), "%" PRId64, before);
	return store_run(s,
	    "DELETE FROM quota_usage WHERE window_start < $1::bigint", 1, vals);
}
