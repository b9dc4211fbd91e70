/* store_event.c - the delivery record: batches of node events inserted
 * idempotently by (node_id, seq) (NOT EXISTS, and ON CONFLICT DO NOTHING on
 * UNIQUE (node_id, seq, at) - migration 003 partitions by day) in one
 * transaction, as multi-row INSERTs.  Called by api_node.c (ReportEvents). */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_COLS   18  /* per-row parameters after $1 $2 */
#define EV_CHUNK  500 /* rows per INSERT: stays far below 65535 */
#define EV_NUMLEN 24

/* A PostgreSQL text[] literal: {"a","b\"c"}.  malloc'd, NULL on ENOMEM. */
static char *
store_event_array(char *const *v, size_t n)
{
	size_t i, len = 3;
	const char *p;
	char *out, *o;

	for (i = 0; i < n; i++)
		len += 3 + 2 * strlen(v[i]);
	if ((out = malloc(len)) == NULL)
		return NULL;
	o = out;
	*o++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

static int
store_event_chunk(struct store *s, const char *idb, const char *node_name,
    Sluice__Event *const *ev, size_t n)
{
	size_t sqllen = 1024 + n * 400, i, k;
	const char **vals = NULL;
	char **arrays = NULL;
	char(*num)[EV_NUMLEN] = NULL;
	char *sql = NULL, *o;
	int rc = STORE_ERROR, p;

	vals = calloc(2 + n * EV_COLS, sizeof(*vals));
	arrays = calloc(n, sizeof(*arrays));
	num = calloc(n * 6, sizeof(*num));
	sql = malloc(sqllen);
	if (vals == NULL || arrays == NULL || num == NULL || sql == NULL)
		goto done;
	o = sql;
	/* (node, seq) identifies an event: the unique key of the partitioned
	 * table must hold `at` as well, so a row whose (node, seq) is stored
	 * already (at any time) is filtered out here, and ON CONFLICT covers
	 * two controllers storing the same replay at once. */
	o += sprintf(o, "INSERT INTO events (node_id, node_name, seq, at, kind,"
	                " queue_id, message_id, client, auth_user, sender,"
	                " recipients, recipient, size, hop, host, code,"
	                " enhanced, reply, duration_ms, tls)"
	                " SELECT * FROM (VALUES ");
	vals[0] = idb;
	vals[1] = node_name;
	p = 3;
	for (i = 0; i < n; i++) {
		const Sluice__Event *e = ev[i];
		const char **v = vals + 2 + i * EV_COLS;
		char(*nb)[EV_NUMLEN] = num + i * 6;

		if ((arrays[i] = store_event_array(
		         e->recipients, e->n_recipients)) == NULL)
			goto done;
		snprintf(nb[0], EV_NUMLEN, "%" PRIu64, e->seq);
		snprintf(nb[1], EV_NUMLEN, "%" PRId64, e->at_ms);
		snprintf(nb[2], EV_NUMLEN, "%" PRIu64, e->size);
		snprintf(nb[3], EV_NUMLEN, "%" PRIu32, e->code);
		snprintf(nb[4], EV_NUMLEN, "%" PRIu32, e->duration_ms);
		k = 0;
		v[k++] = nb[0];
		v[k++] = nb[1];
		v[k++] = e->kind;
		v[k++] = e->queue_id;
		v[k++] = e->message_id;
		v[k++] = e->client;
		v[k++] = e->auth_user;
		v[k++] = e->sender;
		v[k++] = arrays[i];
		v[k++] = e->recipient;
		v[k++] = nb[2];
		v[k++] = e->hop;
		v[k++] = e->host;
		v[k++] = nb[3];
		v[k++] = e->enhanced;
		v[k++] = e->reply;
		v[k++] = nb[4];
		v[k++] = e->tls ? "t" : "f";
		o += sprintf(o,
		    "%s($1::bigint,$2::text,$%d::bigint,"
		    "to_timestamp($%d::bigint/1000.0),$%d::text,$%d::text,"
		    "$%d::text,$%d::text,$%d::text,$%d::text,$%d::text[],"
		    "$%d::text,$%d::bigint,$%d::text,$%d::text,$%d::integer,"
		    "$%d::text,$%d::text,$%d::integer,$%d::boolean)",
		    i > 0 ? "," : "", p, p + 1, p + 2, p + 3, p + 4, p + 5,
		    p + 6, p + 7, p + 8, p + 9, p + 10, p + 11, p + 12, p + 13,
		    p + 14, p + 15, p + 16, p + 17);
		p += EV_COLS;
	}
	snprintf(o, sqllen - (size_t)(o - sql),
	    ") AS v (node_id, node_name, seq, at, kind, queue_id,"
	    " message_id, client, auth_user, sender, recipients, recipient,"
	    " size, hop, host, code, enhanced, reply, duration_ms, tls)"
	    " WHERE NOT EXISTS (SELECT 1 FROM events e"
	    "  WHERE e.node_id = v.node_id AND e.seq = v.seq)"
	    " ON CONFLICT (node_id, seq, at) DO NOTHING");
	rc = store_run(s, sql, (int)(2 + n * EV_COLS), vals);
done:
	if (arrays != NULL)
		for (i = 0; i < n; i++)
			free(arrays[i]);
	free(arrays);
	free(vals);
	free(num);
	free(sql);
	return rc;
}

int
store_event_insert(struct store *s, uint64_t node_id, const char *node_name,
    Sluice__Event *const *events, size_t n)
{
	char idb[24];
	size_t i, k;
	int rc;

	if (n == 0)
		return STORE_OK;
	snprintf(idb, sizeof(idb), "%" PRIu64, node_id);
	if ((rc = store_begin(s)) != STORE_OK)
		return rc;
	for (i = 0; i < n; i += k) {
		k = n - i > EV_CHUNK ? EV_CHUNK : n - i;
		if ((rc = store_event_chunk(
		         s, idb, node_name, events + i, k)) != STORE_OK) {
			store_rollback(s);
			return rc;
		}
	}
	if ((rc = store_commit(s)) != STORE_OK)
		store_rollback(s);
	return rc;
}

/* The columns every event query selects, in store_event_rows() order. */
#define EV_SELECT                                                              \
	"SELECT node_name, seq, (extract(epoch FROM at) * 1000)::bigint,"      \
	" kind, queue_id, message_id, client, auth_user, sender,"              \
	" array_to_string(recipients, E'\\n'), recipient, size, hop, host,"    \
	" code, enhanced, reply, duration_ms, tls, at, id"

static int
store_event_rows(PGresult *res, store_event_cb cb, void *arg)
{
	Sluice__Event e;
	char *rcpts, *p, **rv;
	size_t n;
	int i, stop;

	for (i = 0; i < PQntuples(res); i++) {
		sluice__event__init(&e);
		e.seq = (uint64_t)store_int(res, i, 1);
		e.at_ms = store_int(res, i, 2);
		e.kind = PQgetvalue(res, i, 3);
		e.queue_id = PQgetvalue(res, i, 4);
		e.message_id = PQgetvalue(res, i, 5);
		e.client = PQgetvalue(res, i, 6);
		e.auth_user = PQgetvalue(res, i, 7);
		e.sender = PQgetvalue(res, i, 8);
		e.recipient = PQgetvalue(res, i, 10);
		e.size = (uint64_t)store_int(res, i, 11);
		e.hop = PQgetvalue(res, i, 12);
		e.host = PQgetvalue(res, i, 13);
		e.code = (uint32_t)store_int(res, i, 14);
		e.enhanced = PQgetvalue(res, i, 15);
		e.reply = PQgetvalue(res, i, 16);
		e.duration_ms = (uint32_t)store_int(res, i, 17);
		e.tls = store_bool(res, i, 18);
		/* Addresses cannot hold a newline (RFC 5321): a safe join. */
		rcpts = PQgetvalue(res, i, 9);
		n = rcpts[0] != '\0' ? 1 : 0;
		for (p = rcpts; *p != '\0'; p++)
			n += *p == '\n';
		if ((rv = calloc(n + 1, sizeof(*rv))) == NULL)
			return STORE_ERROR;
		for (n = 0, p = rcpts; *rcpts != '\0' && p != NULL; n++) {
			rv[n] = p;
			if ((p = strchr(p, '\n')) != NULL)
				*p++ = '\0';
		}
		e.recipients = rv;
		e.n_recipients = n;
		stop = cb(arg, PQgetvalue(res, i, 0), &e);
		free(rv);
		if (stop < 0)
			return STORE_ERROR;
		if (stop > 0)
			break;
	}
	return STORE_OK;
}

int
store_event_trace(struct store *s, const char *id, uint32_t limit,
    store_event_cb cb, void *arg)
{
	char lb[16];
	const char *vals[2] = {id, lb};
	PGresult *res;
	int rc;

	snprintf(lb, sizeof(lb), "%" PRIu32, limit);
	/* A UNION, not an OR: each half uses its own index. */
	if ((res = store_exec(s,
	         EV_SELECT " FROM events WHERE queue_id IN ("
	                   " SELECT queue_id FROM events WHERE queue_id = $1"
	                   " UNION SELECT queue_id FROM events"
	                   "  WHERE message_id <> '' AND message_id IN"
	                   "  ($1, btrim($1, '<>'), '<' || btrim($1, '<>') || "
	                   "'>'))"
	                   " ORDER BY at, id LIMIT $2::bigint",
	         2, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	rc = store_event_rows(res, cb, arg);
	PQclear(res);
	return rc;
}

int
store_event_log(struct store *s, const struct store_event_query *q,
    store_event_cb cb, void *arg)
{
	char sb[24], lb[16];
	const char *vals[6] = {
	    q->sender, q->recipient, q->kind, q->node, sb, lb};
	PGresult *res;
	int rc;

	snprintf(sb, sizeof(sb), "%" PRId64, q->since_s);
	snprintf(lb, sizeof(lb), "%" PRIu32, q->limit);
	if ((res = store_exec(s,
	         "SELECT * FROM (" EV_SELECT " FROM events"
	         " WHERE ($1 = '' OR strpos(lower(sender), lower($1)) > 0)"
	         " AND ($2 = '' OR strpos(lower(recipient), lower($2)) > 0"
	         "  OR strpos(lower(array_to_string(recipients, ' ')),"
	         "   lower($2)) > 0)"
	         " AND ($3 = '' OR kind = $3)"
	         " AND ($4 = '' OR node_name = $4)"
	         " AND ($5::bigint = 0 OR"
	         "  at > now() - make_interval(secs => $5::double precision))"
	         " ORDER BY at DESC, id DESC LIMIT $6::bigint) e"
	         " ORDER BY at, id",
	         6, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	rc = store_event_rows(res, cb, arg);
	PQclear(res);
	return rc;
}

/* Partitions by day (migration 003): today and the next two days exist
 * before their first event; with days > 0, older days are dropped.  Runs
 * under the health lock; each statement stands alone so a failure (e.g.
 * a partition whose day already has rows in the default partition) is
 * logged and retried next tick without undoing anything else. */
int
store_event_partitions(struct store *s, int64_t retention_days, int *dropped)
{
	char b[24];
	const char *vals[1] = {b};
	PGresult *res;
	int rc;

	*dropped = 0;
	if ((rc = store_run(s,
	         "SELECT sluice_events_partition("
	         "(now() AT TIME ZONE 'UTC')::date + d)"
	         " FROM generate_series(0, 2) d",
	         0, NULL)) != STORE_OK)
		return rc;
	if (retention_days <= 0)
		return STORE_OK;
	snprintf(b, sizeof(b), "%" PRId64, retention_days);
	if ((res = store_exec(s, "SELECT sluice_events_expire($1::int)", 1,
	         vals, NULL, NULL, &rc)) == NULL)
		return rc;
	*dropped = (int)store_int(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}
