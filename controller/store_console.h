/* store_console.h - the web console's tables (migration 012): operator
 * accounts, sessions and the audit history.  Implemented in
 * store_console.c (the only file here that speaks SQL for them); errors
 * as in store.h.  Times are unix seconds by the database clock, so every
 * controller of a fleet agrees on expiry and lockout. */
#ifndef SLUICE_STORE_CONSOLE_H
#define SLUICE_STORE_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct store_operator_row {
	const char *name;
	const char *role;
	const char *password_hash; /* only for store_console_user_get */
	int64_t created_at;
	int64_t last_login_at; /* 0: never */
	uint32_t failed_logins;
	int64_t locked_until; /* 0: not locked */
	bool is_locked;       /* locked_until is in the future */
};
typedef int (*store_operator_cb)(void *arg, const struct store_operator_row *);

int store_console_user_add(
    struct store *, const char *name, const char *role, const char *hash);
/* STORE_NOT_FOUND when there is no such operator.  Sessions go too. */
int store_console_user_del(struct store *, const char *name);
/* Clears the failure count and any lockout. */
int store_console_user_unlock(struct store *, const char *name);
int store_console_user_list(struct store *, store_operator_cb, void *);
/* One operator with its hash; STORE_NOT_FOUND if none. */
int store_console_user_get(
    struct store *, const char *name, store_operator_cb, void *);
/* A refused password: failed_logins + 1, and once it reaches max the
 * account is locked for lock_s seconds (the count starts again). */
int store_console_login_failed(struct store *, const char *name, uint32_t max,
    int64_t lock_s, bool *locked_now);
int store_console_login_ok(struct store *, const char *name);

struct store_session_row {
	const char *operator_name;
	const char *role;
	const char *csrf;
};
typedef int (*store_session_cb)(void *arg, const struct store_session_row *);

int store_console_session_add(struct store *, const char *digest,
    const char *name, const char *csrf, const char *peer, int64_t ttl_s);
/* The live session with this token digest, touched (last_seen_at), or
 * STORE_NOT_FOUND: unknown, past expires_at or idle longer than idle_s. */
int store_console_session_get(struct store *, const char *digest,
    int64_t idle_s, store_session_cb, void *);
int store_console_session_del(struct store *, const char *digest);
/* Drops expired sessions. */
int store_console_session_expire(struct store *, int64_t idle_s);

struct store_audit_row {
	uint64_t id;
	int64_t at;
	const char *identity;
	const char *action;
	const char *detail;
};
typedef int (*store_audit_cb)(void *arg, const struct store_audit_row *);

int store_console_audit_add(struct store *, const char *identity,
    const char *action, const char *detail);
/* Newest first, at most limit rows. */
int store_console_audit_list(
    struct store *, uint32_t limit, store_audit_cb, void *);

/* The last delivery reply of each queue id (deferred, bounced...): the
 * console shows it beside a deferred message.  ids has n entries. */
struct store_last_reply_row {
	const char *queue_id;
	const char *kind;
	const char *hop;
	const char *reply;
	int64_t at_ms;
};
typedef int (*store_last_reply_cb)(
    void *arg, const struct store_last_reply_row *);
int store_console_last_replies(struct store *, const char *const *ids, size_t n,
    store_last_reply_cb, void *);

#endif
