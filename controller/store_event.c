/* store_event.c - the delivery record: batches of node events inserted
 * idempotently by (node_id, seq) (NOT EXISTS, and ON CONFLICT DO NOTHING on
 * UNIQUE (node_id, seq, at) - migration 003 partitions by day), each chunk
 * as one INSERT ... SELECT FROM unnest() of one array per column in its
 * own implicit transaction.  Called by api_node.c (ReportEvents).
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

#define EV_CHUNK  1000 /* rows per INSERT (a node's batch) */
#define EV_NUMLEN 24

/* Whether every text field of e is UTF-8: else the row keeps the raw
 * event beside its escaped text. */
static bool
store_event_is_utf8(const Sluice__Event *e)
{
	const char *const f[] = {e->kind, e->queue_id, e->message_id, e->client,
	    e->auth_user, e->sender, e->recipient, e->hop, e->host, e->enhanced,
	    e->reply, e->dkim, e->provider_id};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(*f); i++)
		if (!text_is_utf8(f[i]))
			return false;
	for (i = 0; i < e->n_recipients; i++)
		if (!text_is_utf8(e->recipients[i]))
			return false;
	return true;
}

/* One PostgreSQL array literal per column, grown as rows are added. */
struct ev_col {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void
ev_col_put(struct ev_col *c, const char *p, size_t n)
{
	char *nb;
	size_t nc;

	if (c->failed)
		return;
	if (c->len + n + 2 > c->cap) {
		for (nc = c->cap ? c->cap : 256; nc < c->len + n + 2; nc *= 2)
			;
		if ((nb = realloc(c->buf, nc)) == NULL) {
			c->failed = true;
			return;
		}
		c->buf = nb;
		c->cap = nc;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	c->buf[c->len] = '\0';
}

/* The next element: "," between elements (the "{" is added first). */
static void
ev_col_sep(struct ev_col *c)
{
	ev_col_put(c, c->len == 0 ? "{" : ",", 1);
}

static void
ev_col_num(struct ev_col *c, const char *num)
{
	ev_col_sep(c);
	ev_col_put(c, num, strlen(num));
}

/* A quoted element; text that is not UTF-8 goes in escaped (as
 * store_exec would: text_escape.h), NULL stays NULL. */
static void
ev_col_text(struct ev_col *c, const char *v)
{
	const char *p, *run;
	char *esc = NULL;

	ev_col_sep(c);
	if (v == NULL) {
		ev_col_put(c, "NULL", 4);
		return;
	}
	if (!text_is_utf8(v) && (v = esc = text_escape(v)) == NULL) {
		c->failed = true;
		return;
	}
	ev_col_put(c, "\"", 1);
	for (run = p = v; *p != '\0'; p++)
		if (*p == '"' || *p == '\\') {
			ev_col_put(c, run, (size_t)(p - run));
			ev_col_put(c, "\\", 1);
			run = p;
		}
	ev_col_put(c, run, (size_t)(p - run));
	ev_col_put(c, "\"", 1);
	free(esc);
}

/* bytea as a hex element: "\\x0a1b..." */
static void
ev_col_bytes(struct ev_col *c, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char b[2];
	size_t i;

	ev_col_sep(c);
	ev_col_put(c, "\"\\\\x", 4);
	for (i = 0; i < n; i++) {
		b[0] = hex[p[i] >> 4];
		b[1] = hex[p[i] & 15];
		ev_col_put(c, b, 2);
	}
	ev_col_put(c, "\"", 1);
}

/* The columns after node_id and node_name, in the order of the SQL below,
 * each sent as one array parameter: the statement stays the same size
 * whatever the batch, so PostgreSQL parses and plans a few hundred octets
 * instead of a VALUES list of n * 20 parameters (which cost it more than
 * the inserts themselves: docs/capacity.md). */
enum {
	EC_SEQ,
	EC_AT,
	EC_KIND,
	EC_QUEUE_ID,
	EC_MESSAGE_ID,
	EC_CLIENT,
	EC_AUTH_USER,
	EC_SENDER,
	EC_RECIPIENTS,
	EC_RECIPIENT,
	EC_SIZE,
	EC_HOP,
	EC_HOST,
	EC_CODE,
	EC_ENHANCED,
	EC_REPLY,
	EC_DURATION,
	EC_TLS,
	EC_RAW,
	EC_DKIM,
	EC_PROVIDER_ID,
	EC_N
};

static int
store_event_chunk(struct store *s, const char *idb, const char *node_name,
    Sluice__Event *const *ev, size_t n)
{
	struct ev_col col[EC_N];
	const char *vals[4 + EC_N];
	char nb[EV_NUMLEN], lo[EV_NUMLEN], hi[EV_NUMLEN], *arr;
	uint64_t min_seq = UINT64_MAX, max_seq = 0;
	uint8_t *raw;
	size_t i, k, len;
	int rc = STORE_ERROR;
	PGresult *res;

	memset(col, 0, sizeof(col));
	for (i = 0; i < n; i++) {
		const Sluice__Event *e = ev[i];

		snprintf(nb, sizeof(nb), "%" PRIu64, e->seq);
		ev_col_num(&col[EC_SEQ], nb);
		if (e->seq < min_seq)
			min_seq = e->seq;
		if (e->seq > max_seq)
			max_seq = e->seq;
		snprintf(nb, sizeof(nb), "%" PRId64, e->at_ms);
		ev_col_num(&col[EC_AT], nb);
		ev_col_text(&col[EC_KIND], e->kind);
		ev_col_text(&col[EC_QUEUE_ID], e->queue_id);
		ev_col_text(&col[EC_MESSAGE_ID], e->message_id);
		ev_col_text(&col[EC_CLIENT], e->client);
		ev_col_text(&col[EC_AUTH_USER], e->auth_user);
		ev_col_text(&col[EC_SENDER], e->sender);
		if ((arr = store_text_array((const char *const *)e->recipients,
		         e->n_recipients)) == NULL)
			goto done;
		ev_col_text(&col[EC_RECIPIENTS], arr);
		free(arr);
		ev_col_text(&col[EC_RECIPIENT], e->recipient);
		snprintf(nb, sizeof(nb), "%" PRIu64, e->size);
		ev_col_num(&col[EC_SIZE], nb);
		ev_col_text(&col[EC_HOP], e->hop);
		ev_col_text(&col[EC_HOST], e->host);
		snprintf(nb, sizeof(nb), "%" PRIu32, e->code);
		ev_col_num(&col[EC_CODE], nb);
		ev_col_text(&col[EC_ENHANCED], e->enhanced);
		ev_col_text(&col[EC_REPLY], e->reply);
		snprintf(nb, sizeof(nb), "%" PRIu32, e->duration_ms);
		ev_col_num(&col[EC_DURATION], nb);
		ev_col_num(&col[EC_TLS], e->tls ? "t" : "f");
		if (!store_event_is_utf8(e)) {
			len = sluice__event__get_packed_size(e);
			if ((raw = malloc(len + 1)) == NULL)
				goto done;
			sluice__event__pack(e, raw);
			ev_col_bytes(&col[EC_RAW], raw, len);
			free(raw);
		} else
			ev_col_text(&col[EC_RAW], NULL);
		ev_col_text(&col[EC_DKIM], e->dkim);
		ev_col_text(&col[EC_PROVIDER_ID], e->provider_id);
	}
	vals[0] = idb;
	vals[1] = node_name;
	for (k = 0; k < EC_N; k++) {
		ev_col_put(&col[k], "}", 1);
		if (col[k].failed)
			goto done;
		vals[2 + k] = col[k].buf;
	}
	snprintf(lo, sizeof(lo), "%" PRIu64, min_seq);
	snprintf(hi, sizeof(hi), "%" PRIu64, max_seq);
	vals[2 + EC_N] = lo;
	vals[3 + EC_N] = hi;
	/* (node, seq) identifies an event: the unique key of the partitioned
	 * table must hold `at` as well, so a row whose (node, seq) is stored
	 * already (at any time) is filtered out here, and ON CONFLICT covers
	 * two controllers storing the same replay at once.  The probe is
	 * bounded by the batch's own sequence range: without it PostgreSQL
	 * planned a hash anti join over every stored event of the node (a
	 * batch read all of the node's rows, more with every batch). */
	if ((res = store_exec(s,
	         "INSERT INTO events (node_id, node_name, seq, at, kind,"
	         " queue_id, message_id, client, auth_user, sender,"
	         " recipients, recipient, size, hop, host, code, enhanced,"
	         " reply, duration_ms, tls, raw, dkim, provider_id)"
	         " SELECT $1::bigint, $2::text, v.seq,"
	         " to_timestamp(v.at_ms / 1000.0), v.kind, v.queue_id,"
	         " v.message_id, v.client, v.auth_user, v.sender,"
	         " v.recipients::text[], v.recipient, v.size, v.hop, v.host,"
	         " v.code, v.enhanced, v.reply, v.duration_ms, v.tls, v.raw,"
	         " v.dkim, v.provider_id"
	         " FROM unnest($3::bigint[], $4::bigint[], $5::text[],"
	         " $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
	         " $11::text[], $12::text[], $13::bigint[], $14::text[],"
	         " $15::text[], $16::integer[], $17::text[], $18::text[],"
	         " $19::integer[], $20::boolean[], $21::bytea[], $22::text[],"
	         " $23::text[])"
	         " AS v (seq, at_ms, kind, queue_id, message_id, client,"
	         " auth_user, sender, recipients, recipient, size, hop, host,"
	         " code, enhanced, reply, duration_ms, tls, raw, dkim,"
	         " provider_id) WHERE NOT EXISTS (SELECT 1 FROM events e"
	         "  WHERE e.node_id = $1::bigint AND e.seq = v.seq"
	         "  AND e.seq BETWEEN $24::bigint AND $25::bigint)"
	         " ON CONFLICT (node_id, seq, at) DO NOTHING",
	         4 + EC_N, vals, NULL, NULL, &rc)) != NULL)
		PQclear(res);
done:
	for (k = 0; k < EC_N; k++)
		free(col[k].buf);
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

/* A chunk failed as a whole: each event on its own, and the ones
 * PostgreSQL refuses go to quarantine.  Only a lost connection (or a
 * quarantine that fails too) fails the chunk. */
static int
store_event_each(struct store *s, const char *idb, const char *node_name,
    Sluice__Event *const *events, size_t n, size_t *quarantined)
{
	char reason[sizeof(s->last_error)];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if ((rc = store_event_chunk(
		         s, idb, node_name, events + i, 1)) == STORE_OK)
			continue;
		if (rc == STORE_UNAVAILABLE)
			return rc;
		snprintf(reason, sizeof(reason), "%s", s->last_error);
		if ((rc = store_event_quarantine(
		         s, idb, node_name, events[i], reason)) != STORE_OK)
			return rc;
		(*quarantined)++;
	}
	return STORE_OK;
}

int
store_event_insert(struct store *s, uint64_t node_id, const char *node_name,
    Sluice__Event *const *events, size_t n, size_t *quarantined)
{
	char idb[24];
	size_t i, k;
	int rc;

	*quarantined = 0;
	snprintf(idb, sizeof(idb), "%" PRIu64, node_id);
	/* Each chunk is one statement in its own implicit transaction, never
	 * BEGIN ... COMMIT across round trips: a controller stopped between
	 * two of its statements (SIGSTOP, a hung host) would hold the new
	 * rows' index entries uncommitted, and the controller the node races
	 * the same batch to would wait on them - its whole node endpoint
	 * stuck for as long as this one hangs.  Idempotency by (node_id, seq)
	 * makes a partly stored batch safe: the node sends it again. */
	for (i = 0; i < n; i += k) {
		k = n - i > EV_CHUNK ? EV_CHUNK : n - i;
		rc = store_event_chunk(s, idb, node_name, events + i, k);
		if (rc == STORE_UNAVAILABLE)
			return rc;
		/* Something in the chunk is refused: find it, keep the
		 * rest. */
		if (rc != STORE_OK &&
		    (rc = store_event_each(s, idb, node_name, events + i, k,
		         quarantined)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
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
	" code, enhanced, reply, duration_ms, tls, at, id, dkim, provider_id"

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
		e.provider_id = PQgetvalue(res, i, 22);
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
	/* A UNION, not an OR: each half uses its own index.  A message
	 * handed off by drain --handoff goes on under the peer's queue id,
	 * the provider_id of its handed_off events: followed, a few hops
	 * deep (docs/operations.md). */
	if ((res = store_exec(s,
	         "WITH RECURSIVE ids(q, depth) AS ("
	         " SELECT queue_id, 0 FROM events WHERE queue_id = $1"
	         " UNION SELECT queue_id, 0 FROM events"
	         "  WHERE message_id <> '' AND message_id IN"
	         "  ($1, btrim($1, '<>'), '<' || btrim($1, '<>') || '>')"
	         " UNION SELECT e.provider_id, ids.depth + 1"
	         "  FROM events e JOIN ids ON e.queue_id = ids.q"
	         "  WHERE e.kind = 'handed_off' AND e.provider_id <> ''"
	         "  AND ids.depth < 8) " EV_SELECT
	         " FROM events WHERE queue_id IN (SELECT q FROM ids)"
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
	         /* the expression of events_rcpt_trgm (migration 015);
	          * the address's LIKE characters taken literally */
	         " AND ($2 = '' OR sluice_event_rcpts(recipient, recipients)"
	         "  LIKE '%' || replace(replace(replace(lower($2), '\\',"
	         "   '\\\\'), '%', '\\%'), '_', '\\_') || '%')"
	         /* events_kind_at */
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
