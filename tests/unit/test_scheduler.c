/* test_scheduler.c - retry schedule and expiry, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "scheduler.h"

static const struct scheduler_params P = {300, 4000, 432000};

static void
test_doubling(void **state)
{
	/* age → delay without jitter spread (delay in [0.9d, 1.1d)). */
	static const struct {
		int64_t age, delay;
	} t[] = {
	    {0, 300},
	    {299, 300},
	    {300, 600},
	    {899, 1200},
	    {900, 1200},
	    {2100, 2400},
	    {4500, 4000},
	    {400000, 4000},
	};
	size_t i;
	uint32_t r;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (r = 0; r < 2000; r += 97) {
			int64_t d = scheduler_delay(&P, t[i].age, r * 7919u);

			assert_true(d >= t[i].delay - t[i].delay / 10);
			assert_true(d < t[i].delay + t[i].delay / 10 + 1);
		}
}

static void
test_jitter_spreads(void **state)
{
	int64_t lo = INT64_MAX, hi = 0, d;
	uint32_t r;

	(void)state;
	for (r = 0; r < 1000; r++) {
		d = scheduler_delay(&P, 0, r * 2654435761u);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(hi - lo >= 40); /* 300 s ± 10 % */
}

static void
test_small_and_bad_params(void **state)
{
	struct scheduler_params p = {1, 2, 60};
	struct scheduler_params bad = {0, -5, 0};

	(void)state;
	assert_int_equal(scheduler_delay(&p, 0, 0), 1);
	assert_int_equal(scheduler_delay(&p, 10, 0), 2);
	assert_true(scheduler_delay(&bad, 100, 5) >= 1);
}

static void
test_next_attempt_capped_by_expiry(void **state)
{
	(void)state;
	/* Committed at 1000, lifetime 432000: 100 s before expiry the next
	 * attempt is at expiry, not 4000 s later. */
	assert_int_equal(
	    scheduler_next_attempt(&P, 1000, (1000 + 431900) * 1000LL, 0),
	    1000 + 432000);
	assert_true(
	    scheduler_next_attempt(&P, 1000, 1000 * 1000LL, 0) >= 1000 + 270);
	/* Past expiry: still strictly in the future. */
	assert_int_equal(
	    scheduler_next_attempt(&P, 0, 500000 * 1000LL + 999, 0), 500001);
}

/* The retry lands inside the documented jitter window measured from the
 * real (millisecond) deferral time: [0.9 d, 1.1 d), or for delays under
 * 5 s, whose window may hold no whole second, [0.9 d, 1.1 d + 1 s).  The
 * old code counted from the truncated second: "in 2 s" at x.85 s came due
 * 1.15 s later. */
static void
test_jitter_bounds_from_real_now(void **state)
{
	static const struct {
		struct scheduler_params p;
		int64_t committed_at, now_ms, d_ms;
	} t[] = {
	    {{2, 2, 0}, 10, 10850, 2000}, /* the reported case */
	    {{2, 2, 0}, 10, 10001, 2000},
	    {{2, 2, 0}, 10, 10999, 2000},
	    {{1, 4, 0}, 100, 100500, 1000},
	    {{1, 4, 0}, 100, 101999, 2000}, /* age 1 s: 2 s */
	    {{3, 60, 0}, 0, 999, 3000},
	    {{5, 60, 0}, 0, 4321, 5000},
	    {{10, 60, 0}, 0, 777, 10000},
	    {{300, 4000, 432000}, 1000, 1000123, 300000},
	    {{300, 4000, 432000}, 1000, 1900999, 1200000},
	    {{300, 4000, 432000}, 0, 400000500, 4000000},
	};
	size_t i;
	uint32_t r;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int64_t lo = t[i].d_ms - t[i].d_ms / 10;
		int64_t hi = t[i].d_ms + t[i].d_ms / 10;
		int64_t min_seen = INT64_MAX, max_seen = 0;

		if (t[i].d_ms < 5000)
			hi += 1000;
		for (r = 0; r < 5000; r += 7) {
			int64_t at = scheduler_next_attempt(&t[i].p,
			    t[i].committed_at, t[i].now_ms, r * 2654435761u);
			int64_t wait = at * 1000 - t[i].now_ms;

			if (wait < lo || wait >= hi)
				fail_msg("case %zu: wait %lld ms not in [%lld, "
				         "%lld)",
				    i, (long long)wait, (long long)lo,
				    (long long)hi);
			min_seen = wait < min_seen ? wait : min_seen;
			max_seen = wait > max_seen ? wait : max_seen;
		}
		/* and it does spread when the window holds several seconds */
		if (t[i].d_ms >= 20000)
			assert_true(max_seen - min_seen >= t[i].d_ms / 10);
	}
}

static void
test_expired(void **state)
{
	(void)state;
	assert_false(scheduler_expired(&P, 1000, 1000 + 431999));
	assert_true(scheduler_expired(&P, 1000, 1000 + 432000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_doubling),
	    cmocka_unit_test(test_jitter_spreads),
	    cmocka_unit_test(test_small_and_bad_params),
	    cmocka_unit_test(test_next_attempt_capped_by_expiry),
	    cmocka_unit_test(test_jitter_bounds_from_real_now),
	    cmocka_unit_test(test_expired),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
