/* hop_pause.h - pure: fleet-wide hop pauses (issue 10).  A node that met a
 * provider's throttle (SES "454 Throttling", M365 "432 4.3.2", ...) reports
 * what is left of its own pause in its heartbeat metrics
 * (HopMetrics.own_throttled_for_s); the controller folds the live nodes'
 * latest metrics into one pause per hop (the longest) and sends the list to
 * every node in its heartbeat reply.  No I/O: api_node.c feeds it. */
#ifndef SLUICE_HOP_PAUSE_H
#define SLUICE_HOP_PAUSE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define HOP_PAUSE_MAX 64

struct hop_pause {
	char hop[64];
	char node[64];     /* the node whose pause lasts longest */
	int64_t left_ms;   /* from the moment the metrics were folded */
	uint32_t window_s; /* the provider's window (0: back-off) */
};

struct hop_pause_set {
	struct hop_pause v[HOP_PAUSE_MAX];
	size_t n;
};

/* Folds node's metrics, age_ms old, into set: every hop with a pause of
 * its own still running after age_ms; the longest per hop is kept.
 * Pauses the node only relays (fleet_paused) are not its own and are
 * never folded back, so a pause cannot feed itself. */
void hop_pause_add(struct hop_pause_set *, const char *node, int64_t age_ms,
    const Sluice__QueueMetrics *);

#endif
