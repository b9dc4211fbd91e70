/* oauth.h - access tokens for XOAUTH2 hops (issue 15; docs/delivery.md,
 * "XOAUTH2").  One per node, owned by delivery.c.  Token requests go over
 * HTTPS (libcurl) on one worker thread, never on the event loop; results
 * come back to the loop through a pipe.  Tokens are cached per hop
 * (name and settings), refreshed from 80 % of their lifetime, and a
 * session that needs one waits for it; when the endpoint fails the
 * waiting sessions get the reason and their hop fails over. */
#ifndef SLUICE_OAUTH_H
#define SLUICE_OAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

struct event_base;
struct oauth;
struct oauth_hop;
struct oauth_wait;

/* ca_file: the CAs token endpoints are verified with (NULL: the
 * system's).  NULL with err on failure. */
struct oauth *oauth_new(
    struct event_base *, const char *ca_file, char *err, size_t errlen);
/* Stops the worker (an unfinished request is abandoned); waiters are not
 * called. */
void oauth_free(struct oauth *);

/* The token source of h, NULL when h is not an oauth2 hop.  Hops are
 * shared by name and settings (a new policy version with the same
 * settings keeps the cached token) and live as long as o. */
struct oauth_hop *oauth_hop_get(struct oauth *, const Sluice__Hop *h);
const char *oauth_hop_user(const struct oauth_hop *);

/* token: a usable token, or NULL and err: why none came (the
 * endpoint's answer, a timeout, a key that does not load). */
typedef void oauth_token_cb(void *arg, const char *token, const char *err);

/* A token for an AUTH now.  Returns a cached one (valid until the next
 * return to the loop: copy it) and *wait NULL; or NULL and *wait, and cb
 * is called once from the loop, never from inside this call. */
const char *oauth_token(
    struct oauth_hop *, oauth_token_cb *, void *arg, struct oauth_wait **wait);
/* Forgets a waiter: its callback will not be called. */
void oauth_cancel(struct oauth_wait *);
/* The server refused token (535): the cached one, if it is that one, is
 * dropped and the next oauth_token fetches a new one. */
void oauth_discard(struct oauth_hop *, const char *token);
/* Starts a fetch when the cached token is missing or due for refresh
 * (a session about to need one: the request overlaps the connect). */
void oauth_prefetch(struct oauth_hop *);

#endif
