/* scheduler.c - retry backoff with jitter and queue lifetime, given now.
 * Pure: called by delivery.c when a message is deferred, and by the unit
 * tests.  Bad parameters are clamped, never trusted (policy_check keeps
 * them in range already). */
#include "scheduler.h"

/* The delay before jitter: min * 2^k, the smallest greater than age. */
static int64_t
scheduler_base(const struct scheduler_params *p, int64_t age_s)
{
	int64_t min = p->retry_min_s > 0 ? p->retry_min_s : 1;
	int64_t max = p->retry_max_s >= min ? p->retry_max_s : min;
	int64_t d = min;

	if (age_s < 0)
		age_s = 0;
	while (d <= age_s && d < max)
		d *= 2;
	return d > max ? max : d;
}

int64_t
scheduler_delay(const struct scheduler_params *p, int64_t age_s, uint32_t rnd)
{
	int64_t d = scheduler_base(p, age_s), spread;

	/* Jitter in [-10%, +10%) of d, in milliseconds of precision lost to
	 * whole seconds: fine for schedules of seconds to hours. */
	spread = d / 5;
	if (spread > 0)
		d = d - d / 10 + (int64_t)(rnd % (uint64_t)spread);
	return d > 0 ? d : 1;
}

int64_t
scheduler_next_attempt(const struct scheduler_params *p, int64_t committed_at,
    int64_t now_ms, uint32_t rnd)
{
	int64_t now = now_ms / 1000, d_ms, lo_ms, hi_ms, first, last, at;
	int64_t expire = committed_at + p->lifetime_s;

	/* The spool keeps whole seconds and a message is due once the clock
	 * reaches its second.  Counting from a truncated now made a
	 * deferral "in 2 s" at 10.85 s due at 12.0 s, 1.15 s later.  So the
	 * window [0.9 d, 1.1 d) is measured from the real now in ms and a
	 * whole second inside it is picked at random; a window that holds
	 * none (delays under 5 s) gives the first second after its start:
	 * never early, at most 1 s late. */
	d_ms = scheduler_base(p, now - committed_at) * 1000;
	lo_ms = now_ms + d_ms - d_ms / 10;
	hi_ms = now_ms + d_ms + d_ms / 10;
	first = (lo_ms + 999) / 1000;
	last = (hi_ms - 1) / 1000;
	at = first;
	if (last > first)
		at += (int64_t)(rnd % (uint64_t)(last - first + 1));
	if (p->lifetime_s > 0 && at > expire)
		at = expire;
	return at > now ? at : now + 1;
}

bool
scheduler_expired(
    const struct scheduler_params *p, int64_t committed_at, int64_t now)
{
	return p->lifetime_s > 0 && now - committed_at >= p->lifetime_s;
}
