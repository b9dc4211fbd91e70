/* test_router.c - route plans: group order, weights, max_size, circuit
 * breaker and throttling, given now and a seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

static Sluice__Hop hops[4];
static char n_a[] = "a", n_b[] = "b", n_c[] = "c";
static char *g1_names[] = {n_a, n_b};
static char *g2_names[] = {n_c};
static Sluice__HopGroup g1 = SLUICE__HOP_GROUP__INIT,
                        g2 = SLUICE__HOP_GROUP__INIT;
static Sluice__HopGroup *groups[] = {&g1, &g2};
static Sluice__Route route = SLUICE__ROUTE__INIT;

static const Sluice__Hop *
lookup(void *arg, const char *name)
{
	size_t i;

	(void)arg;
	for (i = 0; i < 4; i++)
		if (hops[i].name != NULL && strcmp(hops[i].name, name) == 0)
			return &hops[i];
	return NULL;
}

static int
setup(void **state)
{
	static const char *names[] = {"a", "b", "c", "d"};
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		sluice__hop__init(&hops[i]);
		hops[i].name = (char *)(uintptr_t)names[i];
		hops[i].weight = 1;
	}
	g1.n_hops = 2;
	g1.hops = g1_names;
	g2.n_hops = 1;
	g2.hops = g2_names;
	route.n_groups = 2;
	route.groups = groups;
	return 0;
}

static void
test_groups_in_order(void **state)
{
	struct router *r = router_new(NULL);
	const Sluice__Hop *out[8];
	uint32_t seed = 1;
	size_t n;

	(void)state;
	n = router_plan(r, &route, lookup, NULL, 100, 0, &seed, out, 8);
	assert_int_equal(n, 3);
	assert_string_equal(out[2]->name, "c");
	assert_true(strcmp(out[0]->name, out[1]->name) != 0);
	router_free(r);
}

static void
test_weights_3_to_1(void **state)
{
	struct router *r = router_new(NULL);
	const Sluice__Hop *out[8];
	uint32_t seed = 12345;
	int first_a = 0, i;

	(void)state;
	hops[0].weight = 3;
	hops[1].weight = 1;
	for (i = 0; i < 10000; i++) {
		router_plan(r, &route, lookup, NULL, 100, 0, &seed, out, 8);
		first_a += strcmp(out[0]->name, "a") == 0;
	}
	/* Expect 7500; 4 sigma of a binomial(10000, .75) is ~175. */
	assert_in_range(first_a, 7300, 7700);
	hops[0].weight = hops[1].weight = 1;
	router_free(r);
}

static void
test_max_size_skips(void **state)
{
	struct router *r = router_new(NULL);
	const Sluice__Hop *out[8];
	uint32_t seed = 7;
	size_t n, i;

	(void)state;
	hops[0].max_size = 1000;
	n = router_plan(r, &route, lookup, NULL, 5000, 0, &seed, out, 8);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++)
		assert_string_not_equal(out[i]->name, "a");
	hops[0].max_size = 0;
	router_free(r);
}

static void
test_circuit_opens_and_probes(void **state)
{
	struct router_params p = {3, 1000, 500, 4000};
	struct router *r = router_new(&p);
	const Sluice__Hop *out[8];
	uint32_t seed = 9;
	size_t n;

	(void)state;
	router_result(r, "a", ROUTER_FAIL, 0);
	router_result(r, "a", ROUTER_FAIL, 0);
	assert_true(router_hop_available(r, "a", 10));
	router_result(r, "a", ROUTER_FAIL, 10);
	assert_false(router_hop_available(r, "a", 10));
	n = router_plan(r, &route, lookup, NULL, 1, 500, &seed, out, 8);
	assert_int_equal(n, 2); /* b, c */
	/* Cool-down over: one probe, not two. */
	n = router_plan(r, &route, lookup, NULL, 1, 1010, &seed, out, 8);
	assert_int_equal(n, 3);
	n = router_plan(r, &route, lookup, NULL, 1, 1020, &seed, out, 8);
	assert_int_equal(n, 2);
	/* The probe failed: open again.  Then a good probe closes it. */
	router_result(r, "a", ROUTER_FAIL, 1030);
	assert_false(router_hop_available(r, "a", 1500));
	assert_true(router_hop_available(r, "a", 2031));
	router_result(r, "a", ROUTER_OK, 2031);
	assert_true(router_hop_available(r, "a", 2032));
	router_free(r);
}

static void
test_throttled_goes_last(void **state)
{
	struct router_params p = {3, 1000, 500, 4000};
	struct router *r = router_new(&p);
	const Sluice__Hop *out[8];
	uint32_t seed = 3;
	size_t n;
	int i;

	(void)state;
	router_result(r, "a", ROUTER_THROTTLED, 0);
	for (i = 0; i < 20; i++) {
		n = router_plan(r, &route, lookup, NULL, 1, 100, &seed, out, 8);
		assert_int_equal(n, 3);
		assert_string_equal(out[0]->name, "b");
		assert_string_equal(out[2]->name, "a");
	}
	/* Throttling is no failure: the circuit stays closed. */
	router_result(r, "a", ROUTER_THROTTLED, 100);
	router_result(r, "a", ROUTER_THROTTLED, 200);
	assert_true(router_hop_available(r, "a", 300));
	n = router_plan(r, &route, lookup, NULL, 1, 100000, &seed, out, 8);
	assert_int_equal(n, 3);
	router_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_groups_in_order, setup),
	    cmocka_unit_test_setup(test_weights_3_to_1, setup),
	    cmocka_unit_test_setup(test_max_size_skips, setup),
	    cmocka_unit_test_setup(test_circuit_opens_and_probes, setup),
	    cmocka_unit_test_setup(test_throttled_goes_last, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
