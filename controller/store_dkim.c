/* store_dkim.c - the DKIM DNS check's results (migration 009): written by
 * dkim_watch.c, read by alert.c.  Errors as in store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>

int
store_dkim_dns_set(struct store *s, const char *name, const char *status,
    const char *detail, int64_t run)
{
	char r[24];
	const char *vals[4] = {name, status, detail, r};
	PGresult *res;
	int rc;

	snprintf(r, sizeof(r), "%" PRId64, run);
	if ((res = store_exec(s,
	         "INSERT INTO dkim_dns (name, status, detail, run)"
	         " VALUES ($1, $2, $3, $4::bigint)"
	         " ON CONFLICT (name) DO UPDATE SET status = $2,"
	         " detail = $3, run = $4::bigint, checked_at = now()",
	         4, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	PQclear(res);
	return STORE_OK;
}

int
store_dkim_dns_keep(struct store *s, const char *name, int64_t run)
{
	char r[24];
	const char *vals[2] = {name, r};
	PGresult *res;
	int rc;

	snprintf(r, sizeof(r), "%" PRId64, run);
	if ((res = store_exec(s,
	         "UPDATE dkim_dns SET run = $2::bigint WHERE name = $1", 2,
	         vals, NULL, NULL, &rc)) == NULL)
		return rc;
	PQclear(res);
	return STORE_OK;
}

int
store_dkim_dns_prune(struct store *s, int64_t run)
{
	char r[24];
	const char *vals[1] = {r};
	PGresult *res;
	int rc;

	snprintf(r, sizeof(r), "%" PRId64, run);
	if ((res = store_exec(s, "DELETE FROM dkim_dns WHERE run <> $1::bigint",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	PQclear(res);
	return STORE_OK;
}

int
store_dkim_dns_list(struct store *s, store_dkim_dns_cb cb, void *arg)
{
	PGresult *res;
	int rc, i, stop = 0;

	if ((res = store_exec(s,
	         "SELECT name, status, detail FROM dkim_dns ORDER BY name", 0,
	         NULL, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++)
		stop = cb(arg, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2));
	PQclear(res);
	return STORE_OK;
}
