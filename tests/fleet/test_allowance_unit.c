/* test_allowance_unit.c - table test of the fleet-wide quota shares
 * (controller/allowance.c): the live nodes' allowances never sum past the
 * quota, idle shares flow to the busy node, a silent node's is given
 * back, an exhausted quota gives nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "allowance.h"

static void
test_table(void **state)
{
	static const struct {
		uint64_t quota, self_used;
		struct allowance_node others[3];
		size_t n;
		uint64_t want;
	} t[] = {
	    /* alone: the whole quota */
	    {10, 0, {{0}}, 0, 10},
	    /* two idle nodes: half each, the second gets the rest */
	    {10, 0, {{0, 0, true}}, 1, 5},
	    {10, 0, {{0, 5, true}}, 1, 5},
	    /* odd quota: the first rounds up, the second gets what is left */
	    {11, 0, {{0, 0, true}}, 1, 6},
	    {11, 0, {{0, 6, true}}, 1, 5},
	    /* busy self used its 5, the other still holds 5: nothing yet */
	    {10, 5, {{0, 5, true}}, 1, 0},
	    /* the other's heartbeat gave most back: self gets the rest */
	    {10, 5, {{0, 1, true}}, 1, 4},
	    /* the other went silent: its allowance is free again, its
	     * count is not */
	    {10, 5, {{2, 5, false}}, 1, 3},
	    /* full: nothing, also when over (a partition's overshoot) */
	    {10, 6, {{4, 4, true}}, 1, 0},
	    {10, 9, {{4, 4, true}}, 1, 0},
	    /* weighted by count: 1+8 against 1+0 and 1+0 */
	    {20, 8, {{0, 0, true}, {0, 0, true}}, 2, 10},
	    {0, 0, {{0}}, 0, 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t got = allowance_share(
		    t[i].quota, t[i].self_used, t[i].others, t[i].n);
		if (got != t[i].want)
			fail_msg("case %zu: share %llu, want %llu", i,
			    (unsigned long long)got,
			    (unsigned long long)t[i].want);
	}
}

/* Heartbeats in turn from three nodes with uneven traffic: at every step
 * the live allowances sum to at most the quota, and every message the
 * fleet is offered is accepted until the quota is reached. */
static void
test_rounds(void **state)
{
	struct allowance_node nd[3] = {
	    {0, 0, true}, {0, 0, true}, {0, 0, true}};
	struct allowance_node others[2];
	uint64_t q = 30, total = 0, sum;
	int round, i, j, k, demand[3] = {5, 1, 0};

	(void)state;
	for (round = 0; round < 40; round++) {
		i = round % 3;
		for (j = 0, k = 0; j < 3; j++)
			if (j != i)
				others[k++] = nd[j];
		nd[i].granted =
		    nd[i].used + allowance_share(q, nd[i].used, others, 2);
		for (j = 0, sum = 0; j < 3; j++)
			sum += nd[j].granted > nd[j].used ? nd[j].granted
			                                  : nd[j].used;
		assert_true(sum <= q);
		/* each node takes what it is offered up to its allowance */
		for (j = 0; j < 3; j++) {
			for (k = 0; k < demand[j] && nd[j].used < nd[j].granted;
			     k++) {
				nd[j].used++;
				total++;
			}
		}
	}
	assert_int_equal(total, q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_rounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
