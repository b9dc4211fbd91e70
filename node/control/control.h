/* control.h - the node's side of the cluster link, on the loop thread.
 *
 * It owns the running policy (control_install), the heartbeat report
 * (built here every heartbeat period and handed to the uplink thread,
 * which only transports it; /metrics renders the same report), and what
 * comes back: fleet commands (drain, resume and the queue commands of
 * queue_cmd.h), hop budget shares and fleet-wide pauses, the shadow peer,
 * quota grants, a new policy.  (A rewind of the event journal stays on
 * the uplink thread, in order with its event reports.)  The uplink
 * thread posts each of those through the node's mailbox; everything here
 * runs on the loop thread, so none of it takes a lock.
 *
 * Drain and resume carry the controller's drain_seq as id (a different
 * id space): they are idempotent state changes and have no result; the
 * heartbeat's metrics.draining is the answer.  Other commands keep their
 * packed result in a ring of the last CONTROL_RING ids until a heartbeat
 * reply acknowledges it; an id seen again is answered from the ring,
 * never run twice. */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery.h"

#define CONTROL_HOPS_MAX 64 /* hops reported */

struct node;
struct control;
struct policy;

/* What the node reports: the heartbeat's QueueMetrics and /metrics. */
struct node_report {
	int64_t at; /* unix s, when built */
	uint64_t connections, accepted, refused, delivered, deferred_attempts,
	    bounced, auth_failures, quota_refused;
	uint64_t queue_messages, queue_bytes, queue_active, queue_deferred,
	    queue_held, oldest_age_s;
	uint64_t policy_version;
	bool policy_from_cache;
	bool draining, drained, handoff;
	struct delivery_hop_metric hops[CONTROL_HOPS_MAX];
	size_t nhops;
};

/* After the spool; before a cached policy is installed.  NULL on ENOMEM. */
struct control *control_open(struct node *);
/* After the delivery engine, SMTP server and shadow are open: starts the
 * uplink thread and the heartbeat (the first one now).  -1 with err. */
int control_start(struct control *, char *err, size_t errlen);
/* Stops the uplink thread (before the node's mailbox is freed: what it
 * posted still runs here). */
void control_stop(struct control *);
void control_close(struct control *);
/* Non-zero when the controller refused this node. */
int control_refused(const struct control *);

/* Installs p as the running policy (takes the reference); from_cache:
 * it is the on-disk copy, not the controller's answer.  While handing
 * off, p is kept for resume and its handoff variant runs instead. */
void control_install(struct control *, struct policy *, bool from_cache);
/* The report, built now (valid until the next call). */
const struct node_report *control_report(struct control *);

#endif
