/* test_quota.c - the node's per-credential quota table: reservations at
 * MAIL and RCPT, counting at acceptance, windows rolling over, the
 * controller's allowance versus the fallback share, reset times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "quota.h"

#define T0 1796601600 /* 2026-12-07T00:00:00Z, a UTC day start */

static void
test_windows(void **state)
{
	(void)state;
	assert_int_equal(quota_window_start(QUOTA_HOUR_MSGS, T0 + 3599), T0);
	assert_int_equal(
	    quota_window_start(QUOTA_HOUR_RCPTS, T0 + 3600), T0 + 3600);
	assert_int_equal(quota_window_start(QUOTA_DAY_MSGS, T0 + 86399), T0);
	assert_int_equal(quota_window_len(QUOTA_DAY_RCPTS), 86400);
	assert_int_equal(quota_dim_parse("day_rcpts"), QUOTA_DAY_RCPTS);
	assert_int_equal(quota_dim_parse("week"), -1);
	assert_string_equal(quota_dim_name(QUOTA_HOUR_MSGS), "hour_msgs");
}

static void
test_text(void **state)
{
	struct quota_refusal r = {QUOTA_DAY_RCPTS, 500, T0 + 86400};
	char buf[200];

	(void)state;
	quota_refusal_text(&r, "app1", buf, sizeof(buf));
	assert_string_equal(buf,
	    "451 4.7.1 Daily recipient quota (500) of user app1 reached; it "
	    "resets at 2026-12-08T00:00:00Z");
}

/* Without an allowance the node takes its fallback share (the whole
 * quota with one live node); reservations count like accepted mail. */
static void
test_messages(void **state)
{
	struct quota *q = quota_new();
	struct quota_limits l = {{3, 0, 0, 0}};
	struct quota_refusal r;
	struct quota_usage u[8];
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_true(quota_mail(q, "app1", &l, T0 + 10, &r));
	/* three open transactions hold the whole quota */
	assert_false(quota_mail(q, "app1", &l, T0 + 10, &r));
	assert_int_equal(r.dim, QUOTA_HOUR_MSGS);
	assert_int_equal(r.quota, 3);
	assert_int_equal(r.reset_at, T0 + 3600);
	/* one aborts: room again; two are accepted */
	quota_release(q, "app1", 1, 0);
	assert_true(quota_mail(q, "app1", &l, T0 + 11, &r));
	quota_commit(q, "app1", 1, 2, T0 + 12);
	quota_commit(q, "app1", 1, 1, T0 + 12);
	assert_int_equal(quota_usage(q, T0 + 12, u, 8), 4);
	assert_string_equal(u[0].user, "app1");
	assert_int_equal(u[0].dim, QUOTA_HOUR_MSGS);
	assert_int_equal(u[0].used, 2);
	assert_int_equal(u[0].refused, 1);
	assert_int_equal(u[1].dim, QUOTA_HOUR_RCPTS);
	assert_int_equal(u[1].used, 3);
	/* another user is not affected */
	assert_true(quota_mail(q, "app2", &l, T0 + 12, &r));
	quota_release(q, "app2", 1, 0);
	/* the next hour starts from zero */
	quota_release(q, "app1", 1, 0);
	for (i = 0; i < 3; i++)
		assert_true(quota_mail(q, "app1", &l, T0 + 3600, &r));
	assert_false(quota_mail(q, "app1", &l, T0 + 3601, &r));
	assert_int_equal(r.reset_at, T0 + 7200);
	quota_free(q);
}

/* The day quota opens later than the hour one: the refusal names the
 * later reset. */
static void
test_day_and_rcpts(void **state)
{
	struct quota *q = quota_new();
	struct quota_limits l = {{1, 0, 1, 2}};
	struct quota_refusal r;

	(void)state;
	assert_true(quota_mail(q, "u", &l, T0 + 100, &r));
	assert_true(quota_rcpt(q, "u", &l, T0 + 100, &r));
	assert_true(quota_rcpt(q, "u", &l, T0 + 100, &r));
	assert_false(quota_rcpt(q, "u", &l, T0 + 100, &r));
	assert_int_equal(r.dim, QUOTA_DAY_RCPTS);
	assert_int_equal(r.reset_at, T0 + 86400);
	quota_commit(q, "u", 1, 2, T0 + 101);
	assert_false(quota_mail(q, "u", &l, T0 + 102, &r));
	assert_int_equal(r.dim, QUOTA_DAY_MSGS);
	assert_int_equal(r.reset_at, T0 + 86400);
	/* the hour is new, the day is not */
	assert_false(quota_mail(q, "u", &l, T0 + 3700, &r));
	assert_int_equal(r.dim, QUOTA_DAY_MSGS);
	quota_free(q);
}

/* The controller's allowance replaces the fallback share for its window
 * only; one for another window is ignored. */
static void
test_grants(void **state)
{
	struct quota *q = quota_new();
	struct quota_limits l = {{10, 0, 0, 0}};
	struct quota_refusal r;
	struct quota_grant g;
	int i;

	(void)state;
	memset(&g, 0, sizeof(g));
	snprintf(g.user, sizeof(g.user), "app1");
	g.dim = QUOTA_HOUR_MSGS;
	g.window_start = T0;
	g.limit = 2;
	quota_grants(q, &g, 1, 2, T0 + 5);
	for (i = 0; i < 2; i++) {
		assert_true(quota_mail(q, "app1", &l, T0 + 6, &r));
		quota_commit(q, "app1", 1, 1, T0 + 6);
	}
	assert_false(quota_mail(q, "app1", &l, T0 + 7, &r));
	/* closed: limit at the count */
	g.limit = 2;
	quota_grants(q, &g, 1, 2, T0 + 8);
	assert_false(quota_mail(q, "app1", &l, T0 + 8, &r));
	/* a new hour without an allowance: 1/2 of 10 */
	for (i = 0; i < 5; i++) {
		assert_true(quota_mail(q, "app1", &l, T0 + 3600, &r));
		quota_commit(q, "app1", 1, 1, T0 + 3600);
	}
	assert_false(quota_mail(q, "app1", &l, T0 + 3601, &r));
	/* a stale grant (last hour's) changes nothing */
	g.limit = 100;
	quota_grants(q, &g, 1, 2, T0 + 3602);
	assert_false(quota_mail(q, "app1", &l, T0 + 3602, &r));
	g.window_start = T0 + 3600;
	quota_grants(q, &g, 1, 2, T0 + 3602);
	assert_true(quota_mail(q, "app1", &l, T0 + 3602, &r));
	quota_free(q);
}

/* No quota: nothing reserved, nothing refused, nothing reported. */
static void
test_unlimited(void **state)
{
	struct quota *q = quota_new();
	struct quota_limits l = {{0, 0, 0, 0}};
	struct quota_refusal r;
	struct quota_usage u[2];
	char name[80];
	int i;

	(void)state;
	assert_true(quota_mail(q, "free", &l, T0, &r));
	assert_int_equal(quota_usage(q, T0, u, 2), 0);
	/* a name longer than any policy name is not counted, not refused */
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	l.v[QUOTA_HOUR_MSGS] = 1;
	for (i = 0; i < 3; i++)
		assert_true(quota_mail(q, name, &l, T0, &r));
	quota_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_windows),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_day_and_rcpts),
	    cmocka_unit_test(test_grants),
	    cmocka_unit_test(test_unlimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
