/* store_outbox.c - the outbound event webhooks' durable outbox (migration
 * 008, docs/webhooks.md).  Events are enqueued by a trigger on events in
 * the transaction that stores them; this file holds the endpoints' filters
 * and the delivery side: a batch is claimed with FOR UPDATE SKIP LOCKED in
 * a transaction that stays open while outbox.c POSTs it, so several
 * controllers never send the same rows at once, and a controller that dies
 * mid-POST releases them (at-least-once).  Called by outbox.c (the worker
 * threads), metrics_http.c and alert.c. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A PostgreSQL text[] literal of plain tokens (kinds, domains: no quotes
 * or backslashes, outbox_format.c checked them). */
static void
store_outbox_array(
    char *out, size_t len, const char *v, size_t stride, size_t n)
{
	size_t i, o = 0;

	o += (size_t)snprintf(out + o, len - o, "{");
	for (i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s\"%s\"",
		    i > 0 ? "," : "", v + i * stride);
	if (o < len)
		snprintf(out + o, len - o, "}");
}

int
store_outbox_endpoint(struct store *s, const char *name, const char *kinds,
    size_t kind_stride, size_t n_kinds, const char *senders,
    size_t sender_stride, size_t n_senders)
{
	char k[4096], d[12288];
	const char *vals[3] = {name, k, d};

	store_outbox_array(k, sizeof(k), kinds, kind_stride, n_kinds);
	store_outbox_array(d, sizeof(d), senders, sender_stride, n_senders);
	return store_run(s,
	    "INSERT INTO webhook_endpoints (name, kinds, senders)"
	    " VALUES ($1, $2::text[], $3::text[])"
	    " ON CONFLICT (name) DO UPDATE SET kinds = excluded.kinds,"
	    " senders = excluded.senders, updated_at = now()"
	    " WHERE webhook_endpoints.kinds IS DISTINCT FROM excluded.kinds"
	    " OR webhook_endpoints.senders IS DISTINCT FROM excluded.senders",
	    3, vals);
}

int
store_outbox_claim(struct store *s, const char *endpoint, int batch,
    int *failures, store_outbox_cb cb, void *arg, size_t *n)
{
	char bb[16];
	const char *vals[2] = {endpoint, bb};
	Sluice__Event e;
	PGresult *res;
	char *rcpts, *p, **rv;
	size_t k;
	int rc, i;

	*n = 0;
	*failures = 0;
	snprintf(bb, sizeof(bb), "%d", batch);
	if ((rc = store_begin(s)) != STORE_OK)
		return rc;
	/* Backing off after failures (any controller's): not yet. */
	if ((res = store_exec(s,
	         "SELECT failures FROM webhook_endpoints"
	         " WHERE name = $1 AND retry_at <= now()",
	         1, vals, NULL, NULL, &rc)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		store_rollback(s);
		return STORE_NOT_FOUND;
	}
	*failures = (int)store_int(res, 0, 0);
	PQclear(res);
	/* LEFT JOIN: an event gone with its day partition (retention) still
	 * hands its row over, to be deleted. */
	if ((res = store_exec(s,
	         "SELECT o.id, e.node_id, e.node_name, e.seq,"
	         " (extract(epoch FROM e.at) * 1000)::bigint, e.kind,"
	         " e.queue_id, e.message_id, e.client, e.auth_user, e.sender,"
	         " array_to_string(e.recipients, E'\\n'), e.recipient, e.size,"
	         " e.hop, e.host, e.code, e.enhanced, e.reply, e.duration_ms,"
	         " e.tls, e.dkim, e.id IS NULL"
	         " FROM (SELECT id, event_id, event_at FROM webhook_outbox"
	         "  WHERE endpoint = $1 ORDER BY id LIMIT $2::int"
	         "  FOR UPDATE SKIP LOCKED) o"
	         " LEFT JOIN events e ON e.id = o.event_id AND e.at = "
	         "o.event_at"
	         " ORDER BY o.id",
	         2, vals, NULL, NULL, &rc)) == NULL)
		goto fail;
	for (i = 0; i < PQntuples(res); i++) {
		uint64_t oid = (uint64_t)store_int(res, i, 0);

		if (store_bool(res, i, 22)) {
			cb(arg, oid, 0, NULL, NULL);
			continue;
		}
		sluice__event__init(&e);
		e.seq = (uint64_t)store_int(res, i, 3);
		e.at_ms = store_int(res, i, 4);
		e.kind = PQgetvalue(res, i, 5);
		e.queue_id = PQgetvalue(res, i, 6);
		e.message_id = PQgetvalue(res, i, 7);
		e.client = PQgetvalue(res, i, 8);
		e.auth_user = PQgetvalue(res, i, 9);
		e.sender = PQgetvalue(res, i, 10);
		e.recipient = PQgetvalue(res, i, 12);
		e.size = (uint64_t)store_int(res, i, 13);
		e.hop = PQgetvalue(res, i, 14);
		e.host = PQgetvalue(res, i, 15);
		e.code = (uint32_t)store_int(res, i, 16);
		e.enhanced = PQgetvalue(res, i, 17);
		e.reply = PQgetvalue(res, i, 18);
		e.duration_ms = (uint32_t)store_int(res, i, 19);
		e.tls = store_bool(res, i, 20);
		e.dkim = PQgetvalue(res, i, 21);
		/* Addresses cannot hold a newline (RFC 5321): a safe join. */
		rcpts = PQgetvalue(res, i, 11);
		k = rcpts[0] != '\0' ? 1 : 0;
		for (p = rcpts; *p != '\0'; p++)
			k += *p == '\n';
		if ((rv = calloc(k + 1, sizeof(*rv))) == NULL) {
			PQclear(res);
			rc = STORE_ERROR;
			goto fail;
		}
		for (k = 0, p = rcpts; *rcpts != '\0' && p != NULL; k++) {
			rv[k] = p;
			if ((p = strchr(p, '\n')) != NULL)
				*p++ = '\0';
		}
		e.recipients = rv;
		e.n_recipients = k;
		cb(arg, oid, (uint64_t)store_int(res, i, 1),
		    PQgetvalue(res, i, 2), &e);
		free(rv);
	}
	*n = (size_t)PQntuples(res);
	PQclear(res);
	if (*n == 0) {
		store_rollback(s);
		return STORE_OK;
	}
	return STORE_OK; /* the transaction stays open: _sent or _failed */
fail:
	store_rollback(s);
	return rc;
}

/* "{1,2,3}" of the claimed ids; malloc'd, NULL on ENOMEM. */
static char *
store_outbox_ids(const uint64_t *ids, size_t n)
{
	size_t len = 3 + n * 21, i, o = 0;
	char *b;

	if ((b = malloc(len)) == NULL)
		return NULL;
	b[o++] = '{';
	for (i = 0; i < n; i++)
		o += (size_t)snprintf(
		    b + o, len - o, "%s%" PRIu64, i > 0 ? "," : "", ids[i]);
	snprintf(b + o, len - o, "}");
	return b;
}

int
store_outbox_sent(struct store *s, const char *endpoint, const uint64_t *ids,
    size_t n, size_t events)
{
	char cnt[24], *arr;
	const char *vals[3];
	int rc;

	if ((arr = store_outbox_ids(ids, n)) == NULL) {
		store_rollback(s);
		return STORE_ERROR;
	}
	snprintf(cnt, sizeof(cnt), "%zu", events);
	vals[0] = endpoint;
	vals[1] = arr;
	vals[2] = cnt;
	if ((rc = store_run(s,
	         "DELETE FROM webhook_outbox WHERE id = ANY ($2::bigint[])"
	         " AND endpoint = $1",
	         2, vals)) != STORE_OK ||
	    (rc = store_run(s,
	         "UPDATE webhook_endpoints SET sent = sent + $2::bigint,"
	         " failures = 0, failing_since = NULL, last_error = '',"
	         " retry_at = now() WHERE name = $1",
	         2, (const char *const[]){endpoint, cnt})) != STORE_OK ||
	    (rc = store_commit(s)) != STORE_OK)
		store_rollback(s);
	free(arr);
	return rc;
}

int
store_outbox_failed(struct store *s, const char *endpoint, const uint64_t *ids,
    size_t n, const char *error, int64_t retry_ms)
{
	char ms[24], *arr;
	const char *vals[3];
	int rc;

	if ((arr = store_outbox_ids(ids, n)) == NULL) {
		store_rollback(s);
		return STORE_ERROR;
	}
	snprintf(ms, sizeof(ms), "%" PRId64, retry_ms);
	vals[0] = endpoint;
	vals[1] = arr;
	vals[2] = error;
	if ((rc = store_run(s,
	         "UPDATE webhook_outbox SET attempts = attempts + 1"
	         " WHERE id = ANY ($2::bigint[]) AND endpoint = $1",
	         2, vals)) != STORE_OK ||
	    (rc = store_run(s,
	         "UPDATE webhook_endpoints SET failed = failed + 1,"
	         " failures = failures + 1,"
	         " failing_since = coalesce(failing_since, now()),"
	         " last_error = $2,"
	         " retry_at = now() + make_interval(secs => $3::bigint / "
	         "1000.0)"
	         " WHERE name = $1",
	         3, (const char *const[]){endpoint, error, ms})) != STORE_OK ||
	    (rc = store_commit(s)) != STORE_OK)
		store_rollback(s);
	free(arr);
	return rc;
}

int
store_outbox_stats(struct store *s, store_outbox_stats_cb cb, void *arg)
{
	struct store_outbox_stats st;
	PGresult *res;
	int rc, i;

	/* The oldest row by the (endpoint, id) index: no scan for it. */
	if ((res = store_exec(s,
	         "SELECT w.name, w.sent, w.failed,"
	         " (SELECT count(*) FROM webhook_outbox o"
	         "  WHERE o.endpoint = w.name),"
	         " coalesce(extract(epoch FROM now() - (SELECT queued_at"
	         "  FROM webhook_outbox o WHERE o.endpoint = w.name"
	         "  ORDER BY id LIMIT 1))::bigint, 0),"
	         " coalesce(extract(epoch FROM now() - w.failing_since)"
	         "  ::bigint, -1), w.last_error"
	         " FROM webhook_endpoints w ORDER BY w.name",
	         0, NULL, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res); i++) {
		st.name = PQgetvalue(res, i, 0);
		st.sent = (uint64_t)store_int(res, i, 1);
		st.failed = (uint64_t)store_int(res, i, 2);
		st.queued = (uint64_t)store_int(res, i, 3);
		st.oldest_age_s = store_int(res, i, 4);
		st.failing_for_s = store_int(res, i, 5);
		st.last_error = PQgetvalue(res, i, 6);
		if (cb(arg, &st) != 0)
			break;
	}
	PQclear(res);
	return STORE_OK;
}
