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
	assert_int_equal(router_result(r, "a", ROUTER_FAIL, 0), ROUTER_SAME);
	router_result(r, "a", ROUTER_FAIL, 0);
	assert_true(router_hop_available(r, "a", 10));
	assert_int_equal(router_take(r, "a", 10), ROUTER_GO);
	assert_int_equal(router_result(r, "a", ROUTER_FAIL, 10), ROUTER_OPENED);
	assert_false(router_hop_available(r, "a", 10));
	assert_int_equal(router_take(r, "a", 10), ROUTER_SKIP);
	n = router_plan(r, &route, lookup, NULL, 1, 500, &seed, out, 8);
	assert_int_equal(n, 2); /* b, c */
	/* A late failure of a session that started before the circuit
	 * opened neither extends the cool-down nor logs a change. */
	assert_int_equal(router_result(r, "a", ROUTER_FAIL, 600), ROUTER_SAME);
	/* Cool-down over: every plan includes the hop (making a plan takes
	 * nothing), and the first job to reach it is the one probe. */
	n = router_plan(r, &route, lookup, NULL, 1, 1010, &seed, out, 8);
	assert_int_equal(n, 3);
	n = router_plan(r, &route, lookup, NULL, 1, 1020, &seed, out, 8);
	assert_int_equal(n, 3);
	assert_int_equal(router_state(r, "a", 1020), ROUTER_PROBE);
	assert_int_equal(router_take(r, "a", 1020), ROUTER_PROBE);
	assert_int_equal(router_take(r, "a", 1021), ROUTER_WAIT);
	assert_int_equal(router_state(r, "a", 1021), ROUTER_WAIT);
	/* The probe failed: open again.  Then a good probe closes it. */
	assert_int_equal(
	    router_result(r, "a", ROUTER_FAIL, 1030), ROUTER_OPENED);
	assert_false(router_hop_available(r, "a", 1500));
	assert_true(router_hop_available(r, "a", 2031));
	assert_int_equal(router_take(r, "a", 2031), ROUTER_PROBE);
	assert_int_equal(router_result(r, "a", ROUTER_OK, 2040), ROUTER_CLOSED);
	assert_int_equal(router_take(r, "a", 2041), ROUTER_GO);
	assert_int_equal(router_take(r, "a", 2042), ROUTER_GO);
	router_free(r);
}

/* The issue 10 failback: a primary whose circuit opened is back in
 * rotation within one cool-down of its return, and a probe that never
 * reports is replaced after a cool-down. */
static void
test_failback_and_stale_probe(void **state)
{
	struct router_params p = {1, 1000, 500, 4000};
	struct router *r = router_new(&p);
	const Sluice__Hop *out[8];
	uint32_t seed = 5;
	size_t n;

	(void)state;
	assert_int_equal(router_result(r, "a", ROUTER_FAIL, 0), ROUTER_OPENED);
	n = router_plan(r, &route, lookup, NULL, 1, 999, &seed, out, 8);
	assert_int_equal(n, 2);
	n = router_plan(r, &route, lookup, NULL, 1, 1000, &seed, out, 8);
	assert_int_equal(n, 3);
	assert_int_equal(router_take(r, "a", 1000), ROUTER_PROBE);
	/* Nothing reported for a whole cool-down: the next job probes. */
	assert_int_equal(router_take(r, "a", 1999), ROUTER_WAIT);
	assert_int_equal(router_take(r, "a", 2000), ROUTER_PROBE);
	/* A throttling answer is an answer: the hop is up, behind others. */
	assert_int_equal(
	    router_result(r, "a", ROUTER_THROTTLED, 2010), ROUTER_CLOSED);
	assert_int_equal(router_take(r, "a", 2011), ROUTER_GO);
	assert_string_equal(router_last(r, "a"), "");
	router_set_last(r, "a", "421 4.4.2 closing");
	assert_string_equal(router_last(r, "a"), "421 4.4.2 closing");
	assert_string_equal(router_last(r, "nosuch"), "");
	router_free(r);
}

static void
count_cb(const struct router_hop_state *s, void *arg)
{
	*(struct router_hop_state *)arg = *s;
}

/* Only what the hop accepted is credited; a 5xx-to-everything answer
 * keeps the circuit closed without a delivery. */
static void
test_credit_only_accepted(void **state)
{
	struct router_params p = {2, 1000, 500, 4000};
	struct router *r = router_new(&p);
	struct router_hop_state s;

	(void)state;
	router_result(r, "a", ROUTER_OK, 0);
	router_result(r, "a", ROUTER_ANSWERED, 1);
	router_result(r, "a", ROUTER_FAIL, 2);
	router_result(r, "a", ROUTER_ANSWERED, 3); /* resets the count */
	assert_int_equal(router_result(r, "a", ROUTER_FAIL, 4), ROUTER_SAME);
	router_foreach(r, 5, count_cb, &s);
	assert_string_equal(s.name, "a");
	assert_int_equal(s.delivered, 1);
	assert_int_equal(s.failed, 2);
	assert_int_equal(s.recent_failures, 1);
	assert_false(s.circuit_open);
	assert_int_equal(router_result(r, "a", ROUTER_FAIL, 6), ROUTER_OPENED);
	router_foreach(r, 7, count_cb, &s);
	assert_true(s.circuit_open);
	assert_false(s.half_open);
	router_foreach(r, 1006, count_cb, &s);
	assert_false(s.circuit_open);
	assert_true(s.half_open);
	router_free(r);
}

/* A provider's window (a daily quota) holds the hop back for that long,
 * not for the short doubling back-off. */
static void
test_throttle_window(void **state)
{
	struct router_params p = {3, 1000, 500, 4000};
	struct router *r = router_new(&p);
	const Sluice__Hop *out[8];
	struct router_hop_state s;
	uint32_t seed = 11;
	size_t n;

	(void)state;
	router_result(r, "a", ROUTER_THROTTLED, 0);
	router_throttle_for(r, "a", 3600000, 0);
	router_foreach(r, 10, count_cb, &s);
	assert_true(s.throttled);
	assert_int_equal(s.throttle_window_ms, 3600000);
	n = router_plan(r, &route, lookup, NULL, 1, 3599999, &seed, out, 8);
	assert_int_equal(n, 3);
	assert_string_equal(out[2]->name, "a");
	router_foreach(r, 3600000, count_cb, &s);
	assert_false(s.throttled);
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

/* A fleet-wide pause (issue 10) holds the hop back like a throttle of
 * its own, is reported apart from the node's own pause, and a reset (the
 * controller's list without it) lifts it. */
static void
test_fleet_pause(void **state)
{
	struct router_params p = {3, 1000, 500, 4000};
	struct router *r = router_new(&p);
	const Sluice__Hop *out[8];
	struct router_hop_state s;
	uint32_t seed = 5;
	size_t n;

	(void)state;
	router_fleet_pause(r, "a", 0, 0, "n1", 0); /* nothing left: ignored */
	assert_false(router_fleet_paused(r, "a", 0));
	router_fleet_pause(r, "a", 8000, 60000, "n1", 1000);
	assert_true(router_fleet_paused(r, "a", 8999));
	n = router_plan(r, &route, lookup, NULL, 1, 8999, &seed, out, 8);
	assert_int_equal(n, 3);
	assert_string_equal(out[2]->name, "a");
	router_foreach(r, 2000, count_cb, &s);
	assert_true(s.throttled && s.fleet_paused && !s.own_throttled);
	assert_string_equal(s.fleet_by, "n1");
	assert_int_equal(s.throttled_until_ms, 9000);
	assert_int_equal(s.throttle_window_ms, 60000);
	/* its own, shorter pause on top: the later one counts */
	router_result(r, "a", ROUTER_THROTTLED, 2000);
	router_foreach(r, 2000, count_cb, &s);
	assert_true(s.own_throttled && s.fleet_paused);
	assert_int_equal(s.own_throttled_until_ms, 2500);
	assert_int_equal(s.throttled_until_ms, 9000);
	/* over by time */
	router_foreach(r, 9000, count_cb, &s);
	assert_false(s.throttled);
	n = router_plan(r, &route, lookup, NULL, 1, 9000, &seed, out, 8);
	assert_true(out[0]->name[0] == 'a' || out[1]->name[0] == 'a');
	/* lifted by the controller */
	router_fleet_pause(r, "b", 8000, 0, "n2", 10000);
	router_fleet_reset(r);
	assert_false(router_fleet_paused(r, "b", 10001));
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
	    cmocka_unit_test_setup(test_failback_and_stale_probe, setup),
	    cmocka_unit_test_setup(test_credit_only_accepted, setup),
	    cmocka_unit_test_setup(test_throttle_window, setup),
	    cmocka_unit_test_setup(test_fleet_pause, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
