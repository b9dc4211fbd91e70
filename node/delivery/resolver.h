/* resolver.h - asynchronous MX resolution for direct delivery (hop "mx"):
 * c-ares on the node's libevent loop.  A lookup yields the delivery
 * targets of a domain in the order RFC 5321 5.1 prescribes: MX hosts by
 * preference (equal preferences shuffled), each host's addresses, or the
 * domain's own A/AAAA when it has no MX.  The resolver address is
 * configurable ("resolver = 127.0.0.1:5353") so tests use a loopback
 * dnsmasq.  Loop thread only. */
#ifndef SLUICE_RESOLVER_H
#define SLUICE_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct resolver;

enum resolver_status {
	RESOLVER_OK,
	RESOLVER_TEMPFAIL, /* SERVFAIL, timeout: defer */
	RESOLVER_PERMFAIL, /* NXDOMAIN, null MX (RFC 7505): bounce */
};

struct resolver_target {
	char host[256]; /* MX host name */
	int pref;
	struct sockaddr_storage addr; /* port 0: the caller sets it */
	socklen_t addrlen;
};

/* Results are valid during the callback only.  The callback gets back
 * its context arg (which must outlive the resolver: the delivery engine)
 * and the cookie it was given (an id, never a pointer to something that
 * may go while the lookup runs). */
typedef void (*resolver_cb)(void *arg, uint64_t cookie, enum resolver_status,
    const char *error, const struct resolver_target *, size_t n);

/* servers: NULL for the system's resolv.conf, else "ip[:port],...".
 * NULL on error, logged. */
struct resolver *resolver_new(struct event_base *, const char *servers);
/* Pending lookups are dropped without callbacks. */
void resolver_free(struct resolver *);
/* Starts an MX lookup of domain; cb runs later, on the loop. */
void resolver_mx(struct resolver *, const char *domain, resolver_cb, void *arg,
    uint64_t cookie);
/* Addresses (A and AAAA) of one host name, as one target list. */
void resolver_host(struct resolver *, const char *host, resolver_cb, void *arg,
    uint64_t cookie);

#endif
