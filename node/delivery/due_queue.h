/* due_queue.h - the delivery engine's due-time index: which queued
 * message is tried next, and when.  A binary min-heap keyed by due time
 * (then by insertion order, so mail due at the same moment goes first in,
 * first out) with a hash from queue id to heap slot, so that a message
 * that is deferred, held, released or deleted moves or leaves in
 * O(log n).  Delivery wakes for the head of the heap instead of walking
 * the queue.  Pure: no I/O, no clock (now is passed in); tested by
 * tests/unit/test_due_queue.c.
 *
 * A tag per entry says what the message waits for (a bit per hop name,
 * due_queue_tag()): due_queue_wake() makes every message waiting for a
 * hop due at once, e.g. after a probe found the hop working again.  Bits
 * are shared between hop names, so a wake may also bring forward a few
 * messages of other hops; that is an early retry, never a lost one. */
#ifndef SLUICE_DUE_QUEUE_H
#define SLUICE_DUE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DUE_QID_MAX 24 /* queue id incl. NUL (SPOOL_QID_MAX) */

struct due_queue;

/* NULL when out of memory. */
struct due_queue *due_queue_new(void);
void due_queue_free(struct due_queue *);

/* Puts qid in the index due at due_ms, or moves it there if it is in
 * already (its place among equal due times is then last).  -1 if qid is
 * empty or too long, or out of memory (the index is unchanged). */
int due_queue_set(
    struct due_queue *, const char *qid, int64_t due_ms, uint32_t tag);
/* Takes qid out; false if it was not in. */
bool due_queue_remove(struct due_queue *, const char *qid);
/* Is qid in, and when is it due? (due_ms may be NULL) */
bool due_queue_get(const struct due_queue *, const char *qid, int64_t *due_ms);
/* Due time of the head; INT64_MAX when empty. */
int64_t due_queue_next(const struct due_queue *);
/* If the head is due at now_ms (due <= now_ms), takes it out, copies its
 * id into out and returns true. */
bool due_queue_pop(struct due_queue *, int64_t now_ms, char out[DUE_QID_MAX]);
size_t due_queue_len(const struct due_queue *);

/* The tag bit of a hop name (one of 32). */
uint32_t due_queue_tag(const char *hop);
/* Every entry whose tag shares a bit with mask and is due after now_ms
 * becomes due at now_ms; mask UINT32_MAX: every entry.  Returns how
 * many moved.  O(n). */
size_t due_queue_wake(struct due_queue *, uint32_t mask, int64_t now_ms);

/* Calls cb for every entry, in no particular order (queue summaries).
 * cb must not change the index. */
void due_queue_foreach(const struct due_queue *,
    void (*cb)(const char *qid, int64_t due_ms, void *arg), void *arg);

#endif
