/* handoff_held.h - drain --handoff of held messages (docs/operations.md,
 * "drain --handoff").  The delivery engine never touches a held message,
 * so the handoff variant of the policy does not move it; this does: over
 * the shadow channel only (SMTP would deliver it), marked held, so the
 * peer keeps it held until an operator releases it there.  Loop thread
 * only; control.c owns it and runs it while the node hands off. */
#ifndef SLUICE_HANDOFF_HELD_H
#define SLUICE_HANDOFF_HELD_H

#include <stddef.h>

#include "handoff.h"

struct node;
struct handoff_held;

struct handoff_held *handoff_held_new(struct node *); /* NULL: ENOMEM */
/* Handoffs on their way are forgotten: call only when the loop is over
 * (their callbacks never come, shadow.h). */
void handoff_held_free(struct handoff_held *);
/* Sends the held messages not on their way yet (a bounded number at a
 * time) to the peers with a shadow channel (shadow "" skipped), in turn.
 * Each leaves the spool once its peer acked it, with a handed_off event
 * per pending recipient.  Without such a peer they stay, said once. */
void handoff_held_run(
    struct handoff_held *, const struct handoff_peer *peers, size_t n);

#endif
