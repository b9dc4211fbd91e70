/* auth.h - SMTP AUTH credential checks off the loop thread.  A password
 * hash check (scrypt, ~50 ms of CPU) runs on one worker thread and comes
 * back to the loop carrying the session's cookie, never a pointer: the
 * session may be gone by then.  Successful checks are remembered for an
 * hour, keyed by HMAC-SHA256(per-process random key, user, password,
 * stored hash), so a client that authenticates on every connection costs
 * one scrypt, not one per connection; failures are never cached (they
 * stay slow).  Loop thread only, apart from the worker. */
#ifndef SLUICE_AUTH_H
#define SLUICE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct auth;

#define AUTH_QUEUE_MAX 64 /* pending checks before AUTH says 454 */

/* Called on the loop thread with the cookie given to auth_verify(). */
typedef void (*auth_cb)(void *arg, uint64_t cookie, bool ok);

struct auth *auth_new(
    struct event_base *, auth_cb, void *arg, char *err, size_t errlen);
void auth_free(struct auth *);

enum auth_start {
	AUTH_BUSY = -1,     /* queue full: 454 4.7.0 */
	AUTH_QUEUED = 0,    /* the callback will follow */
	AUTH_CACHED_OK = 1, /* verified from the cache, no callback */
};
/* hash NULL (unknown user) burns the same time and fails. */
enum auth_start auth_verify(struct auth *, const char *user, const char *pass,
    const char *hash, uint64_t cookie);

#endif
