/* journal.h - the node's event journal: delivery-record events (received,
 * delivered, deferred, bounced, expired) wait here, on disk, until the
 * controller has acknowledged them, so nothing is lost while it is away.
 * Thread-safe: the loop thread appends, the uplink thread reads and acks.
 * Sequence numbers are node-local, strictly increasing, and survive
 * restarts; the controller stores events idempotently by (node, seq). */
#ifndef SLUICE_JOURNAL_H
#define SLUICE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct journal;

/* Opens (creating) <dir>/events.journal.  NULL on error, logged. */
struct journal *journal_open(const char *dir);
void journal_close(struct journal *);
/* Assigns ev->seq (and ev->at_ms when 0) and appends.  The caller keeps
 * ownership of ev.  -1 on write error, logged. */
int journal_append(struct journal *, Sluice__Event *ev);
struct spool_note;
/* The received event of a message about to be committed, as a spool note
 * (spool.h): appended by the spool's flush worker right after the
 * message's record, made durable by journal_sync() before the 250, never
 * appended if the record could not be written.  ev is copied (its seq is
 * given at append).  NULL on ENOMEM. */
struct spool_note *journal_note_new(struct journal *, const Sluice__Event *ev);
/* The journal's syncer thread fdatasyncs what was appended so far; end
 * waits until it has.  Thread-safe: the spool's sync hooks, so the
 * journal's sync runs beside the spool segment's. */
void journal_sync_begin(void *journal);
void journal_sync_end(void *journal);

/* Whether the events of one more message (need octets, at most) fit in
 * the space the journal has reserved, keeping a floor for the messages
 * already accepted; reserves more when it can.  -1 (errno ENOSPC): answer
 * 452 4.3.1 and accept nothing that cannot be journaled. */
int journal_room(struct journal *, size_t need);
/* Up to max unacked events, oldest first, packed into a new array of
 * unpacked events the caller frees with journal_batch_free().  0 events:
 * nothing pending.  journal_pending, journal_ack and journal_rewind are
 * called from one thread only (the uplink). */
size_t journal_pending(struct journal *, size_t max, Sluice__Event ***events);
void journal_batch_free(Sluice__Event **events, size_t n);
/* Everything with seq <= upto is stored by the controller. */
void journal_ack(struct journal *, uint64_t upto);
uint64_t journal_unacked(struct journal *);
/* What the controller is told: acknowledged up to *acked, and the first
 * acknowledged sequence still retained (*retained_from, 0: none). */
void journal_window(struct journal *, uint64_t *acked, uint64_t *retained_from);
/* Acknowledged events are kept this long after their acknowledgement and
 * up to this many octets (oldest dropped first). */
void journal_set_retention(struct journal *, int64_t ms, size_t bytes);
/* A controller says its database holds this node's events up to stored
 * only (a failover lost the rest): acknowledged events after it that are
 * still retained become unacknowledged again, to be sent again.  Returns
 * how many, or -1 on a read error; *lost_from is the first sequence that
 * is no longer retained and so is lost for good (0: none); those stay
 * acknowledged. */
int64_t journal_rewind(struct journal *, uint64_t stored, uint64_t *lost_from);

#endif
