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
/* orig with every route replaced by one: "*" to the peers' relay
 * listeners (hops handoff-1.., plain SMTP, load shared).  Peers that do
 * not split are skipped.  NULL when none is left or on ENOMEM; free with
 * sluice__policy__free_unpacked. */
Sluice__Policy *handoff_snapshot(
    const Sluice__Policy *orig, char *const *peers, size_t npeers);

#endif
