/* store_console.c - SQL of the web console (store_console.h): operators,
 * sessions, the audit history and the last reply of queued messages.
 * Called by console_auth.c, console_api.c and console_admin.c on their
 * own threads' store connections; errors as in store.h. */
#include "store_console.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define STORE_OPERATOR_COLS                                                    \
	"name, role, password_hash,"                                           \
	" extract(epoch FROM created_at)::bigint,"                             \
	" coalesce(extract(epoch FROM last_login_at)::bigint, 0),"             \
	" failed_logins,"                                                      \
	" coalesce(extract(epoch FROM locked_until)::bigint, 0),"              \
	" coalesce(locked_until > now(), false)"

int
store_console_user_add(
    struct store *s, const char *name, const char *role, const char *hash)
{
	const char *vals[3] = {name, role, hash};

	return store_run(s,
	    "INSERT INTO console_operators (name, role, password_hash)"
	    " VALUES ($1, $2, $3)",
	    3, vals);
}

/* UPDATE/DELETE of one named operator: STORE_NOT_FOUND when none. */
static int
store_console_one(struct store *s, const char *sql, const char *name)
{
	const char *vals[1] = {name};
	PGresult *res;
	int rc;

	if ((res = store_exec(s, sql, 1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	rc = strcmp(PQcmdTuples(res), "0") == 0 ? STORE_NOT_FOUND : STORE_OK;
	PQclear(res);
	return rc;
}

int
store_console_user_del(struct store *s, const char *name)
{
	return store_console_one(
	    s, "DELETE FROM console_operators WHERE name = $1", name);
}

int
store_console_user_unlock(struct store *s, const char *name)
{
	return store_console_one(s,
	    "UPDATE console_operators SET failed_logins = 0,"
	    " locked_until = NULL WHERE name = $1",
	    name);
}

static void
store_console_operator_rows(
    PGresult *res, bool with_hash, store_operator_cb cb, void *arg)
{
	struct store_operator_row r;
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		memset(&r, 0, sizeof(r));
		r.name = PQgetvalue(res, i, 0);
		r.role = PQgetvalue(res, i, 1);
		r.password_hash = with_hash ? PQgetvalue(res, i, 2) : "";
		r.created_at = store_int(res, i, 3);
		r.last_login_at = store_int(res, i, 4);
		r.failed_logins = (uint32_t)store_int(res, i, 5);
		r.locked_until = store_int(res, i, 6);
		r.is_locked = store_bool(res, i, 7);
		if (cb(arg, &r) != 0)
			break;
	}
}

int
store_console_user_list(struct store *s, store_operator_cb cb, void *arg)
{
	PGresult *res;
	int rc;

	if ((res = store_exec(s,
	         "SELECT " STORE_OPERATOR_COLS
	         " FROM console_operators ORDER BY name",
	         0, NULL, NULL, NULL, &rc)) == NULL)
		return rc;
	store_console_operator_rows(res, false, cb, arg);
	PQclear(res);
	return STORE_OK;
}

int
store_console_user_get(
    struct store *s, const char *name, store_operator_cb cb, void *arg)
{
	const char *vals[1] = {name};
	PGresult *res;
	int rc;

	if ((res = store_exec(s,
	         "SELECT " STORE_OPERATOR_COLS
	         " FROM console_operators WHERE name = $1",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	store_console_operator_rows(res, true, cb, arg);
	PQclear(res);
	return STORE_OK;
}

int
store_console_login_failed(struct store *s, const char *name, uint32_t max,
    int64_t lock_s, bool *locked_now)
{
	char mb[24], lb[24];
	const char *vals[3] = {name, mb, lb};
	PGresult *res;
	int rc;

	snprintf(mb, sizeof(mb), "%" PRIu32, max);
	snprintf(lb, sizeof(lb), "%" PRId64, lock_s);
	/* One statement: two controllers counting at once still lock. */
	if ((res = store_exec(s,
	         "UPDATE console_operators SET"
	         " failed_logins = CASE WHEN failed_logins + 1 >= $2::int"
	         "  THEN 0 ELSE failed_logins + 1 END,"
	         " locked_until = CASE WHEN failed_logins + 1 >= $2::int"
	         "  THEN now() + make_interval(secs => $3::bigint)"
	         "  ELSE locked_until END"
	         " WHERE name = $1"
	         " RETURNING coalesce(locked_until > now(), false)",
	         3, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	*locked_now = PQntuples(res) == 1 && store_bool(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}

int
store_console_login_ok(struct store *s, const char *name)
{
	return store_console_one(s,
	    "UPDATE console_operators SET failed_logins = 0,"
	    " locked_until = NULL, last_login_at = now() WHERE name = $1",
	    name);
}

int
store_console_session_add(struct store *s, const char *digest, const char *name,
    const char *csrf, const char *peer, int64_t ttl_s)
{
	char tb[24];
	const char *vals[5] = {digest, name, csrf, peer, tb};

	snprintf(tb, sizeof(tb), "%" PRId64, ttl_s);
	return store_run(s,
	    "INSERT INTO console_sessions"
	    " (token_digest, operator, csrf, peer, expires_at)"
	    " VALUES ($1, $2, $3, $4,"
	    "  now() + make_interval(secs => $5::bigint))",
	    5, vals);
}

int
store_console_session_get(struct store *s, const char *digest, int64_t idle_s,
    store_session_cb cb, void *arg)
{
	struct store_session_row r;
	char ib[24];
	const char *vals[2] = {digest, ib};
	PGresult *res;
	int rc;

	snprintf(ib, sizeof(ib), "%" PRId64, idle_s);
	if ((res = store_exec(s,
	         "UPDATE console_sessions c SET last_seen_at = now()"
	         " FROM console_operators o"
	         " WHERE c.token_digest = $1 AND o.name = c.operator"
	         " AND c.expires_at > now()"
	         " AND c.last_seen_at > now() - make_interval(secs =>"
	         "  $2::bigint)"
	         " RETURNING c.operator, o.role, c.csrf",
	         2, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return STORE_NOT_FOUND;
	}
	r.operator_name = PQgetvalue(res, 0, 0);
	r.role = PQgetvalue(res, 0, 1);
	r.csrf = PQgetvalue(res, 0, 2);
	cb(arg, &r);
	PQclear(res);
	return STORE_OK;
}

int
store_console_session_del(struct store *s, const char *digest)
{
	const char *vals[1] = {digest};

	return store_run(
	    s, "DELETE FROM console_sessions WHERE token_digest = $1", 1, vals);
}

int
store_console_session_expire(struct store *s, int64_t idle_s)
{
	char ib[24];
	const char *vals[1] = {ib};

	snprintf(ib, sizeof(ib), "%" PRId64, idle_s);
	return store_run(s,
	    "DELETE FROM console_sessions WHERE expires_at <= now()"
	    " OR last_seen_at <= now() - make_interval(secs => $1::bigint)",
	    1, vals);
}

int
store_console_audit_add(struct store *s, const char *identity,
    const char *action, const char *detail)
{
	const char *vals[3] = {identity, action, detail};

	return store_run(s,
	    "INSERT INTO audit_log (identity, action, detail)"
	    " VALUES ($1, $2, $3)",
	    3, vals);
}

int
store_console_audit_list(
    struct store *s, uint32_t limit, store_audit_cb cb, void *arg)
{
	struct store_audit_row r;
	char lb[24];
	const char *vals[1] = {lb};
	PGresult *res;
	int rc, i;

	snprintf(lb, sizeof(lb), "%" PRIu32, limit);
	if ((res = store_exec(s,
	         "SELECT id, extract(epoch FROM at)::bigint, identity,"
	         " action, detail FROM audit_log"
	         " ORDER BY id DESC LIMIT $1::int",
	         1, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res); i++) {
		r.id = (uint64_t)store_int(res, i, 0);
		r.at = store_int(res, i, 1);
		r.identity = PQgetvalue(res, i, 2);
		r.action = PQgetvalue(res, i, 3);
		r.detail = PQgetvalue(res, i, 4);
		if (cb(arg, &r) != 0)
			break;
	}
	PQclear(res);
	return STORE_OK;
}

int
store_console_last_replies(struct store *s, const char *const *ids, size_t n,
    store_last_reply_cb cb, void *arg)
{
	struct store_last_reply_row r;
	const char *vals[1];
	PGresult *res;
	char *arr, *p;
	size_t i, len = 3;
	int rc;

	/* A text[] literal: every id quoted, quotes and backslashes escaped
	 * (the caller passes queue ids, but the literal holds any text). */
	for (i = 0; i < n; i++)
		len += 2 * strlen(ids[i]) + 3;
	if ((arr = malloc(len)) == NULL)
		return STORE_ERROR;
	p = arr;
	*p++ = '{';
	for (i = 0; i < n; i++) {
		const char *c;

		if (i > 0)
			*p++ = ',';
		*p++ = '"';
		for (c = ids[i]; *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	vals[0] = arr;
	res = store_exec(s,
	    "SELECT DISTINCT ON (queue_id) queue_id, kind, hop, reply,"
	    " (extract(epoch FROM at) * 1000)::bigint FROM events"
	    " WHERE queue_id = ANY ($1::text[]) AND kind <> 'received'"
	    " AND reply <> '' ORDER BY queue_id, at DESC, seq DESC",
	    1, vals, NULL, NULL, &rc);
	free(arr);
	if (res == NULL)
		return rc;
	for (i = 0; i < (size_t)PQntuples(res); i++) {
		r.queue_id = PQgetvalue(res, (int)i, 0);
		r.kind = PQgetvalue(res, (int)i, 1);
		r.hop = PQgetvalue(res, (int)i, 2);
		r.reply = PQgetvalue(res, (int)i, 3);
		r.at_ms = store_int(res, (int)i, 4);
		if (cb(arg, &r) != 0)
			break;
	}
	PQclear(res);
	return STORE_OK;
}
