/* test_due_queue.c - the due-time index: order, moves, removal, wake,
 * and a randomised run against a plain array as the reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "due_queue.h"

static void
test_order_and_fifo(void **state)
{
	/* id, due: popped by due time, equal due times first in first out */
	static const struct {
		const char *qid;
		int64_t due;
	} in[] = {
	    {"C", 300},
	    {"A", 100},
	    {"N1", 0},
	    {"B", 200},
	    {"N2", 0},
	    {"N3", 0},
	    {"D", 100},
	};
	static const char *const out[] = {"N1", "N2", "N3", "A", "D", "B", "C"};
	struct due_queue *q = due_queue_new();
	char id[DUE_QID_MAX];
	size_t i;

	(void)state;
	assert_int_equal(due_queue_next(q), INT64_MAX);
	assert_false(due_queue_pop(q, INT64_MAX, id));
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		assert_int_equal(due_queue_set(q, in[i].qid, in[i].due, 0), 0);
	assert_int_equal(due_queue_len(q), 7);
	assert_int_equal(due_queue_next(q), 0);
	for (i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		assert_true(due_queue_pop(q, 1000, id));
		assert_string_equal(id, out[i]);
	}
	assert_int_equal(due_queue_len(q), 0);
	due_queue_free(q);
}

static void
test_not_due_yet(void **state)
{
	struct due_queue *q = due_queue_new();
	char id[DUE_QID_MAX];

	(void)state;
	due_queue_set(q, "X", 5000, 0);
	assert_false(due_queue_pop(q, 4999, id));
	assert_int_equal(due_queue_next(q), 5000);
	assert_true(due_queue_pop(q, 5000, id));
	assert_string_equal(id, "X");
	due_queue_free(q);
}

static void
test_move_and_remove(void **state)
{
	struct due_queue *q = due_queue_new();
	char id[DUE_QID_MAX];
	int64_t due;

	(void)state;
	due_queue_set(q, "A", 100, 0);
	due_queue_set(q, "B", 200, 0);
	due_queue_set(q, "C", 300, 0);
	/* deferred: later */
	due_queue_set(q, "A", 400, 0);
	assert_true(due_queue_get(q, "A", &due));
	assert_int_equal(due, 400);
	assert_int_equal(due_queue_next(q), 200);
	/* retried: earlier */
	due_queue_set(q, "C", 50, 0);
	assert_int_equal(due_queue_next(q), 50);
	assert_int_equal(due_queue_len(q), 3);
	/* held or deleted: out */
	assert_true(due_queue_remove(q, "C"));
	assert_false(due_queue_remove(q, "C"));
	assert_false(due_queue_get(q, "C", NULL));
	assert_true(due_queue_pop(q, 1000, id));
	assert_string_equal(id, "B");
	assert_true(due_queue_pop(q, 1000, id));
	assert_string_equal(id, "A");
	assert_false(due_queue_pop(q, 1000, id));
	due_queue_free(q);
}

static void
test_bad_ids(void **state)
{
	struct due_queue *q = due_queue_new();

	(void)state;
	assert_int_equal(due_queue_set(q, "", 1, 0), -1);
	assert_int_equal(
	    due_queue_set(q, "0123456789ABCDEF0123456789", 1, 0), -1);
	assert_int_equal(due_queue_len(q), 0);
	due_queue_free(q);
}

static void
test_wake_by_tag(void **state)
{
	struct due_queue *q = due_queue_new();
	uint32_t a = due_queue_tag("smarthost"), b = due_queue_tag("mx");
	char id[DUE_QID_MAX];

	(void)state;
	if (a == b) /* the table below wants two different bits */
		b = a == 1 ? 2 : 1;
	due_queue_set(q, "A1", 60000, a);
	due_queue_set(q, "B1", 60000, b);
	due_queue_set(q, "A2", 90000, a);
	due_queue_set(q, "A0", 10, a); /* already due: stays as it is */
	assert_int_equal(due_queue_wake(q, a, 1000), 2);
	assert_true(due_queue_pop(q, 1000, id));
	assert_string_equal(id, "A0");
	assert_true(due_queue_pop(q, 1000, id));
	assert_string_equal(id, "A1");
	assert_true(due_queue_pop(q, 1000, id));
	assert_string_equal(id, "A2");
	assert_false(due_queue_pop(q, 1000, id));
	assert_int_equal(due_queue_next(q), 60000);
	assert_int_equal(due_queue_wake(q, UINT32_MAX, 2000), 1);
	assert_true(due_queue_pop(q, 2000, id));
	assert_string_equal(id, "B1");
	due_queue_free(q);
}

static void
count_cb(const char *qid, int64_t due, void *arg)
{
	(void)qid;
	*(int64_t *)arg += due;
}

/* Random sets, removes and pops against a plain array. */
static void
test_random_against_reference(void **state)
{
	enum { N = 3000 };
	static int64_t ref[N]; /* due time, -1: not in */
	struct due_queue *q = due_queue_new();
	uint32_t rnd = 12345;
	size_t step, len = 0;
	int i;

	(void)state;
	for (i = 0; i < N; i++)
		ref[i] = -1;
	for (step = 0; step < 200000; step++) {
		char id[DUE_QID_MAX], got[DUE_QID_MAX];
		int k, op;

		rnd ^= rnd << 13;
		rnd ^= rnd >> 17;
		rnd ^= rnd << 5;
		k = (int)(rnd % N);
		op = (int)((rnd >> 16) % 8);
		snprintf(id, sizeof(id), "Q%05d", k);
		if (op < 4) {
			int64_t due = (int64_t)((rnd >> 8) % 1000);

			assert_int_equal(due_queue_set(q, id, due, 0), 0);
			len += ref[k] == -1;
			ref[k] = due;
		} else if (op < 6) {
			assert_int_equal(due_queue_remove(q, id), ref[k] != -1);
			len -= ref[k] != -1;
			ref[k] = -1;
		} else {
			int64_t now = (int64_t)((rnd >> 4) % 1000), min = -1;
			int j;

			for (j = 0; j < N; j++)
				if (ref[j] != -1 && (min == -1 || ref[j] < min))
					min = ref[j];
			if (min != -1 && min <= now) {
				assert_true(due_queue_pop(q, now, got));
				assert_int_equal(
				    ref[atoi(got + 1)], min); /* a minimum */
				ref[atoi(got + 1)] = -1;
				len--;
			} else
				assert_false(due_queue_pop(q, now, got));
		}
		assert_int_equal(due_queue_len(q), len);
	}
	{
		int64_t sum = 0, want = 0;

		for (i = 0; i < N; i++)
			want += ref[i] != -1 ? ref[i] : 0;
		due_queue_foreach(q, count_cb, &sum);
		assert_int_equal(sum, want);
	}
	due_queue_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_fifo),
	    cmocka_unit_test(test_not_due_yet),
	    cmocka_unit_test(test_move_and_remove),
	    cmocka_unit_test(test_bad_ids),
	    cmocka_unit_test(test_wake_by_tag),
	    cmocka_unit_test(test_random_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
