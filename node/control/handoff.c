/* handoff.c - the handoff variant of a policy (handoff.h).
 *
 * Each message is acknowledged by a peer (its ShadowAck or its 250, both
 * after its fsync) before it leaves this spool: the delivery engine does
 * the handoff like any delivery, over the routes built here
 * (docs/operations.md "drain --handoff"). */
#include "handoff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

int
handoff_peer_split(const char *peer, char *host, size_t hlen, uint32_t *port)
{
	const char *colon = strrchr(peer, ':');
	const char *h = peer;
	size_t n;
	long p;

	if (colon == NULL || (p = strtol(colon + 1, NULL, 10)) <= 0 ||
	    p > 65535)
		return -1;
	n = (size_t)(colon - peer);
	if (n >= 2 && peer[0] == '[' && colon[-1] == ']') {
		h = peer + 1;
		n -= 2;
	}
	if (n == 0 || n >= hlen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (uint32_t)p;
	return 0;
}

/* Each piece is malloc'd and attached to the snapshot as soon as it
 * exists, so protobuf-c's free_unpacked releases everything on any
 * failure. */
Sluice__Policy *
handoff_snapshot(
    const Sluice__Policy *orig, const struct handoff_peer *peers, size_t npeers)
{
	Sluice__Policy *snap;
	Sluice__Route *r;
	Sluice__HopGroup *g;
	Sluice__Hop **hv, *h;
	char host[256], name[32];
	uint8_t *buf;
	size_t len, i, n = 0;
	uint32_t port;

	if ((buf = rpc_pack(&orig->base, &len)) == NULL)
		return NULL;
	snap = sluice__policy__unpack(NULL, len, buf);
	free(buf);
	if (snap == NULL)
		return NULL;
	/* A user's default route would win over "*" (route_match.h): the
	 * user's mail would stay here.  The peer applies it. */
	for (i = 0; i < snap->n_users; i++) {
		if (snap->users[i]->default_route != NULL)
			sluice__route__free_unpacked(
			    snap->users[i]->default_route, NULL);
		snap->users[i]->default_route = NULL;
	}
	for (i = 0; i < snap->n_routes; i++)
		sluice__route__free_unpacked(snap->routes[i], NULL);
	free(snap->routes);
	snap->routes = NULL;
	snap->n_routes = 0;
	if ((snap->routes = calloc(1, sizeof(*snap->routes))) == NULL ||
	    (r = calloc(1, sizeof(*r))) == NULL)
		goto fail;
	sluice__route__init(r);
	snap->routes[0] = r;
	snap->n_routes = 1;
	if ((r->pattern = strdup("*")) == NULL ||
	    (r->groups = calloc(1, sizeof(*r->groups))) == NULL ||
	    (g = calloc(1, sizeof(*g))) == NULL)
		goto fail;
	sluice__hop_group__init(g);
	r->groups[0] = g;
	r->n_groups = 1;
	if (npeers == 0 ||
	    (g->hops = calloc(npeers, sizeof(*g->hops))) == NULL ||
	    (hv = realloc(snap->hops, (snap->n_hops + npeers) * sizeof(*hv))) ==
	        NULL)
		goto fail;
	snap->hops = hv;
	for (i = 0; i < npeers; i++) {
		if (handoff_peer_split(
		        peers[i].addr, host, sizeof(host), &port) == -1)
			continue;
		if ((h = calloc(1, sizeof(*h))) == NULL)
			goto fail;
		sluice__hop__init(h);
		snap->hops[snap->n_hops++] = h;
		snprintf(name, sizeof(name), "handoff-%zu", n + 1);
		if ((h->name = strdup(name)) == NULL ||
		    (h->host = strdup(host)) == NULL ||
		    (g->hops[n] = strdup(name)) == NULL)
			goto fail;
		h->port = port;
		h->tls = SLUICE__TLS_MODE__TLS_NONE;
		if (peers[i].shadow != NULL && peers[i].shadow[0] != '\0' &&
		    ((h->shadow_peer = strdup(peers[i].shadow)) == NULL ||
		        (h->peer_node = strdup(
		             peers[i].name != NULL ? peers[i].name : "")) ==
		            NULL))
			goto fail;
		g->n_hops = ++n;
	}
	if (n == 0)
		goto fail;
	return snap;
fail:
	sluice__policy__free_unpacked(snap, NULL);
	return NULL;
}
