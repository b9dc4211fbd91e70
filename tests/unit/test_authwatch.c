/* test_authwatch.c - AUTH failures per IP and per user over a sliding
 * minute: counting, expiry, ordering, bounded keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "authwatch.h"

static void
test_window(void **state)
{
	struct authwatch *w = authwatch_new();
	struct authwatch_top top[4];
	size_t n;
	int i;

	(void)state;
	for (i = 0; i < 5; i++)
		authwatch_failure(w, "192.0.2.1", "app1", 1000 + i);
	for (i = 0; i < 3; i++)
		authwatch_failure(w, "192.0.2.2", "", 1010);
	n = authwatch_top(w, 1010, top, 4);
	assert_int_equal(n, 3);
	assert_string_equal(top[0].subject, "192.0.2.1");
	assert_int_equal(top[0].failures, 5);
	assert_string_equal(top[1].kind, "user"); /* app1, 5 too */
	assert_int_equal(top[1].failures, 5);
	assert_string_equal(top[2].subject, "192.0.2.2");
	assert_int_equal(top[2].failures, 3);
	/* 60 s after the first failures only the later ones count */
	n = authwatch_top(w, 1062, top, 4);
	assert_int_equal(n, 3);
	assert_int_equal(top[0].failures, 3); /* 192.0.2.2 at 1010 */
	assert_int_equal(top[1].failures, 2); /* 1003, 1004 */
	n = authwatch_top(w, 1071, top, 4);
	assert_int_equal(n, 0);
	/* the slot of second 1000 is reused at 1060: it starts from zero,
	 * so the window (1000, 1060] holds 1001..1004 and the new one */
	authwatch_failure(w, "192.0.2.1", NULL, 1060);
	n = authwatch_top(w, 1060, top, 4);
	assert_string_equal(top[0].subject, "192.0.2.1");
	assert_int_equal(top[0].failures, 5);
	authwatch_free(w);
}

static void
test_bounded(void **state)
{
	struct authwatch *w = authwatch_new();
	struct authwatch_top top[2];
	char ip[32];
	int i;

	(void)state;
	for (i = 0; i < AUTHWATCH_MAX_KEYS + 100; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		authwatch_failure(w, ip, NULL, 2000 + i / 1000);
	}
	authwatch_failure(w, "10.0.0.1", NULL, 2004);
	assert_int_equal(authwatch_top(w, 2004, top, 2), 2);
	assert_int_equal(top[0].failures, 1); /* evicted and counted anew */
	assert_int_equal(authwatch_top(w, 2004, top, 0), 0);
	authwatch_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
