/* quota.h - per-credential hourly and daily message and recipient quotas
 * on the node (issue 15; docs/smtp.md, "Quotas").  The quota is the
 * fleet's: the controller sums every node's counts and hands each node an
 * allowance in the heartbeat reply (quota_grant); between heartbeats, and
 * while no controller answers, the node enforces the last allowance
 * alone.  Counted at acceptance: one message and its recipients when the
 * 250 after DATA goes out.  A MAIL reserves one message and every
 * accepted RCPT one recipient, so concurrent transactions of one user
 * cannot all pass the check; an aborted transaction gives them back.
 *
 * Pure apart from its own memory: every call takes `now`.  The SMTP
 * sessions (loop thread) and the uplink (its own thread) share it: a
 * mutex guards the table.  Bounded: QUOTA_MAX_USERS users; when full of
 * users active in the current windows a new one is not counted (logged by
 * the caller once), never refused for lack of room. */
#ifndef SLUICE_QUOTA_H
#define SLUICE_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUOTA_MAX_USERS 4096
#define QUOTA_USER_MAX  65 /* policy user names are 1-64 characters */

enum quota_dim {
	QUOTA_HOUR_MSGS,
	QUOTA_HOUR_RCPTS,
	QUOTA_DAY_MSGS,
	QUOTA_DAY_RCPTS,
	QUOTA_DIMS
};

struct quota;

/* One user's quotas from the policy, by dimension; 0: none. */
struct quota_limits {
	uint32_t v[QUOTA_DIMS];
};

/* Why a MAIL or RCPT was refused. */
struct quota_refusal {
	enum quota_dim dim;
	uint32_t quota;   /* the fleet-wide value */
	int64_t reset_at; /* unix s: the window's end */
};

/* A node's counts in one window, for the heartbeat. */
struct quota_usage {
	char user[QUOTA_USER_MAX];
	enum quota_dim dim;
	char dim_name[16]; /* quota_dim_name(dim) */
	int64_t window_start;
	uint64_t used, refused;
};

/* The controller's verdict (proto QuotaGrant). */
struct quota_grant {
	char user[QUOTA_USER_MAX];
	enum quota_dim dim;
	int64_t window_start;
	uint64_t limit;
};

/* The reply to a refusal, without CRLF:
 * "451 4.7.1 Hourly message quota (10) of user app1 reached; it resets
 * at 2026-12-07T03:00:00Z". */
void quota_refusal_text(
    const struct quota_refusal *, const char *user, char *buf, size_t len);

struct quota *quota_new(void);
void quota_free(struct quota *);

/* "hour_msgs", "hour_rcpts", "day_msgs", "day_rcpts". */
const char *quota_dim_name(enum quota_dim);
/* -1 for an unknown name. */
int quota_dim_parse(const char *);
/* The UTC hour or day (by dim) that now falls in, and its length. */
int64_t quota_window_start(enum quota_dim, int64_t now);
int64_t quota_window_len(enum quota_dim);
/* True when some dimension of l is set. */
bool quota_any(const struct quota_limits *);

/* MAIL by user: true reserves one message; false fills *r (the first
 * message dimension that is full). */
bool quota_mail(struct quota *, const char *user, const struct quota_limits *,
    int64_t now, struct quota_refusal *r);
/* RCPT by user: true reserves one recipient. */
bool quota_rcpt(struct quota *, const char *user, const struct quota_limits *,
    int64_t now, struct quota_refusal *r);
/* The message was accepted: its reservations (msgs 0 or 1, rcpts) count
 * in the windows of now. */
void quota_commit(struct quota *, const char *user, unsigned msgs,
    unsigned rcpts, int64_t now);
/* The transaction ended without acceptance: give the reservations back. */
void quota_release(
    struct quota *, const char *user, unsigned msgs, unsigned rcpts);

/* Uplink: every count in the current windows that is not zero; at most
 * max, returns how many. */
size_t quota_usage(
    struct quota *, int64_t now, struct quota_usage *out, size_t max);
/* Uplink: the allowances of the latest heartbeat reply and the number of
 * live nodes (a window without an allowance takes 1/live_nodes of the
 * quota).  Grants for windows other than the current one are ignored. */
void quota_grants(struct quota *, const struct quota_grant *, size_t n,
    uint32_t live_nodes, int64_t now);

#endif
