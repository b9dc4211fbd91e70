/* scheduler.c - retry backoff with jitter and queue lifetime, given now.
 * Pure: called by delivery.c when a message is deferred, and by the unit
 * tests.  Bad parameters are clamped, never trusted (policy_check keeps
 * them in range already). */
#include "scheduler.h"

int64_t
scheduler_delay(const struct scheduler_params *p, int64_t age_s, uint32_t rnd)
{
	int64_t min = p->retry_min_s > 0 ? p->retry_min_s : 1;
	int64_t max = p->retry_max_s >= min ? p->retry_max_s : min;
	int64_t d = min, spread;

	if (age_s < 0)
		age_s = 0;
	/* Smallest min * 2^k greater than age: the doubling schedule. */
	while (d <= age_s && d < max)
		d *= 2;
	if (d > max)
		d = max;
	/* Jitter in [-10%, +10%) of d, in milliseconds of precision lost to
	 * whole seconds: fine for schedules of seconds to hours. */
	spread = d / 5;
	if (spread > 0)
		d = d - d / 10 + (int64_t)(rnd % (uint64_t)spread);
	return d > 0 ? d : 1;
}

int64_t
scheduler_next_attempt(const struct scheduler_params *p, int64_t committed_at,
    int64_t now, uint32_t rnd)
{
	int64_t at = now + scheduler_delay(p, now - committed_at, rnd);
	int64_t expire = committed_at + p->lifetime_s;

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
