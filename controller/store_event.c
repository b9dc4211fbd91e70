/* store_event.c - the delivery record: batches of node events inserted
 * idempotently by (node_id, seq) (NOT EXISTS, and ON CONFLICT DO NOTHING on
 * UNIQUE (node_id, seq, at) - migration 003 partitions by day) in one
 * transaction, as multi-row INSERTs.  Called by api_node.c (ReportEvents).
 *
 * Nothing a node sends can stop its record: text that is not UTF-8 is
 * stored escaped (store.c) with the raw event beside it (column raw), and
 * an event PostgreSQL still refuses (a value out of range, ...) is moved
 * to events_quarantine with the reason, so the batch - and the node's
 * journal - moves on (migration 005). */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "text_escape.h"

#define EV_COLS   20  /* per-row parameters after $1 $2 */
#define EV_CHUNK  500 /* rows per INSERT: stays far below 65535 */
#define EV_NUMLEN 24

/* A PostgreSQL text[] literal: {"a","b\"c"}.  malloc'd, NULL on ENOMEM. */
static char *
store_event_array(char *const *v, size_t n)
{
	size_t i, len = 3;
	const char *p;
	char *out, *o;

	/* An element that is not UTF-8 is escaped first (text_escape.h):
	 * at most 4 octets per octet, then 2 for the quoting. */
	for (i = 0; i < n; i++)
		len += 3 + 8 * strlen(v[i]);
	if ((out = malloc(len)) == NULL)
		return NULL;
	o = out;
	*o++ = '{';
	for (i = 0; i < n; i++) {
		char *esc = NULL;

		if (!text_is_utf8(v[i]) && (esc = text_escape(v[i])) == NULL) {
			free(out);
			return NULL;
		}
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (p = esc != NULL ? esc : v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
		free(esc);
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* Whether every text field of e is UTF-8: else the row keeps the raw
 * event beside its escaped text. */
static bool
store_event_is_utf8(const Sluice__Event *e)
{
	const char *const f[] = {e->kind, e->queue_id, e->message_id, e->client,
	    e->auth_user, e->sender, e->recipient, e->hop, e->host, e->enhanced,
	    e->reply, e->dkim};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(*f); i++)
		if (!text_is_utf8(f[i]))
			return false;
	for (i = 0; i < e->n_recipients; i++)
		if (!text_is_utf8(e->recipients[i]))
			return false;
	return true;
}

static int
store_event_chunk(struct store *s, const char *idb, const char *node_name,
    Sluice__Event *const *ev, size_t n)
{
	size_t sqllen = 1024 + n * 440, i, k, np = 2 + n * EV_COLS;
	const char **vals = NULL;
	int *lens = NULL, *fmts = NULL;
	char **arrays = NULL;
	uint8_t **raws = NULL;
	char(*num)[EV_NUMLEN] = NULL;
	char *sql = NULL, *o;
	int rc = STORE_ERROR, p;
	PGresult *res;

	vals = calloc(np, sizeof(*vals));
	lens = calloc(np, sizeof(*lens));
	fmts = calloc(np, sizeof(*fmts));
	arrays = calloc(n, sizeof(*arrays));
	raws = calloc(n, sizeof(*raws));
	num = calloc(n * 6, sizeof(*num));
	sql = malloc(sqllen);
	if (vals == NULL || lens == NULL || fmts == NULL || arrays == NULL ||
	    raws == NULL || num == NULL || sql == NULL)
		goto done;
	o = sql;
	/* (node, seq) identifies an event: the unique key of the partitioned
	 * table must hold `at` as well, so a row whose (node, seq) is stored
	 * already (at any time) is filtered out here, and ON CONFLICT covers
	 * two controllers storing the same replay at once. */
	o += sprintf(o, "INSERT INTO events (node_id, node_name, seq, at, kind,"
	                " queue_id, message_id, client, auth_user, sender,"
	                " recipients, recipient, size, hop, host, code,"
	                " enhanced, reply, duration_ms, tls, raw, dkim)"
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
		if (!store_event_is_utf8(e)) {
			size_t len = sluice__event__get_packed_size(e);

			if ((raws[i] = malloc(len + 1)) == NULL)
				goto done;
			sluice__event__pack(e, raws[i]);
			v[k] = (const char *)raws[i];
			lens[2 + i * EV_COLS + k] = (int)len;
			fmts[2 + i * EV_COLS + k] = 1; /* binary bytea */
		}
		k++; /* raw: NULL unless set just above */
		v[k++] = e->dkim;
		o += sprintf(o,
		    "%s($1::bigint,$2::text,$%d::bigint,"
		    "to_timestamp($%d::bigint/1000.0),$%d::text,$%d::text,"
		    "$%d::text,$%d::text,$%d::text,$%d::text,$%d::text[],"
		    "$%d::text,$%d::bigint,$%d::text,$%d::text,$%d::integer,"
		    "$%d::text,$%d::text,$%d::integer,$%d::boolean,"
		    "$%d::bytea,$%d::text)",
		    i > 0 ? "," : "", p, p + 1, p + 2, p + 3, p + 4, p + 5,
		    p + 6, p + 7, p + 8, p + 9, p + 10, p + 11, p + 12, p + 13,
		    p + 14, p + 15, p + 16, p + 17, p + 18, p + 19);
		p += EV_COLS;
	}
	snprintf(o, sqllen - (size_t)(o - sql),
	    ") AS v (node_id, node_name, seq, at, kind, queue_id,"
	    " message_id, client, auth_user, sender, recipients, recipient,"
	    " size, hop, host, code, enhanced, reply, duration_ms, tls, raw,"
	    " dkim)"
	    " WHERE NOT EXISTS (SELECT 1 FROM events e"
	    "  WHERE e.node_id = v.node_id AND e.seq = v.seq)"
	    " ON CONFLICT (node_id, seq, at) DO NOTHING");
	if ((res = store_exec(s, sql, (int)np, vals, lens, fmts, &rc)) != NULL)
		PQclear(res);
done:
	if (arrays != NULL)
		for (i = 0; i < n; i++)
			free(arrays[i]);
	if (raws != NULL)
		for (i = 0; i < n; i++)
			free(raws[i]);
	free(arrays);
	free(raws);
	free(vals);
	free(lens);
	free(fmts);
	free(num);
	free(sql);
	return rc;
}

/* One event into events_quarantine, whole, with PostgreSQL's reason. */
static int
store_event_quarantine(struct store *s, const char *idb, const char *node_name,
    const Sluice__Event *e, const char *reason)
{
	const char *vals[5];
	int lens[5] = {0}, fmts[5] = {0, 0, 0, 1, 0};
	char seq[EV_NUMLEN];
	uint8_t *raw;
	size_t len = sluice__event__get_packed_size(e);
	PGresult *res;
	int rc;

	if ((raw = malloc(len + 1)) == NULL)
		return STORE_ERROR;
	sluice__event__pack(e, raw);
	snprintf(seq, sizeof(seq), "%" PRIu64, e->seq);
	vals[0] = idb;
	vals[1] = node_name;
	vals[2] = seq;
	vals[3] = (const char *)raw;
	lens[3] = (int)len;
	vals[4] = reason;
	res = store_exec(s,
	    "INSERT INTO events_quarantine (node_id, node_name, seq, raw,"
	    " reason) VALUES ($1::bigint, $2, $3::bigint, $4, $5)"
	    " ON CONFLICT (node_id, seq) DO NOTHING",
	    5, vals, lens, fmts, &rc);
	free(raw);
	if (res == NULL)
		return rc;
	PQclear(res);
	log_warnx("events: quarantined node=%s seq=%" PRIu64 " kind=%s "
	          "queue_id=%s reason=\"%s\"",
	    node_name, e->seq, e->kind, e->queue_id, reason);
	return STORE_OK;
}

/* The batch failed as a whole: each event on its own, under a savepoint,
 * and the ones PostgreSQL refuses go to quarantine.  Only a lost
 * connection (or a quarantine that fails too) fails the batch. */
static int
store_event_each(struct store *s, const char *idb, const char *node_name,
    Sluice__Event *const *events, size_t n, size_t *quarantined)
{
	char reason[sizeof(s->last_error)];
	size_t i;
	int rc;

	if ((rc = store_begin(s)) != STORE_OK)
		return rc;
	for (i = 0; i < n; i++) {
		if ((rc = store_run(s, "SAVEPOINT ev", 0, NULL)) != STORE_OK)
			goto fail;
		rc = store_event_chunk(s, idb, node_name, events + i, 1);
		if (rc == STORE_OK) {
			if ((rc = store_run(s, "RELEASE SAVEPOINT ev", 0,
			         NULL)) != STORE_OK)
				goto fail;
			continue;
		}
		if (rc == STORE_UNAVAILABLE)
			goto fail;
		snprintf(reason, sizeof(reason), "%s", s->last_error);
		if ((rc = store_run(s, "ROLLBACK TO SAVEPOINT ev", 0, NULL)) !=
		        STORE_OK ||
		    (rc = store_event_quarantine(
		         s, idb, node_name, events[i], reason)) != STORE_OK)
			goto fail;
		(*quarantined)++;
	}
	if ((rc = store_commit(s)) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	store_rollback(s);
	*quarantined = 0;
	return rc;
}

int
store_event_insert(struct store *s, uint64_t node_id, const char *node_name,
    Sluice__Event *const *events, size_t n, size_t *quarantined)
{
	char idb[24];
	size_t i, k;
	int rc;

	*quarantined = 0;
	if (n == 0)
		return STORE_OK;
	snprintf(idb, sizeof(idb), "%" PRIu64, node_id);
	if ((rc = store_begin(s)) != STORE_OK)
		return rc;
	for (i = 0; i < n; i += k) {
		k = n - i > EV_CHUNK ? EV_CHUNK : n - i;
		if ((rc = store_event_chunk(
		         s, idb, node_name, events + i, k)) != STORE_OK)
			break;
	}
	if (rc == STORE_OK && (rc = store_commit(s)) == STORE_OK)
		return STORE_OK;
	store_rollback(s);
	if (rc == STORE_UNAVAILABLE)
		return rc;
	/* Something in the batch is refused: find it, keep the rest. */
	return store_event_each(s, idb, node_name, events, n, quarantined);
}

/* Nodes with quarantined events newer than seconds, and how many. */
int
store_event_quarantined(
    struct store *s, int64_t seconds, store_quarantine_cb cb, void *arg)
{
	char b[24];
	const char *vals[1] = {b};
	PGresult *res;
	int rc, i;

	snprintf(b, sizeof(b), "%" PRId64, seconds);
	if ((res = store_exec(s,
	         "SELECT node_name, count(*) FROM events_quarantine"
	         " WHERE quarantined_at > now() - make_interval(secs =>"
	         " $1::double precision) GROUP BY node_name",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res); i++)
		if (cb(arg, PQgetvalue(res, i, 0),
		        (uint64_t)store_int(res, i, 1)) != 0)
			break;
	PQclear(res);
	return STORE_OK;
}

/* The columns every event query selects, in store_event_rows() order. */
#define EV_SELECT                                                              \
	"SELECT node_name, seq, (extract(epoch FROM at) * 1000)::bigint,"      \
	" kind, queue_id, message_id, client, auth_user, sender,"              \
	" array_to_string(recipients, E'\\n'), recipient, size, hop, host,"    \
	" code, enhanced, reply, duration_ms, tls, at, id, dkim"

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
		e.dkim = PQgetvalue(res, i, 21);
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

int
store_event_max_seq(struct store *s, uint64_t node_id, uint64_t *seq)
{
	char idb[24];
	const char *vals[1] = {idb};
	PGresult *res;
	int rc;

	snprintf(idb, sizeof(idb), "%" PRIu64, node_id);
	*seq = 0;
	/* one index probe per day partition (events_node_id_seq_key) */
	if ((res = store_exec(s,
	         "SELECT greatest((SELECT max(seq) FROM events"
	         "  WHERE node_id = $1),"
	         " (SELECT max(seq) FROM events_quarantine"
	         "  WHERE node_id = $1), 0)",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) == 1)
		*seq = (uint64_t)store_int(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}
