/* ratelimit.h - the node's in-memory rate state, keyed by client IP or AUTH
 * user: concurrent connections per IP, messages per minute per IP and per
 * user (fixed one-minute windows), AUTH failures and temporary blocks per
 * IP.  Pure apart from its own memory: every call takes `now`, so tests
 * drive time.  Bounded: at most RATELIMIT_MAX_KEYS keys; idle keys are
 * reclaimed as their buckets are visited.  Loop thread only. */
#ifndef SLUICE_RATELIMIT_H
#define SLUICE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_MAX_KEYS 100000
#define RATELIMIT_KEY_MAX  320

struct ratelimit;

struct ratelimit *ratelimit_new(void);
void ratelimit_free(struct ratelimit *);

/* Counts a connection from ip unless it already has max; false: refuse
 * (421).  Every true is paired with one ratelimit_conn_close(). */
bool ratelimit_conn_open(
    struct ratelimit *, const char *ip, int64_t max, int64_t now);
void ratelimit_conn_close(struct ratelimit *, const char *ip);
unsigned ratelimit_conns(struct ratelimit *, const char *ip);

/* May key ("ip:1.2.3.4", "user:app1") send one more message in its
 * current minute?  per_minute 0: unlimited. */
bool ratelimit_msg_allowed(
    struct ratelimit *, const char *key, int64_t per_minute, int64_t now);
/* Counts an accepted message against key. */
void ratelimit_msg_count(struct ratelimit *, const char *key, int64_t now);

/* Is ip blocked for AUTH failures?  *until gets the unblock time. */
bool ratelimit_auth_blocked(
    struct ratelimit *, const char *ip, int64_t now, int64_t *until);
/* Records an AUTH failure from ip; failures count within a window of
 * block_s seconds.  true when this failure starts a block (log it). */
bool ratelimit_auth_failure(struct ratelimit *, const char *ip,
    int64_t max_failures, int64_t block_s, int64_t now);

#endif
