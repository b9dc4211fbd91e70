/* store_node.c - queries on the nodes table: enrollment, authentication
 * lookup, hello/heartbeat bookkeeping, drain flag and the fleet listing.
 * Called by api_node.c and api_admin.c; errors as in store.h. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
u64(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%" PRIu64, v);
}

int
store_node_auth(struct store *s, const char *name, struct store_node_auth *out)
{
	const char *vals[1] = {name};
	PGresult *res;
	int rc;

	if ((res = store_exec(s,
	         "SELECT id, token_digest, EXISTS (SELECT 1 FROM lost_nodes l"
	         " WHERE l.name = nodes.name) FROM nodes WHERE name = $1",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	out->id = (uint64_t)store_int(res, 0, 0);
	snprintf(out->digest, sizeof(out->digest), "%s", PQgetvalue(res, 0, 1));
	out->is_lost = store_bool(res, 0, 2);
	PQclear(res);
	return STORE_OK;
}

int
store_node_hello(
    struct store *s, uint64_t id, const char *version, const char *address)
{
	char idb[24];
	const char *vals[3] = {idb, version, address};

	u64(idb, sizeof(idb), id);
	return store_run(s,
	    "UPDATE nodes SET software_version = $2, address = $3,"
	    " hello_at = now(), last_heartbeat_at = now() WHERE id = $1",
	    3, vals);
}

int
store_node_policy_mismatch(
    struct store *s, uint64_t id, const char *why, bool *changed)
{
	char idb[24];
	const char *vals[2] = {idb, why};
	PGresult *res;
	int rc;

	u64(idb, sizeof(idb), id);
	*changed = false;
	if ((res = store_exec(s,
	         "UPDATE nodes SET policy_mismatch = $2"
	         " WHERE id = $1 AND policy_mismatch <> $2",
	         2, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	*changed = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	return STORE_OK;
}

int
store_node_heartbeat(struct store *s, uint64_t id, uint64_t policy_version,
    bool from_cache, uint32_t heartbeat_ms, const uint8_t *metrics,
    size_t metrics_len, bool *is_draining, bool *handoff, uint64_t *drain_seq,
    uint8_t **prev, size_t *prevlen)
{
	char idb[24], pvb[24], hbb[16];
	const char *vals[5] = {
	    idb, pvb, from_cache ? "t" : "f", (const char *)metrics, hbb};
	int lens[5] = {0, 0, 0, (int)metrics_len, 0};
	int fmts[5] = {0, 0, 0, 1, 0};
	PGresult *res;
	unsigned char *m;
	size_t mlen;
	int rc;

	u64(idb, sizeof(idb), id);
	u64(pvb, sizeof(pvb), policy_version);
	snprintf(hbb, sizeof(hbb), "%" PRIu32, heartbeat_ms);
	*prev = NULL;
	*prevlen = 0;
	/* The previous metrics come back too: the per-minute history counts
	 * the increments between two heartbeats (store_metrics.c). */
	if ((res = store_exec(s,
	         "WITH old AS (SELECT id, metrics FROM nodes WHERE id = $1"
	         " FOR UPDATE)"
	         " UPDATE nodes SET policy_version = $2,"
	         " policy_from_cache = $3, metrics = $4,"
	         " heartbeat_ms = $5::integer,"
	         " last_heartbeat_at = now() FROM old WHERE nodes.id = old.id"
	         " RETURNING nodes.draining, nodes.drain_seq, old.metrics,"
	         " nodes.handoff",
	         5, vals, lens, fmts, &rc)) == NULL)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	*is_draining = store_bool(res, 0, 0);
	*drain_seq = (uint64_t)store_int(res, 0, 1);
	*handoff = store_bool(res, 0, 3);
	if (!PQgetisnull(res, 0, 2) &&
	    (m = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2),
	         &mlen)) != NULL) {
		if ((*prev = malloc(mlen ? mlen : 1)) != NULL) {
			memcpy(*prev, m, mlen);
			*prevlen = mlen;
		}
		PQfreemem(m);
	}
	PQclear(res);
	return STORE_OK;
}

int
store_node_add(struct store *s, const char *name, const char *digest)
{
	const char *vals[2] = {name, digest};

	/* A name enrolled again is a new node: no longer lost. */
	return store_run(s,
	    "WITH f AS (DELETE FROM lost_nodes WHERE name = $1)"
	    " INSERT INTO nodes (name, token_digest) VALUES ($1, $2)",
	    2, vals);
}

/* For statements that must touch exactly one named node. */
static int
store_node_one(struct store *s, const char *sql, int n, const char *const *vals)
{
	PGresult *res;
	int rc;

	if ((res = store_exec(s, sql, n, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	rc = strcmp(PQcmdTuples(res), "1") == 0 ? STORE_OK : STORE_NOT_FOUND;
	PQclear(res);
	return rc;
}

int
store_node_remove(struct store *s, const char *name)
{
	const char *vals[1] = {name};

	/* Its peers promote the shadow copies they still hold of it
	 * (docs/redundancy.md). */
	return store_node_one(s,
	    "WITH l AS (INSERT INTO lost_nodes (name, reason)"
	    " SELECT name, 'removed' FROM nodes WHERE name = $1"
	    " ON CONFLICT (name) DO NOTHING)"
	    " DELETE FROM nodes WHERE name = $1",
	    1, vals);
}

int
store_node_set_draining(
    struct store *s, const char *name, bool on, bool handoff)
{
	const char *vals[3] = {name, on ? "t" : "f", on && handoff ? "t" : "f"};

	/* drain_seq moves only on a real change: it is the command id. */
	return store_node_one(s,
	    "UPDATE nodes SET draining = $2, handoff = $3,"
	    " drain_seq = drain_seq + CASE WHEN draining = $2 AND"
	    "  handoff = $3 THEN 0 ELSE 1 END"
	    " WHERE name = $1",
	    3, vals);
}

int
store_node_peers(struct store *s, uint64_t self, int64_t silent_after_ms,
    store_peer_cb cb, void *arg)
{
	char ib[24], sb[24];
	const char *vals[2] = {ib, sb};
	PGresult *res;
	int rc, i, stop = 0;

	u64(ib, sizeof(ib), self);
	snprintf(sb, sizeof(sb), "%" PRId64, silent_after_ms);
	if ((res = store_exec(s,
	         "SELECT name, address, shadow_address FROM nodes"
	         " WHERE id <> $1 AND NOT draining"
	         " AND address <> '' AND last_heartbeat_at >"
	         " now() - sluice_silent_after($2::bigint, heartbeat_ms)"
	         " ORDER BY name",
	         2, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++)
		stop = cb(arg, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2));
	PQclear(res);
	return STORE_OK;
}

int
store_node_list(struct store *s, store_node_cb cb, void *arg)
{
	struct store_node_row r;
	PGresult *res;
	unsigned char *m;
	size_t mlen;
	int64_t window;
	int rc, i, stop = 0;

	if ((res = store_exec(s,
	         "SELECT id, name, address, software_version, policy_version,"
	         " coalesce(extract(epoch FROM last_heartbeat_at)::bigint, 0),"
	         /* as of this statement, not the transaction: a heartbeat
	          * committed since the tick began is not "in the future" */
	         " coalesce((extract(epoch FROM greatest(statement_timestamp()"
	         "  - last_heartbeat_at, '0')) * 1000)::bigint, -1),"
	         " extract(epoch FROM created_at)::bigint,"
	         " draining, policy_from_cache, metrics,"
	         " coalesce(h.accepted, 0), coalesce(h.delivered, 0),"
	         " coalesce(h.auth_failures, 0),"
	         " 60 + extract(epoch FROM now() - date_trunc('minute', now()))"
	         "  ::bigint, heartbeat_ms, policy_mismatch,"
	         " coalesce((SELECT extract(epoch FROM l.lost_at)::bigint"
	         "  FROM lost_nodes l WHERE l.name = nodes.name), 0),"
	         " shadow_address"
	         " FROM nodes LEFT JOIN LATERAL (SELECT sum(accepted) accepted,"
	         "  sum(delivered) delivered, max(auth_failures) auth_failures"
	         "  FROM node_minutes WHERE node_id = nodes.id AND minute >="
	         "  date_trunc('minute', now()) - interval '1 minute') h ON "
	         "true"
	         " ORDER BY name",
	         0, NULL, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++) {
		memset(&r, 0, sizeof(r));
		r.id = (uint64_t)store_int(res, i, 0);
		r.name = PQgetvalue(res, i, 1);
		r.address = PQgetvalue(res, i, 2);
		r.software_version = PQgetvalue(res, i, 3);
		r.policy_version = (uint64_t)store_int(res, i, 4);
		r.last_heartbeat_at = store_int(res, i, 5);
		r.heartbeat_age_ms = store_int(res, i, 6);
		r.created_at = store_int(res, i, 7);
		r.is_draining = store_bool(res, i, 8);
		r.policy_from_cache = store_bool(res, i, 9);
		m = NULL;
		if (!PQgetisnull(res, i, 10)) {
			m = PQunescapeBytea(
			    (const unsigned char *)PQgetvalue(res, i, 10),
			    &mlen);
			r.metrics = m;
			r.metrics_len = m ? mlen : 0;
		}
		/* Previous and current minute, as a rate per minute. */
		window = store_int(res, i, 14);
		if (window <= 0)
			window = 60;
		r.accepted_per_min =
		    (uint64_t)(store_int(res, i, 11) * 60 / window);
		r.delivered_per_min =
		    (uint64_t)(store_int(res, i, 12) * 60 / window);
		r.auth_failures_per_min = (uint64_t)store_int(res, i, 13);
		r.heartbeat_ms = store_int(res, i, 15);
		r.policy_mismatch = PQgetvalue(res, i, 16);
		r.lost_at = store_int(res, i, 17);
		r.shadow_address = PQgetvalue(res, i, 18);
		stop = cb(arg, &r);
		PQfreemem(m);
	}
	PQclear(res);
	return STORE_OK;
}

int
store_node_live(
    struct store *s, int64_t silent_after_ms, store_live_cb cb, void *arg)
{
	char b[24];
	const char *vals[1] = {b};
	PGresult *res;
	unsigned char *m;
	size_t mlen;
	int rc, i, stop = 0;

	snprintf(b, sizeof(b), "%" PRId64, silent_after_ms);
	if ((res = store_exec(s,
	         "SELECT id, metrics FROM nodes WHERE last_heartbeat_at >"
	         " now() - sluice_silent_after($1::bigint, heartbeat_ms)"
	         " ORDER BY id",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++) {
		m = NULL;
		mlen = 0;
		if (!PQgetisnull(res, i, 1))
			m = PQunescapeBytea(
			    (const unsigned char *)PQgetvalue(res, i, 1),
			    &mlen);
		stop = cb(arg, (uint64_t)store_int(res, i, 0), m, m ? mlen : 0);
		PQfreemem(m);
	}
	PQclear(res);
	return STORE_OK;
}

int
store_node_live_aged(
    struct store *s, int64_t silent_after_ms, store_aged_cb cb, void *arg)
{
	char b[24];
	const char *vals[1] = {b};
	PGresult *res;
	unsigned char *m;
	size_t mlen;
	int rc, i, stop = 0;

	snprintf(b, sizeof(b), "%" PRId64, silent_after_ms);
	if ((res = store_exec(s,
	         "SELECT name, (extract(epoch FROM now() - last_heartbeat_at)"
	         " * 1000)::bigint, metrics FROM nodes"
	         " WHERE last_heartbeat_at >"
	         " now() - sluice_silent_after($1::bigint, heartbeat_ms)"
	         " AND metrics IS NOT NULL ORDER BY id",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res) && stop == 0; i++) {
		mlen = 0;
		m = PQunescapeBytea(
		    (const unsigned char *)PQgetvalue(res, i, 2), &mlen);
		if (m == NULL)
			continue;
		stop = cb(
		    arg, PQgetvalue(res, i, 0), store_int(res, i, 1), m, mlen);
		PQfreemem(m);
	}
	PQclear(res);
	return STORE_OK;
}
