/* store_internal.h - shared by store*.c only: the connection and the one
 * query helper every store function goes through. */
#ifndef SLUICE_STORE_INTERNAL_H
#define SLUICE_STORE_INTERNAL_H

#include <libpq-fe.h>

#include "store.h"

struct store {
	PGconn *conn;
	char *conninfo;
	char name[32];       /* "node", "admin": for logs */
	int64_t retry_at_ms; /* no reconnect before (monotonic) */
	int backoff_ms;
	bool is_lost;         /* lost-connection logged once */
	uint64_t reconnects;  /* times connected again after a loss */
	bool needs_reset;     /* reconnect before the next query */
	char last_error[256]; /* of the last failed query, one line */
	int idle_tx_ms;       /* idle_in_transaction_session_timeout */
};

/* Runs sql with text parameters (lens/fmts may be NULL; fmts[i] == 1 for
 * binary bytea).  Returns the result (PQclear it) with *rc STORE_OK, or
 * NULL with *rc set and the failure logged. */
PGresult *store_exec(struct store *, const char *sql, int nparams,
    const char *const *vals, const int *lens, const int *fmts, int *rc);
/* Same, for statements whose result is not needed. */
int store_run(
    struct store *, const char *sql, int nparams, const char *const *vals);

/* A PostgreSQL text[] literal of n strings, {"a","b\"c"}, for one
 * parameter of an unnest() insert; an element that is not UTF-8 goes in
 * with its bad octets as \xHH (text_escape.h), like store_exec()'s
 * parameters.  malloc'd, NULL on ENOMEM. */
char *store_text_array(const char *const *v, size_t n);

int64_t store_int(const PGresult *, int row, int col);
bool store_bool(const PGresult *, int row, int col);

#endif
