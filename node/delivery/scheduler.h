/* scheduler.h - pure retry arithmetic of the delivery engine: when a
 * deferred message is tried next, and when it has been queued too long.
 * No I/O, no clock: callers pass now and a random number, so table tests
 * reach every branch (tests/unit/test_scheduler.c). */
#ifndef SLUICE_SCHEDULER_H
#define SLUICE_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

struct scheduler_params {
	int64_t retry_min_s; /* first retry delay (policy retry_min_seconds) */
	int64_t retry_max_s; /* longest delay (retry_max_seconds) */
	int64_t lifetime_s;  /* bounce after (max_queue_lifetime_seconds) */
};

/*
 * Delay before the next attempt of a message queued age_s seconds ago.
 * The schedule doubles from retry_min_s up to retry_max_s (min, 2 min,
 * 4 min, ...).  It is derived from the message's age, not from an attempt
 * counter, so it survives restarts without extra state: after k attempts
 * made on time the age is min * (2^k - 1), and the next delay min * 2^k.
 * Jitter: the delay is spread over [0.9, 1.1) of itself by rnd (any
 * uint32) so retries of a burst of messages do not stay in lock step.
 */
int64_t scheduler_delay(
    const struct scheduler_params *, int64_t age_s, uint32_t rnd);
/* Absolute time (unix s, the spool's unit) of the next attempt of a
 * message committed at committed_at (unix s), deferred at now_ms (unix
 * ms): a whole second in [now_ms + 0.9 d, now_ms + 1.1 d) for the delay d
 * of the schedule above, or the first second after now_ms + 0.9 d when
 * that window holds none (d under 5 s); never later than the expiry
 * time, so a message bounces on time.  Always after now_ms. */
int64_t scheduler_next_attempt(const struct scheduler_params *,
    int64_t committed_at, int64_t now_ms, uint32_t rnd);
/* Has the message outlived the maximum queue lifetime? */
bool scheduler_expired(
    const struct scheduler_params *, int64_t committed_at, int64_t now);

#endif
