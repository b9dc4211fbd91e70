/* queue_cmd.h - the operator's queue commands on this node: list, flush,
 * retry, hold, release, delete (proto/control.proto CommandKind).  Loop
 * thread: they edit the spool and kick the delivery engine.  Every change
 * to a message is also a delivery-record event (held, released, deleted,
 * retried), so `sluicectl trace` shows it. */
#ifndef SLUICE_QUEUE_CMD_H
#define SLUICE_QUEUE_CMD_H

#include <stddef.h>

#include "proto.h"

struct delivery;
struct journal;
struct spool;

struct queue_cmd_deps {
	const char *name; /* the node, for the log */
	struct spool *spool;
	struct journal *journal; /* NULL: no delivery record */
	struct delivery *delivery;
};

/* Runs cmd (LIST, FLUSH, RETRY, HOLD, RELEASE, DELETE) and fills res
 * (text and, for LIST, messages: malloc'd, the caller frees them). */
void queue_cmd_run(const struct queue_cmd_deps *, const Sluice__Command *cmd,
    Sluice__CommandResult *res);
/* Every deferred message due now; returns how many.  Does not kick. */
size_t queue_cmd_due_now(struct spool *);

#endif
