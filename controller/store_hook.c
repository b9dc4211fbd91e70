/* store_hook.c - provider webhook events into the delivery record
 * (migration 014).  One transaction per request: each event is inserted
 * into provider_events unless its (provider, hook, event id) is there
 * already, joined to its message (sluice's queue id from the metadata
 * header, else the provider's message id a node recorded from the 250
 * reply, else the Message-ID and recipient), and copied into events as a
 * row of node 0 so trace and log show it.  Called by hooks_http.c. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks_parse.h"

/* $1 provider $2 hook $3 event id $4 kind $5 recipient $6 provider id
 * $7 Message-ID $8 queue id (tag) $9 type $10 diagnostic $11 at (ms) */
static const char sh_insert[] =
    "WITH j AS ("
    " SELECT queue_id, message_id, sender, 1 AS pref, at FROM events"
    "  WHERE $8::text <> '' AND queue_id = $8::text"
    "   AND kind = 'received'"
    /* "<> ''" repeated on the column: the partial indexes match */
    " UNION ALL SELECT queue_id, message_id, sender, 2, at FROM events"
    "  WHERE $6::text <> '' AND provider_id = $6::text"
    "   AND provider_id <> '' AND kind = 'delivered'"
    " UNION ALL SELECT queue_id, message_id, sender, 3, at FROM events"
    "  WHERE $7::text <> '' AND message_id = $7::text"
    "   AND message_id <> '' AND kind = 'delivered'"
    "   AND lower(recipient) = $5::text"
    " ORDER BY pref, at DESC LIMIT 1),"
    " ins AS (INSERT INTO provider_events (provider, hook, event_id,"
    "  kind, recipient, provider_id, message_id, queue_id, type,"
    "  diagnostic, at)"
    " SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text,"
    "  coalesce(nullif(j.message_id, ''), $7::text),"
    "  coalesce(j.queue_id, ''), $9::text, $10::text,"
    "  CASE WHEN $11::bigint > 0"
    "   THEN to_timestamp($11::bigint / 1000.0) ELSE now() END"
    " FROM (SELECT 1) one LEFT JOIN j ON true"
    " ON CONFLICT (provider, hook, event_id) DO NOTHING"
    " RETURNING id, queue_id, message_id, at),"
    " ev AS (INSERT INTO events (node_id, node_name, seq, at, kind,"
    "  queue_id, message_id, sender, recipient, hop, host, reply,"
    "  provider_id)"
    " SELECT 0, $1::text || '/' || $2::text, ins.id, ins.at, $4::text,"
    "  ins.queue_id, ins.message_id,"
    "  coalesce((SELECT sender FROM j), ''), $5::text, $2::text,"
    "  $1::text, btrim($9::text || ' ' || $10::text), $6::text"
    " FROM ins RETURNING 1)"
    " SELECT ins.queue_id FROM ins";

int
store_hook_insert(struct store *s, const char *provider, const char *hook,
    struct hook_batch *b, struct store_hook_counts *c)
{
	const char *vals[11];
	char at[24];
	PGresult *res;
	size_t i;
	int rc;

	memset(c, 0, sizeof(*c));
	if (b->n == 0)
		return STORE_OK;
	if ((rc = store_begin(s)) != STORE_OK)
		return rc;
	for (i = 0; i < b->n; i++) {
		struct hook_event *e = &b->v[i];

		snprintf(at, sizeof(at), "%" PRId64, e->at_ms);
		vals[0] = provider;
		vals[1] = hook;
		vals[2] = e->event_id;
		vals[3] = e->kind;
		vals[4] = e->recipient;
		vals[5] = e->provider_id;
		vals[6] = e->message_id;
		vals[7] = e->queue_id;
		vals[8] = e->type;
		vals[9] = e->diagnostic;
		vals[10] = at;
		if ((res = store_exec(
		         s, sh_insert, 11, vals, NULL, NULL, &rc)) == NULL)
			goto fail;
		e->is_new = PQntuples(res) == 1;
		e->is_known = e->is_new && PQgetvalue(res, 0, 0)[0] != '\0';
		PQclear(res);
		if (!e->is_new)
			c->duplicate++;
		else if (!e->is_known)
			c->unknown++;
		else
			c->stored++;
	}
	if ((rc = store_commit(s)) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	store_rollback(s);
	memset(c, 0, sizeof(*c));
	return rc;
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
