/* store_alert.c - alerts: raised once fleet-wide (INSERT ... ON CONFLICT
 * DO NOTHING against the partial unique index on open (kind, subject)),
 * cleared with a timestamp, listed for sluicectl; and the advisory lock
 * that lets one controller at a time evaluate health.  Called by
 * alert.c, health.c and api_admin.c; errors as in store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* pg_try_advisory_xact_lock key: "sluice health" */
#define STORE_HEALTH_LOCK "7305948311"

int
store_alert_raise(struct store *s, const char *kind, const char *subject,
    const char *message, const char *by, bool *raised)
{
	const char *vals[4] = {kind, subject, message, by};
	PGresult *res;
	int rc;

	if ((res = store_exec(s,
	         "INSERT INTO alerts (kind, subject, message, raised_by)"
	         " VALUES ($1, $2, $3, $4)"
	         " ON CONFLICT (kind, subject) WHERE cleared_at IS NULL"
	         " DO NOTHING",
	         4, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	*raised = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	return STORE_OK;
}

int
store_alert_clear(
    struct store *s, const char *kind, const char *subject, bool *cleared)
{
	const char *vals[2] = {kind, subject};
	PGresult *res;
	int rc;

	if ((res = store_exec(s,
	         "UPDATE alerts SET cleared_at = now() WHERE kind = $1"
	         " AND subject = $2 AND cleared_at IS NULL",
	         2, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	*cleared = strcmp(PQcmdTuples(res), "0") != 0;
	PQclear(res);
	return STORE_OK;
}

int
store_alert_list(struct store *s, bool open_only, uint32_t recent,
    store_alert_cb cb, void *arg)
{
	struct store_alert_row r;
	char b[24];
	const char *vals[1] = {b};
	PGresult *res;
	int rc, i, stop = 0;

	snprintf(b, sizeof(b), "%" PRIu32, open_only ? 0 : recent);
	if ((res = store_exec(s,
	         "(SELECT id, kind, subject, message,"
	         "  extract(epoch FROM raised_at)::bigint, 0::bigint, 0 o"
	         "  FROM alerts WHERE cleared_at IS NULL)"
	         " UNION ALL"
	         " (SELECT id, kind, subject, message,"
	         "  extract(epoch FROM raised_at)::bigint,"
	         "  extract(epoch FROM cleared_at)::bigint, 1 o"
	         "  FROM alerts WHERE cleared_at IS NOT NULL"
	         "  ORDER BY cleared_at DESC, id DESC LIMIT $1::int)"
	         " ORDER BY o, 6 DESC, 5, 1",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++) {
		memset(&r, 0, sizeof(r));
		r.id = (uint64_t)store_int(res, i, 0);
		r.kind = PQgetvalue(res, i, 1);
		r.subject = PQgetvalue(res, i, 2);
		r.message = PQgetvalue(res, i, 3);
		r.raised_at = store_int(res, i, 4);
		r.cleared_at = store_int(res, i, 5);
		stop = cb(arg, &r);
	}
	PQclear(res);
	return STORE_OK;
}

int
store_health_lock(struct store *s, bool *got)
{
	PGresult *res;
	int rc;

	if ((rc = store_begin(s)) != STORE_OK)
		return rc;
	if ((res = store_exec(s,
	         "SELECT pg_try_advisory_xact_lock(" STORE_HEALTH_LOCK ")", 0,
	         NULL, NULL, NULL, &rc)) == NULL) {
		store_rollback(s);
		return rc;
	}
	*got = store_bool(res, 0, 0);
	PQclear(res);
	if (!*got)
		store_rollback(s);
	return STORE_OK;
}
