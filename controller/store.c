/* store.c - the PostgreSQL connection of one controller thread: connect,
 * lose, reconnect with backoff; the query helper; transactions; schema
 * migrations.  Queries on nodes, policy and events live in store_node.c,
 * store_policy.c and store_event.c.  libpq errors become enum store_rc
 * here and are logged once. */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "migrations.h"
#include "text_escape.h"

#define STORE_BACKOFF_MIN_MS 100
/* pg_advisory_xact_lock key for migrations: "sluice" in ASCII. */
#define STORE_MIGRATE_LOCK "126909663503205"

static int64_t
store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
store_rc_code(int rc)
{
	switch (rc) {
	case STORE_OK:
		return "ok";
	case STORE_NOT_FOUND:
		return "not_found";
	case STORE_EXISTS:
		return "exists";
	case STORE_UNAVAILABLE:
		return "unavailable";
	case STORE_INVALID:
		return "invalid";
	default:
		return "internal";
	}
}

struct store *
store_new(const char *conninfo, const char *name)
{
	struct store *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->conninfo = strdup(conninfo)) == NULL) {
		free(s);
		return NULL;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->backoff_ms = STORE_BACKOFF_MIN_MS;
	s->idle_tx_ms = STORE_IDLE_TX_MS;
	return s;
}

uint64_t
store_reconnects(const struct store *s)
{
	return s->reconnects;
}

void
store_set_idle_tx_timeout(struct store *s, int ms)
{
	s->idle_tx_ms = ms;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	if (s->conn != NULL)
		PQfinish(s->conn);
	free(s->conninfo);
	free(s);
}

/* One line, no trailing newline, for logs. */
static const char *
store_errmsg(PGconn *conn, char *buf, size_t len)
{
	char *nl;

	snprintf(buf, len, "%s", conn ? PQerrorMessage(conn) : "no memory");
	while ((nl = strchr(buf, '\n')) != NULL)
		*nl = (nl[1] == '\0') ? '\0' : ' ';
	return buf;
}

/* Server notices (e.g. "terminating connection due to immediate shutdown")
 * go to our log, not to stderr raw. */
static void
store_on_notice(void *arg, const char *message)
{
	struct store *s = arg;
	char buf[512];
	char *nl;

	snprintf(buf, sizeof(buf), "%s", message);
	while ((nl = strchr(buf, '\n')) != NULL)
		*nl = (nl[1] == '\0') ? '\0' : ' ';
	log_info("store %s: postgres says: %s", s->name, buf);
}

int
store_connect(struct store *s)
{
	/* connect_timeout first: the operator's conninfo may override it. */
	const char *const keys[] = {
	    "connect_timeout", "application_name", "options", "dbname", NULL};
	char options[128];
	const char *vals[] = {
	    "5", "sluice-controller", options, s->conninfo, NULL};
	char msg[512];
	int64_t now;

	/* No JIT: every statement here is small OLTP work, and an event
	 * batch's estimated cost crossed jit_above_cost, so PostgreSQL
	 * compiled it with LLVM on every batch (15 % of its ingest CPU). */
	snprintf(options, sizeof(options),
	    "-c idle_in_transaction_session_timeout=%d -c jit=off",
	    s->idle_tx_ms);

	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK &&
	    !s->needs_reset)
		return STORE_OK;
	now = store_now_ms();
	if (now < s->retry_at_ms)
		return STORE_UNAVAILABLE;
	if (s->conn == NULL) {
		s->conn = PQconnectdbParams(keys, vals, 1);
		if (s->conn != NULL)
			PQsetNoticeProcessor(s->conn, store_on_notice, s);
	} else {
		/* Also a connection that broke where no failure was
		 * classified (store_rollback's ROLLBACK ignores its result:
		 * a health tick that did not get the lock rolled back on a
		 * primary just killed): with a multi-host conninfo the new
		 * one may be another server, a promoted standby whose
		 * heartbeats lag, so it counts as a reconnection and
		 * alert.c starts watching again.  Uncounted, the next tick
		 * judged every node silent from the lost tail's stale
		 * heartbeats (a fleet_pg_failover run's false node_silent). */
		if (!s->is_lost)
			log_warnx("store %s: connection to PostgreSQL broken",
			    s->name);
		s->is_lost = true;
		PQreset(s->conn);
	}
	s->needs_reset = false;
	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK) {
		if (s->is_lost) {
			log_info(
			    "store %s: connected to PostgreSQL again", s->name);
			s->reconnects++;
		}
		s->is_lost = false;
		s->backoff_ms = STORE_BACKOFF_MIN_MS;
		s->retry_at_ms = 0;
		return STORE_OK;
	}
	if (!s->is_lost)
		log_warnx("store %s: cannot connect to PostgreSQL: %s "
		          "(retrying with backoff)",
		    s->name, store_errmsg(s->conn, msg, sizeof(msg)));
	s->is_lost = true;
	s->retry_at_ms = now + s->backoff_ms;
	s->backoff_ms *= 2;
	if (s->backoff_ms > STORE_BACKOFF_MAX_MS)
		s->backoff_ms = STORE_BACKOFF_MAX_MS;
	return STORE_UNAVAILABLE;
}

/* Classifies a failed result: connection trouble, bad data or a bug. */
static int
store_classify(struct store *s, PGresult *res, const char *sql)
{
	const char *state =
	    res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char msg[512];

	store_errmsg(s->conn, s->last_error, sizeof(s->last_error));

	/* No SQLSTATE: libpq itself failed (the socket broke). */
	if (PQstatus(s->conn) != CONNECTION_OK || state == NULL ||
	    (state != NULL &&
	        (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	            strcmp(state, "57P02") == 0 ||
	            strcmp(state, "57P03") == 0))) {
		if (!s->is_lost)
			log_warnx("store %s: lost PostgreSQL: %s", s->name,
			    store_errmsg(s->conn, msg, sizeof(msg)));
		s->is_lost = true;
		s->needs_reset = true;
		return STORE_UNAVAILABLE;
	}
	if (strcmp(state, "23505") == 0)
		return STORE_EXISTS;
	if (strncmp(state, "22", 2) == 0) {
		log_warnx("store %s: data refused: %s", s->name,
		    store_errmsg(s->conn, msg, sizeof(msg)));
		return STORE_INVALID;
	}
	log_warnx("store %s: query failed: %s sql=\"%.60s\"", s->name,
	    store_errmsg(s->conn, msg, sizeof(msg)), sql);
	return STORE_ERROR;
}

/* Peer text (a Message-ID, an address, a reply, a HELO name, an AUTH user)
 * may be any bytes, and PostgreSQL refuses a text value that is not UTF-8
 * ("invalid byte sequence"): such a value goes in with its bad octets as
 * \xHH (text_escape.h).  NULL with *rc STORE_OK when every text parameter
 * is UTF-8 already (the usual case: no copy). */
static char **
store_escape(int nparams, const char *const *vals, const int *fmts, int *rc)
{
	char **esc = NULL;
	int i;

	*rc = STORE_OK;
	for (i = 0; i < nparams; i++) {
		if (vals[i] == NULL || (fmts != NULL && fmts[i] == 1) ||
		    text_is_utf8(vals[i]))
			continue;
		if (esc == NULL &&
		    (esc = calloc((size_t)nparams, sizeof(*esc))) == NULL)
			goto oom;
		if ((esc[i] = text_escape(vals[i])) == NULL)
			goto oom;
	}
	if (esc == NULL)
		return NULL;
	for (i = 0; i < nparams; i++)
		if (esc[i] == NULL)
			esc[i] = (char *)(uintptr_t)vals[i];
	return esc;
oom:
	if (esc != NULL)
		for (i = 0; i < nparams; i++)
			free(esc[i]);
	free(esc);
	*rc = STORE_ERROR;
	return NULL;
}

static void
store_escape_free(char **esc, int nparams, const char *const *vals)
{
	int i;

	if (esc == NULL)
		return;
	for (i = 0; i < nparams; i++)
		if (esc[i] != vals[i])
			free(esc[i]);
	free(esc);
}

PGresult *
store_exec(struct store *s, const char *sql, int nparams,
    const char *const *vals, const int *lens, const int *fmts, int *rc)
{
	PGresult *res;
	ExecStatusType st;
	char **esc;

	if ((*rc = store_connect(s)) != STORE_OK)
		return NULL;
	if ((esc = store_escape(nparams, vals, fmts, rc)) == NULL &&
	    *rc != STORE_OK)
		return NULL;
	/* Without parameters PQexec also runs multi-statement migrations. */
	if (nparams == 0)
		res = PQexec(s->conn, sql);
	else
		res = PQexecParams(s->conn, sql, nparams, NULL,
		    esc != NULL ? (const char *const *)esc : vals, lens, fmts,
		    0);
	store_escape_free(esc, nparams, vals);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	*rc = store_classify(s, res, sql);
	PQclear(res);
	return NULL;
}

int
store_run(
    struct store *s, const char *sql, int nparams, const char *const *vals)
{
	PGresult *res;
	int rc;

	if ((res = store_exec(s, sql, nparams, vals, NULL, NULL, &rc)) == NULL)
		return rc;
	PQclear(res);
	return STORE_OK;
}

int64_t
store_int(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool
store_bool(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col)[0] == 't';
}

int
store_begin(struct store *s)
{
	return store_run(s, "BEGIN", 0, NULL);
}

int
store_commit(struct store *s)
{
	return store_run(s, "COMMIT", 0, NULL);
}

void
store_rollback(struct store *s)
{
	PGresult *res;

	/* Never reconnect just to roll back: a new session has nothing open. */
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK ||
	    s->needs_reset)
		return;
	if (PQtransactionStatus(s->conn) == PQTRANS_IDLE)
		return;
	res = PQexec(s->conn, "ROLLBACK");
	PQclear(res);
}

/* "001_initial" -> 1 */
static long
store_migration_version(const char *name)
{
	return strtol(name, NULL, 10);
}

int
store_migrate(struct store *s)
{
	PGresult *res;
	const char *vals[2];
	char vbuf[24];
	size_t i;
	long v, have_max = 0;
	int rc, row, applied = 0;
	bool have;

	if ((rc = store_begin(s)) != STORE_OK)
		return rc;
	/* Serialises controllers starting at once; released at COMMIT. */
	if ((rc = store_run(s,
	         "SELECT pg_advisory_xact_lock(" STORE_MIGRATE_LOCK ")", 0,
	         NULL)) != STORE_OK)
		goto fail;
	if ((rc = store_run(s,
	         "CREATE TABLE IF NOT EXISTS schema_migrations ("
	         " version integer PRIMARY KEY,"
	         " name text NOT NULL,"
	         " applied_at timestamptz NOT NULL DEFAULT now())",
	         0, NULL)) != STORE_OK)
		goto fail;
	if ((res = store_exec(s, "SELECT version FROM schema_migrations", 0,
	         NULL, NULL, NULL, &rc)) == NULL)
		goto fail;
	for (i = 0; i < migrations_count; i++) {
		v = store_migration_version(migrations[i].name);
		have = false;
		for (row = 0; row < PQntuples(res); row++)
			if (store_int(res, row, 0) == v)
				have = true;
		if (have)
			continue;
		/* Several statements, no parameters: PQexec runs them all. */
		if ((rc = store_run(s, (const char *)migrations[i].sql, 0,
		         NULL)) != STORE_OK) {
			log_warnx(
			    "store: migration %s failed", migrations[i].name);
			PQclear(res);
			goto fail;
		}
		snprintf(vbuf, sizeof(vbuf), "%ld", v);
		vals[0] = vbuf;
		vals[1] = migrations[i].name;
		if ((rc = store_run(s,
		         "INSERT INTO schema_migrations (version, name) "
		         "VALUES ($1, $2)",
		         2, vals)) != STORE_OK) {
			PQclear(res);
			goto fail;
		}
		log_info("store: applied migration %s", migrations[i].name);
		applied++;
	}
	for (row = 0; row < PQntuples(res); row++)
		if (store_int(res, row, 0) > have_max)
			have_max = (long)store_int(res, row, 0);
	PQclear(res);
	if ((rc = store_commit(s)) != STORE_OK)
		goto fail;
	if (migrations_count > 0 &&
	    have_max >
	        store_migration_version(migrations[migrations_count - 1].name))
		log_warnx("store: database schema version %ld is newer than "
		          "this controller knows; running anyway",
		    have_max);
	log_info("store: schema up to date migrations=%zu applied=%d",
	    migrations_count, applied);
	return STORE_OK;
fail:
	store_rollback(s);
	return rc;
}

char *
store_text_array(const char *const *v, size_t n)
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
