/* test_ratelimit.c - node/ratelimit.c with a driven clock: connection
 * slots, per-minute message windows, AUTH failure blocks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "ratelimit.h"

static void
test_conns(void **state)
{
	struct ratelimit *rl = ratelimit_new();

	(void)state;
	assert_true(ratelimit_conn_open(rl, "192.0.2.1", 2, 100));
	assert_true(ratelimit_conn_open(rl, "192.0.2.1", 2, 100));
	assert_false(ratelimit_conn_open(rl, "192.0.2.1", 2, 100));
	assert_true(ratelimit_conn_open(rl, "192.0.2.2", 2, 100));
	assert_int_equal(ratelimit_conns(rl, "192.0.2.1"), 2);
	ratelimit_conn_close(rl, "192.0.2.1");
	assert_true(ratelimit_conn_open(rl, "192.0.2.1", 2, 200));
	ratelimit_conn_close(rl, "192.0.2.1");
	ratelimit_conn_close(rl, "192.0.2.1");
	ratelimit_conn_close(rl, "192.0.2.2");
	assert_int_equal(ratelimit_conns(rl, "192.0.2.1"), 0);
	ratelimit_free(rl);
}

static void
test_messages(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_true(ratelimit_msg_allowed(rl, "ip:a", 3, 1000 + i));
		ratelimit_msg_count(rl, "ip:a", 1000 + i);
	}
	assert_false(ratelimit_msg_allowed(rl, "ip:a", 3, 1010));
	assert_true(ratelimit_msg_allowed(rl, "ip:b", 3, 1010));
	assert_true(ratelimit_msg_allowed(rl, "ip:a", 0, 1010)); /* off */
	assert_true(ratelimit_msg_allowed(rl, "ip:a", 3, 1060)); /* next */
	ratelimit_free(rl);
}

static void
test_auth_block(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	int64_t until = 0;

	(void)state;
	assert_false(ratelimit_auth_failure(rl, "192.0.2.9", 3, 300, 10));
	assert_false(ratelimit_auth_failure(rl, "192.0.2.9", 3, 300, 11));
	assert_false(ratelimit_auth_blocked(rl, "192.0.2.9", 11, &until));
	assert_true(ratelimit_auth_failure(rl, "192.0.2.9", 3, 300, 12));
	assert_true(ratelimit_auth_blocked(rl, "192.0.2.9", 13, &until));
	assert_int_equal(until, 312);
	assert_false(ratelimit_auth_blocked(rl, "192.0.2.8", 13, &until));
	assert_false(ratelimit_auth_blocked(rl, "192.0.2.9", 312, &until));
	/* failures spread wider than the window never block */
	assert_false(ratelimit_auth_failure(rl, "192.0.2.7", 2, 10, 100));
	assert_false(ratelimit_auth_failure(rl, "192.0.2.7", 2, 10, 200));
	assert_false(ratelimit_auth_blocked(rl, "192.0.2.7", 201, &until));
	ratelimit_free(rl);
}

static void
test_ceiling(void **state)
{
	struct ratelimit *rl = ratelimit_new();
	char key[64];
	int i;

	(void)state;
	/* idle keys are reclaimed: far more keys than the ceiling over
	 * time never fail */
	for (i = 0; i < RATELIMIT_MAX_KEYS + 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ratelimit_msg_count(rl, key, (int64_t)i * 100);
	}
	assert_true(ratelimit_conn_open(rl, "last", 1, 1000000000));
	ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_conns),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_auth_block),
	    cmocka_unit_test(test_ceiling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
