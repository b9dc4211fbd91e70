/* command.h - fleet commands on the node: drain, resume, flush, retry,
 * hold, release, delete, list (proto/control.proto CommandKind), and the
 * queue summary (qshape) the node reports in its heartbeats.
 *
 * The uplink thread hands commands over with command_post() and collects
 * results with command_results(); everything else runs on the loop thread,
 * which alone touches the spool, the delivery engine and the listeners.
 * A command id seen again (the controller did not get the result yet) is
 * answered from memory, never run twice. */
#ifndef SLUICE_COMMAND_H
#define SLUICE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

struct node;
struct command;

/* After the spool, delivery and SMTP server are open.  NULL on ENOMEM. */
struct command *command_open(struct node *);
void command_close(struct command *);

/* Uplink thread: copies the commands and posts them to the loop. */
void command_post(struct command *, Sluice__Command *const *, size_t n);
/* Uplink thread: this node's shares of fleet-wide hop budgets from the
 * latest heartbeat reply; applied on the loop when they changed.  Kept
 * while no controller answers. */
void command_shares(struct command *, Sluice__HopShare *const *, size_t n);
/* Fleet-wide hop pauses from a heartbeat reply (any thread): handed to
 * the delivery engine on the loop. */
void command_pauses(struct command *, Sluice__HopPause *const *, size_t n);
/* Uplink thread: the results not yet acknowledged, unpacked copies the
 * caller frees with command_results_free(). */
size_t command_results(struct command *, Sluice__CommandResult ***out);
/* The heartbeat carrying them was answered: forget them (kept for
 * repeated ids). */
void command_results_sent(struct command *, Sluice__CommandResult **, size_t);
void command_results_free(Sluice__CommandResult **, size_t);

/* Uplink thread: the latest queue summary as a QueueMetrics carrying
 * only `shape` (free with sluice__queue_metrics__free_unpacked), or NULL. */
Sluice__QueueMetrics *command_shape(struct command *);
/* Any thread: draining, and drained (draining with an empty queue and no
 * SMTP session open). */
bool command_draining(struct command *);
bool command_drained(struct command *);
/* Any thread: draining by handing the queue to peers (drain --handoff). */
bool command_handoff(struct command *);
/* Loop thread, from node_policy_swap(): while handing off, a new policy
 * from the controller is kept for resume and its handoff variant (every
 * route to the peers) is returned instead.  Takes and returns one
 * reference. */
struct policy;
struct policy *command_policy(struct command *, struct policy *);

#endif
