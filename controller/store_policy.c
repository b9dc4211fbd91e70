/* store_policy.c - queries on policy_versions (immutable snapshots) and
 * policy_head (the one-row pointer to the current version).  Called by
 * api_node.c (GetPolicy) and api_admin.c (get/apply/history). */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
store_policy_head(struct store *s, bool for_update, uint64_t *version)
{
	PGresult *res;
	int rc;

	if ((res = store_exec(s,
	         for_update ? "SELECT version FROM policy_head FOR UPDATE"
	                    : "SELECT version FROM policy_head",
	         0, NULL, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_ERROR; /* the migration inserts the row */
	}
	*version = (uint64_t)store_int(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}

int
store_policy_hash(struct store *s, uint64_t version, char *hash)
{
	char vb[24];
	const char *vals[1] = {vb};
	PGresult *res;
	int rc;

	hash[0] = '\0';
	if (version == 0)
		return STORE_OK;
	snprintf(vb, sizeof(vb), "%" PRIu64, version);
	if ((res = store_exec(s,
	         "SELECT content_hash FROM policy_versions WHERE version = $1",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	snprintf(hash, STORE_HASH_LEN, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return STORE_OK;
}

int
store_policy_snapshot(
    struct store *s, uint64_t version, uint8_t **buf, size_t *len)
{
	char vb[24];
	const char *vals[1] = {vb};
	unsigned char *raw;
	PGresult *res;
	size_t n;
	int rc;

	*buf = NULL;
	*len = 0;
	snprintf(vb, sizeof(vb), "%" PRIu64, version);
	if ((res = store_exec(s,
	         "SELECT snapshot FROM policy_versions WHERE version = $1", 1,
	         vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &n);
	PQclear(res);
	if (raw == NULL)
		return STORE_ERROR;
	if ((*buf = malloc(n > 0 ? n : 1)) == NULL) {
		PQfreemem(raw);
		return STORE_ERROR;
	}
	memcpy(*buf, raw, n);
	*len = n;
	PQfreemem(raw);
	return STORE_OK;
}

int
store_policy_insert(struct store *s, uint64_t version, const char *identity,
    const char *summary, const uint8_t *snap, size_t len)
{
	char vb[24];
	const char *vals[4] = {vb, identity, summary, (const char *)snap};
	int lens[4] = {0, 0, 0, (int)len};
	int fmts[4] = {0, 0, 0, 1};
	PGresult *res;
	int rc;

	snprintf(vb, sizeof(vb), "%" PRIu64, version);
	if ((res = store_exec(s,
	         "INSERT INTO policy_versions"
	         " (version, identity, summary, snapshot)"
	         " VALUES ($1, $2, $3, $4)",
	         4, vals, lens, fmts, &rc)) == NULL)
		return rc;
	PQclear(res);
	return store_run(s, "UPDATE policy_head SET version = $1", 1, vals);
}

int
store_policy_history(struct store *s, store_version_cb cb, void *arg)
{
	PGresult *res;
	int rc, i;

	if ((res = store_exec(s,
	         "SELECT version, extract(epoch FROM created_at)::bigint,"
	         " identity, summary FROM policy_versions"
	         " ORDER BY version DESC",
	         0, NULL, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res); i++)
		if (cb(arg, (uint64_t)store_int(res, i, 0),
		        store_int(res, i, 1), PQgetvalue(res, i, 2),
		        PQgetvalue(res, i, 3)) != 0)
			break;
	PQclear(res);
	return STORE_OK;
}
