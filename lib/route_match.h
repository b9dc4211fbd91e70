/* route_match.h - which route a message takes.  Pure; shared by the node
 * (delivery), the policy check (ties) and sluicectl (route explain) so all
 * three answer the same way.
 *
 * A route matches on the recipient domain (pattern) and optionally on
 * the envelope sender, the AUTH user, the listener and the client
 * network.  The most specific matching route wins: more conditions beat
 * fewer; with the same conditions, a route at least as specific in every
 * one and more specific in one wins.  Two routes that can match the same
 * mail without either winning tie, and a policy with a tie is refused
 * unless a third route, more specific than both, covers all the mail
 * they share (docs/delivery.md, "Routes"). */
#ifndef SLUICE_ROUTE_MATCH_H
#define SLUICE_ROUTE_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum route_dim {
	ROUTE_DIM_DOMAIN = 0, /* recipient domain: pattern */
	ROUTE_DIM_SENDER,     /* envelope sender */
	ROUTE_DIM_USER,       /* AUTH user */
	ROUTE_DIM_LISTENER,   /* listener name */
	ROUTE_DIM_CLIENT,     /* client network */
	ROUTE_DIM_COUNT,
};

/* "domain", "from", "user", "listener", "client" */
const char *route_dim_name(enum route_dim);

/* What one message (for one recipient domain) brings to routing.  NULL
 * or "" fields are unknown and match no condition on them. */
struct route_ctx {
	const char *domain;
	const char *sender; /* "a@example.com", "" for <> */
	const char *user;
	const char *listener;
	int family; /* AF_INET/AF_INET6, 0: client unknown */
	uint8_t addr[16];
};

/* The client address from "[192.0.2.1]:25", "192.0.2.1" or "::1"; the
 * family stays 0 when it is none of those ("local"). */
void route_ctx_client(struct route_ctx *, const char *client);

/* "example.com" matches exactly, "*.example.com" any subdomain (not the
 * apex), "*" anything.  Case-insensitive. */
bool route_domain_match(const char *pattern, const char *domain);
/* Valid route sender condition: "local@domain", "*@domain",
 * "*@*.domain" or "local@*.domain" (the domain checked by the caller). */
bool route_sender_syntax(const char *pattern);

/* The first condition of r the message does not meet, or -1 when r
 * matches. */
int route_mismatch(const Sluice__Route *r, const struct route_ctx *);

#define ROUTE_CMP_INCOMPARABLE 2
/* 1: a is more specific, -1: b is, 0: equally specific (same conditions,
 * same pattern kinds), ROUTE_CMP_INCOMPARABLE: neither. */
int route_cmp(const Sluice__Route *a, const Sluice__Route *b);
/* Number of conditions (the domain "*" is none). */
unsigned route_nconds(const Sluice__Route *);

/* The route mail of ctx takes, or NULL.  The user's default route
 * (User.default_route) is taken when only the catch-all "*" or nothing
 * matches. */
const Sluice__Route *route_select(
    const Sluice__Policy *p, const struct route_ctx *);
/* Recipient domain only (no sender, user, listener or client). */
const Sluice__Route *route_match(const Sluice__Policy *p, const char *domain);
/* True when r is a user's default route (not one of p->routes). */
bool route_is_default(const Sluice__Policy *p, const Sluice__Route *r);

/* A tie (above): 0 when there is none, else -1 with the two routes'
 * indexes and one sentence naming both. */
int route_check_ties(
    const Sluice__Policy *p, size_t *a, size_t *b, char *msg, size_t len);
/* Same conditions (the route's identity in a policy). */
bool route_same_match(const Sluice__Route *, const Sluice__Route *);
/* "example.com", "* from=*@billing.example.com user=app1". */
void route_describe(const Sluice__Route *, char *buf, size_t len);

/* The hop of that name, or NULL (also for the built-in "mx", which has no
 * entry, and when p is NULL). */
const Sluice__Hop *route_hop(const Sluice__Policy *p, const char *name);

#endif
