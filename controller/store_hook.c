/* store_hook.c - provider webhook events into the delivery record
 * (migration 014).  Each event is inserted
 * into provider_events unless its (provider, hook, event id) is there
 * already, joined to its message (sluice's queue id from the metadata
 * header, else the provider's message id a node recorded from the 250
 * reply, else the Message-ID and recipient), and copied into events as a
 * row of node 0 so trace and log show it.  One INSERT per request
 * (unnest of one array per column), like store_event.c.  Called by
 * hooks_http.c. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks_parse.h"

/* One statement for a request's events: one array per column, unnested
 * (like store_event.c).  $1 provider $2 hook, then per event: $3 event
 * id $4 kind $5 recipient $6 provider id $7 Message-ID $8 queue id (tag)
 * $9 type $10 diagnostic $11 at (ms).  An event id twice in one request
 * counts once (DISTINCT ON); one already stored stays as it is (ON
 * CONFLICT DO NOTHING).  Each event is joined to its message by the
 * first that finds it (docs/providers.md): sluice's queue id, the
 * provider id from the 250 reply, the Message-ID and recipient.  Returns
 * the event id and queue id ("" unknown) of each new row. */
static const char sh_insert[] =
    "WITH v AS (SELECT DISTINCT ON (event_id) * FROM unnest($3::text[],"
    "  $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],"
    "  $9::text[], $10::text[], $11::bigint[]) WITH ORDINALITY AS v"
    "  (event_id, kind, recipient, provider_id, message_id, tag, type,"
    "  diagnostic, at_ms, ord) ORDER BY event_id, ord),"
    " j AS (SELECT v.*, m.queue_id AS qid, m.message_id AS mid,"
    "  m.sender FROM v LEFT JOIN LATERAL ("
    "  SELECT queue_id, message_id, sender, 1 AS pref, at FROM events"
    "   WHERE v.tag <> '' AND queue_id = v.tag AND kind = 'received'"
    /* "<> ''" repeated on the column: the partial indexes match */
    "  UNION ALL SELECT queue_id, message_id, sender, 2, at FROM events"
    "   WHERE v.provider_id <> '' AND provider_id = v.provider_id"
    "    AND provider_id <> '' AND kind = 'delivered'"
    "  UNION ALL SELECT queue_id, message_id, sender, 3, at FROM events"
    "   WHERE v.message_id <> '' AND message_id = v.message_id"
    "    AND message_id <> '' AND kind = 'delivered'"
    "    AND lower(recipient) = v.recipient"
    "  ORDER BY pref, at DESC LIMIT 1) m ON true),"
    " ins AS (INSERT INTO provider_events (provider, hook, event_id,"
    "  kind, recipient, provider_id, message_id, queue_id, type,"
    "  diagnostic, at, tag)"
    " SELECT $1::text, $2::text, event_id, kind, recipient, provider_id,"
    "  coalesce(nullif(mid, ''), message_id), coalesce(qid, ''), type,"
    "  diagnostic, CASE WHEN at_ms > 0"
    "   THEN to_timestamp(at_ms / 1000.0) ELSE now() END, tag"
    " FROM j ORDER BY ord"
    " ON CONFLICT (provider, hook, event_id) DO NOTHING"
    " RETURNING id, event_id, queue_id, message_id, at),"
    " ev AS (INSERT INTO events (node_id, node_name, seq, at, kind,"
    "  queue_id, message_id, sender, recipient, hop, host, reply,"
    "  provider_id)"
    " SELECT 0, $1::text || '/' || $2::text, ins.id, ins.at, j.kind,"
    "  ins.queue_id, ins.message_id, coalesce(j.sender, ''), j.recipient,"
    "  $2::text, $1::text, btrim(j.type || ' ' || j.diagnostic),"
    "  j.provider_id"
    " FROM ins JOIN j USING (event_id)"
    " RETURNING 1)"
    " SELECT event_id, queue_id FROM ins";

#define SH_COLS 9

struct sh_new {
	const char *event_id;
	bool known;
	bool used;
};

static int
sh_new_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sh_new *)a)->event_id,
	    ((const struct sh_new *)b)->event_id);
}

int
store_hook_insert(struct store *s, const char *provider, const char *hook,
    struct hook_batch *b, struct store_hook_counts *c)
{
	const char *vals[2 + SH_COLS], **col = NULL;
	char *arr[SH_COLS] = {NULL}, (*at)[24] = NULL;
	struct sh_new *nw = NULL, key, *hit;
	PGresult *res = NULL;
	size_t i, k, nnew = 0;
	int rc = STORE_ERROR;

	memset(c, 0, sizeof(*c));
	if (b->n == 0)
		return STORE_OK;
	if ((col = calloc(b->n, sizeof(*col))) == NULL ||
	    (at = calloc(b->n, sizeof(*at))) == NULL)
		goto out;
	for (k = 0; k < SH_COLS; k++) {
		for (i = 0; i < b->n; i++) {
			const struct hook_event *e = &b->v[i];

			switch (k) {
			case 0:
				col[i] = e->event_id;
				break;
			case 1:
				col[i] = e->kind;
				break;
			case 2:
				col[i] = e->recipient;
				break;
			case 3:
				col[i] = e->provider_id;
				break;
			case 4:
				col[i] = e->message_id;
				break;
			case 5:
				col[i] = e->queue_id;
				break;
			case 6:
				col[i] = e->type;
				break;
			case 7:
				col[i] = e->diagnostic;
				break;
			default:
				snprintf(
				    at[i], sizeof(at[i]), "%" PRId64, e->at_ms);
				col[i] = at[i];
			}
		}
		if ((arr[k] = store_text_array(col, b->n)) == NULL)
			goto out;
	}
	vals[0] = provider;
	vals[1] = hook;
	for (k = 0; k < SH_COLS; k++)
		vals[2 + k] = arr[k];
	/* One statement: atomic on its own. */
	if ((res = store_exec(
	         s, sh_insert, 2 + SH_COLS, vals, NULL, NULL, &rc)) == NULL)
		goto out;
	nnew = (size_t)PQntuples(res);
	if (nnew > 0 && (nw = calloc(nnew, sizeof(*nw))) == NULL) {
		rc = STORE_ERROR;
		goto out;
	}
	for (i = 0; i < nnew; i++) {
		nw[i].event_id = PQgetvalue(res, (int)i, 0);
		nw[i].known = PQgetvalue(res, (int)i, 1)[0] != '\0';
	}
	if (nnew > 0)
		qsort(nw, nnew, sizeof(*nw), sh_new_cmp);
	/* New: the first of its event id in the request that was stored. */
	for (i = 0; i < b->n; i++) {
		struct hook_event *e = &b->v[i];

		key.event_id = e->event_id;
		hit = nnew > 0
		          ? bsearch(&key, nw, nnew, sizeof(*nw), sh_new_cmp)
		          : NULL;
		e->is_new = hit != NULL && !hit->used;
		e->is_known = e->is_new && hit->known;
		if (hit != NULL)
			hit->used = true;
		if (!e->is_new)
			c->duplicate++;
		else if (!e->is_known)
			c->unknown++;
		else
			c->stored++;
	}
	rc = STORE_OK;
out:
	if (res != NULL)
		PQclear(res);
	free(nw);
	for (k = 0; k < SH_COLS; k++)
		free(arr[k]);
	free(col);
	free(at);
	if (rc != STORE_OK)
		memset(c, 0, sizeof(*c));
	return rc;
}

/* The re-join pass: $1 max age (s), $2 batch.  The least recently
 * checked unknown events (FOR UPDATE SKIP LOCKED: two controllers take
 * different ones), joined as at ingest (the tag kept in provider_events
 * stands for the metadata); each is marked checked, those that found
 * their message get its queue id in provider_events and in their row of
 * events, so trace shows them.  Returns (checked, joined). */
static const char sh_rejoin[] =
    "WITH c AS (SELECT id FROM provider_events"
    "  WHERE queue_id = ''"
    "   AND received_at > now() - make_interval(secs => $1::bigint)"
    "  ORDER BY checked_at NULLS FIRST, id LIMIT $2::integer"
    "  FOR UPDATE SKIP LOCKED),"
    " u AS (SELECT p.id, m.queue_id AS qid, m.message_id AS mid, m.sender"
    "  FROM provider_events p JOIN c USING (id) LEFT JOIN LATERAL ("
    "  SELECT queue_id, message_id, sender, 1 AS pref, at FROM events"
    "   WHERE p.tag <> '' AND queue_id = p.tag AND kind = 'received'"
    "  UNION ALL SELECT queue_id, message_id, sender, 2, at FROM events"
    "   WHERE p.provider_id <> '' AND provider_id = p.provider_id"
    "    AND provider_id <> '' AND kind = 'delivered'"
    "  UNION ALL SELECT queue_id, message_id, sender, 3, at FROM events"
    "   WHERE p.message_id <> '' AND message_id = p.message_id"
    "    AND message_id <> '' AND kind = 'delivered'"
    "    AND lower(recipient) = p.recipient"
    "  ORDER BY pref, at DESC LIMIT 1) m ON true),"
    " up AS (UPDATE provider_events p SET checked_at = now(),"
    "  queue_id = coalesce(u.qid, ''),"
    "  message_id = CASE WHEN u.qid IS NULL THEN p.message_id"
    "   ELSE coalesce(nullif(u.mid, ''), p.message_id) END"
    "  FROM u WHERE p.id = u.id"
    "  RETURNING p.id, p.at, p.queue_id, p.message_id),"
    " ev AS (UPDATE events e SET queue_id = up.queue_id,"
    "  message_id = up.message_id, sender = coalesce(u.sender, '')"
    "  FROM up JOIN u USING (id)"
    "  WHERE up.queue_id <> '' AND e.node_id = 0 AND e.seq = up.id"
    "   AND e.at = up.at RETURNING 1)"
    " SELECT count(*), count(*) FILTER (WHERE queue_id <> '') FROM up";

int
store_hook_rejoin(struct store *s, int64_t max_age_s, int batch,
    uint64_t *checked, uint64_t *joined)
{
	char age[24], lim[24];
	const char *vals[2] = {age, lim};
	PGresult *res;
	int rc;

	*checked = *joined = 0;
	snprintf(age, sizeof(age), "%" PRId64, max_age_s);
	snprintf(lim, sizeof(lim), "%d", batch);
	if ((res = store_exec(s, sh_rejoin, 2, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	*checked = (uint64_t)store_int(res, 0, 0);
	*joined = (uint64_t)store_int(res, 0, 1);
	PQclear(res);
	return STORE_OK;
}

int
store_hook_token(struct store *s, const char *provider, const char *hook,
    const char *token, bool *is_new)
{
	const char *vals[3] = {provider, hook, token};
	PGresult *res;
	int rc;

	*is_new = false;
	if ((rc = store_run(s,
	         "DELETE FROM hook_tokens WHERE seen_at < now() - '1 day'::"
	         "interval",
	         0, NULL)) != STORE_OK)
		return rc;
	if ((res = store_exec(s,
	         "INSERT INTO hook_tokens (provider, hook, token)"
	         " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
	         3, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	*is_new = PQntuples(res) == 1;
	PQclear(res);
	return STORE_OK;
}

int
store_hook_unknown_count(struct store *s, uint64_t *n)
{
	PGresult *res;
	int rc;

	*n = 0;
	if ((res = store_exec(s,
	         "SELECT count(*) FROM provider_events WHERE queue_id = ''", 0,
	         NULL, NULL, NULL, &rc)) == NULL)
		return rc;
	*n = (uint64_t)store_int(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}
