/* handoff.h - drain --handoff: the policy a node runs while it hands its
 * queue to its peers.  Pure: takes the controller's snapshot and the
 * peers, returns a new snapshot; never installs anything (control.c
 * does, docs/operations.md "drain --handoff"). */
#ifndef SLUICE_HANDOFF_H
#define SLUICE_HANDOFF_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define HANDOFF_PEERS_MAX 32

/* "host:port" or "[v6]:port" into a hop's host and port.  -1 when it is
 * neither (no port, port out of range, empty or too long host). */
int handoff_peer_split(
    const char *peer, char *host, size_t hlen, uint32_t *port);
/* A node to hand mail to: its relay listener, its name and the address
 * of its shadow channel ("" when the mail cannot go that way). */
struct handoff_peer {
	const char *addr;
	const char *name;
	const char *shadow;
};
/* orig with every route replaced by one: "*" to the peers (hops
 * handoff-1.., load shared), and no user default routes (the peer
 * applies them).  A hop goes over the shadow channel when its peer has
 * one (shadow_peer, peer_node set: the whole envelope travels), else
 * over plain SMTP to the relay listener.  Peers whose address does not
 * split are skipped.  NULL when none is left or on ENOMEM; free with
 * sluice__policy__free_unpacked. */
Sluice__Policy *handoff_snapshot(const Sluice__Policy *orig,
    const struct handoff_peer *peers, size_t npeers);

#endif
