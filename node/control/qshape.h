/* qshape.h - the queue summary by recipient domain (Postfix's qshape):
 * per domain the messages with a pending recipient there, how many are
 * deferred and held, and their ages in buckets (<5, <10, <20, <40, <80,
 * <160, >=160 minutes).  Pure: the caller walks the spool and passes each
 * message's spool_info and the time; no I/O, no clock. */
#ifndef SLUICE_QSHAPE_H
#define SLUICE_QSHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define QSHAPE_SCAN 512 /* domains tracked; the rest count as "(other)" */
#define QSHAPE_SEND 20  /* largest domains reported */
#define QSHAPE_NAGE 7   /* age buckets */

struct spool_info;
struct qshape;

/* NULL on ENOMEM. */
struct qshape *qshape_new(int64_t now);
/* Counts one message.  -1 on ENOMEM (the summary is then incomplete:
 * callers drop it). */
int qshape_add(struct qshape *, const struct spool_info *);
/* The largest domains first (ties by name), at most QSHAPE_SEND; the rows
 * stay owned by the qshape. */
size_t qshape_top(struct qshape *, Sluice__QueueShape ***rows);
void qshape_free(struct qshape *);

#endif
