/* store_command.c - fleet queue commands: one row per target node, handed
 * out with the node's heartbeat replies until its result arrives.  Called
 * by api_admin.c (add, get), api_node.c (pending, done) and health.c
 * (expire); errors as in store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_COMMAND_COLS                                                     \
	"c.id, c.node_name, c.kind, c.queue_id, c.state, c.domain, c.lim,"     \
	" extract(epoch FROM c.created_at)::bigint, c.done_at IS NOT NULL,"    \
	" c.result"

static int
store_command_rows(PGresult *res, store_command_cb cb, void *arg)
{
	struct store_command_row r;
	unsigned char *m;
	size_t mlen;
	int i, stop = 0;

	for (i = 0; i < PQntuples(res) && stop == 0; i++) {
		memset(&r, 0, sizeof(r));
		r.id = (uint64_t)store_int(res, i, 0);
		r.node = PQgetvalue(res, i, 1);
		r.kind = (int)store_int(res, i, 2);
		r.queue_id = PQgetvalue(res, i, 3);
		r.state = PQgetvalue(res, i, 4);
		r.domain = PQgetvalue(res, i, 5);
		r.limit = (uint32_t)store_int(res, i, 6);
		r.created_at = store_int(res, i, 7);
		r.done = store_bool(res, i, 8);
		m = NULL;
		if (!PQgetisnull(res, i, 9) &&
		    (m = PQunescapeBytea(
		         (const unsigned char *)PQgetvalue(res, i, 9),
		         &mlen)) != NULL) {
			r.result = m;
			r.result_len = mlen;
		}
		stop = cb(arg, &r);
		PQfreemem(m);
	}
	return stop;
}

int
store_command_add(struct store *s, const char *node, int kind,
    const char *queue_id, const char *state, const char *domain, uint32_t limit,
    uint64_t *id)
{
	char kb[16], lb[16];
	const char *vals[6] = {node, kb, queue_id, state, domain, lb};
	PGresult *res;
	int rc;

	snprintf(kb, sizeof(kb), "%d", kind);
	snprintf(lb, sizeof(lb), "%" PRIu32, limit > INT32_MAX ? 0 : limit);
	if ((res = store_exec(s,
	         "INSERT INTO commands (node_id, node_name, kind, queue_id,"
	         " state, domain, lim)"
	         " SELECT id, name, $2, $3, $4, $5, $6 FROM nodes"
	         " WHERE name = $1 RETURNING id",
	         6, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	*id = (uint64_t)store_int(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}

int
store_command_live_nodes(
    struct store *s, int64_t silent_after_ms, store_command_cb cb, void *arg)
{
	struct store_command_row r;
	char b[24];
	const char *vals[1] = {b};
	PGresult *res;
	int rc, i, stop = 0;

	snprintf(b, sizeof(b), "%" PRId64, silent_after_ms);
	if ((res = store_exec(s,
	         "SELECT name FROM nodes WHERE last_heartbeat_at >"
	         " now() - sluice_silent_after($1::bigint, heartbeat_ms)"
	         " ORDER BY name",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++) {
		memset(&r, 0, sizeof(r));
		r.node = PQgetvalue(res, i, 0);
		stop = cb(arg, &r);
	}
	PQclear(res);
	return STORE_OK;
}

int
store_command_pending(struct store *s, uint64_t node_id, uint32_t max,
    store_command_cb cb, void *arg)
{
	char ib[24], mb[16];
	const char *vals[2] = {ib, mb};
	PGresult *res;
	int rc;

	snprintf(ib, sizeof(ib), "%" PRIu64, node_id);
	snprintf(mb, sizeof(mb), "%" PRIu32, max);
	if ((res = store_exec(s,
	         "UPDATE commands c SET sent_at = coalesce(sent_at, now())"
	         " WHERE c.id IN (SELECT id FROM commands WHERE node_id = $1"
	         " AND done_at IS NULL ORDER BY id LIMIT $2::int)"
	         " RETURNING " STORE_COMMAND_COLS,
	         2, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	store_command_rows(res, cb, arg);
	PQclear(res);
	return STORE_OK;
}

int
store_command_done(struct store *s, uint64_t node_id, uint64_t id,
    const uint8_t *result, size_t len)
{
	char nb[24], ib[24];
	const char *vals[3] = {nb, ib, (const char *)result};
	int lens[3] = {0, 0, (int)len};
	int fmts[3] = {0, 0, 1};
	PGresult *res;
	int rc;

	snprintf(nb, sizeof(nb), "%" PRIu64, node_id);
	snprintf(ib, sizeof(ib), "%" PRIu64, id > INT64_MAX ? 0 : id);
	if ((res = store_exec(s,
	         "UPDATE commands SET done_at = now(), result = $3"
	         " WHERE node_id = $1 AND id = $2 AND done_at IS NULL",
	         3, vals, lens, fmts, &rc)) == NULL)
		return rc;
	PQclear(res);
	return STORE_OK;
}

int
store_command_get(struct store *s, uint64_t id, store_command_cb cb, void *arg)
{
	char ib[24];
	const char *vals[1] = {ib};
	PGresult *res;
	int rc;

	snprintf(ib, sizeof(ib), "%" PRIu64, id > INT64_MAX ? 0 : id);
	if ((res = store_exec(s,
	         "SELECT " STORE_COMMAND_COLS " FROM commands c WHERE id = $1",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	store_command_rows(res, cb, arg);
	PQclear(res);
	return STORE_OK;
}

int
store_command_expire(struct store *s, int64_t seconds)
{
	char b[24];
	const char *vals[1] = {b};

	/* result NULL on a done command: it timed out (api_admin.c says so) */
	snprintf(b, sizeof(b), "%" PRId64, seconds);
	return store_run(s,
	    "UPDATE commands SET done_at = now() WHERE done_at IS NULL"
	    " AND created_at < now() - make_interval(secs => $1::bigint)",
	    1, vals);
}
