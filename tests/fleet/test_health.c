/* test_health.c - cmocka table tests of controller/health.c: which alert
 * conditions hold for a given fleet, policy and thresholds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "health.h"

/* proto strings are char *; the literals here are never written */
#define S(x) ((char *)(uintptr_t)(x))

struct seen {
	char v[16][200];
	size_t n;
};

static void
collect(void *arg, const struct health_alert *a)
{
	struct seen *s = arg;

	if (s->n < 16)
		snprintf(s->v[s->n++], sizeof(s->v[0]), "%s %s", a->kind,
		    a->subject);
}

static bool
has(const struct seen *s, const char *what)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i], what) == 0)
			return true;
	return false;
}

static void
test_quiet_fleet(void **state)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	struct health_node nodes[2] = {
	    {"a", false, 100, &m, 0, 0, 0},
	    {"fresh", true, -1, NULL, 0, 0, 0}, /* never heard from: no alert */
	};
	struct health_input in = {nodes, 2, NULL, 600, 60000};
	struct seen s = {0};

	(void)state;
	assert_int_equal(health_evaluate(&in, collect, &s), 0);
}

static void
test_silent_only(void **state)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	struct health_node nodes[1] = {{"a", false, 601, &m, 1000, 0, 0}};
	struct health_input in = {nodes, 1, NULL, 600, 60000};
	struct seen s = {0};

	(void)state;
	m.messages = 1000000; /* stale numbers of a silent node are ignored */
	assert_int_equal(health_evaluate(&in, collect, &s), 1);
	assert_true(has(&s, "node_silent a"));
}

/* A controller that has just started (or whose store just came back) has
 * not watched for a silent period: old heartbeats prove nothing yet. */
static void
test_silent_grace(void **state)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	struct health_node nodes[2] = {
	    {"old", false, 5000, &m, 0, 0, 0},
	    {"live", false, 100, &m, 0, 0, 0},
	};
	struct health_input in = {nodes, 2, NULL, 600, 0};
	struct seen s = {0};

	(void)state;
	assert_int_equal(health_evaluate(&in, collect, &s), 0);
	in.watched_ms = 600; /* not more than one period yet */
	assert_int_equal(health_evaluate(&in, collect, &s), 0);
	in.watched_ms = 601; /* a whole period: a silent node is said so */
	assert_int_equal(health_evaluate(&in, collect, &s), 1);
	assert_true(has(&s, "node_silent old"));
}

/* silent_after 0: three of the node's own heartbeat intervals. */
static void
test_silent_per_node(void **state)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	struct health_node nodes[4] = {
	    {"slow", false, 25000, &m, 0, 10000, 0}, /* 3 x 10 s: fine */
	    {"fast", false, 2500, &m, 0, 800, 0},    /* 3 x 800 ms: silent */
	    {"unknown", false, 5900, &m, 0, 0, 0},   /* 3 x 2 s default */
	    {"floor", false, 1900, &m, 0, 100, 0},   /* 2 s at least */
	};
	struct health_input in = {nodes, 4, NULL, 0, 60000};
	struct seen s = {0};

	(void)state;
	assert_int_equal(health_evaluate(&in, collect, &s), 1);
	assert_true(has(&s, "node_silent fast"));
	assert_int_equal(health_silent_after(0, 0), 6000);
	assert_int_equal(health_silent_after(0, 1000), 3000);
	assert_int_equal(health_silent_after(0, 200), 2000);
	assert_int_equal(health_silent_after(900, 500), 900);
}

static void
test_quarantine(void **state)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	struct health_node nodes[1] = {{"a", false, 10, &m, 0, 0, 3}};
	struct health_input in = {nodes, 1, NULL, 600, 0};
	struct seen s = {0};

	(void)state;
	assert_int_equal(health_evaluate(&in, collect, &s), 1);
	assert_true(has(&s, "events_quarantined a"));
}

static void
test_thresholds(void **state)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	Sluice__Limit l1 = SLUICE__LIMIT__INIT, l2 = SLUICE__LIMIT__INIT;
	Sluice__Limit *limits[2] = {&l1, &l2};
	Sluice__Policy p = SLUICE__POLICY__INIT;
	struct health_node nodes[1] = {{"a", false, 10, &m, 51, 0, 0}};
	struct health_input in = {nodes, 1, &p, 600, 60000};
	struct seen s = {0};

	(void)state;
	l1.key = S("alert_queue_backlog_messages");
	l1.value = 10;
	l2.key = S("alert_oldest_message_seconds");
	l2.value = 0; /* never */
	p.limits = limits;
	p.n_limits = 2;
	m.messages = 11;
	m.oldest_age_s = 999999;
	health_evaluate(&in, collect, &s);
	assert_true(has(&s, "queue_backlog a"));
	assert_false(has(&s, "oldest_message a"));
	assert_true(has(&s, "auth_failures a")); /* default 50 a minute */
	m.messages = 10;
	nodes[0].auth_failures_per_min = 50;
	s.n = 0;
	assert_int_equal(health_evaluate(&in, collect, &s), 0);
}

static void
test_hops_and_routes(void **state)
{
	Sluice__HopMetrics h1 = SLUICE__HOP_METRICS__INIT,
	                   h2 = SLUICE__HOP_METRICS__INIT;
	Sluice__HopMetrics *hops[2] = {&h1, &h2};
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	char *g1h[1] = {S("p")}, *g2h[2] = {S("s1"), S("s2")};
	Sluice__HopGroup g1 = SLUICE__HOP_GROUP__INIT,
	                 g2 = SLUICE__HOP_GROUP__INIT;
	Sluice__HopGroup *groups1[1] = {&g1}, *groups2[2] = {&g1, &g2};
	Sluice__Route r1 = SLUICE__ROUTE__INIT, r2 = SLUICE__ROUTE__INIT;
	Sluice__Route *routes[2] = {&r1, &r2};
	Sluice__Policy p = SLUICE__POLICY__INIT;
	struct health_node nodes[1] = {{"a", false, 10, &m, 0, 0, 0}};
	struct health_input in = {nodes, 1, &p, 600, 60000};
	struct seen s = {0};

	(void)state;
	h1.name = S("p");
	h1.circuit_open = true;
	h2.name = S("s1");
	h2.circuit_open = true;
	m.hops = hops;
	m.n_hops = 2;
	g1.hops = g1h;
	g1.n_hops = 1;
	g2.hops = g2h;
	g2.n_hops = 2;
	r1.pattern = S("*");
	r1.groups = groups1;
	r1.n_groups = 1;
	r2.pattern = S("example.com");
	r2.groups = groups2;
	r2.n_groups = 2;
	p.routes = routes;
	p.n_routes = 2;
	health_evaluate(&in, collect, &s);
	assert_true(has(&s, "hop_circuit_open a/p"));
	assert_true(has(&s, "hop_circuit_open a/s1"));
	assert_true(has(&s, "route_down a/*"));
	/* s2 is not reported: not known to be down, the route is not */
	assert_false(has(&s, "route_down a/example.com"));
	assert_int_equal(s.n, 3);
}

/* Issue 10: a hop whose replies say our credentials/config or our
 * provider account are wrong is an alert of its own, per node and hop;
 * a throttled hop is not. */
static void
test_hop_scope_alerts(void **state)
{
	Sluice__HopMetrics h1 = SLUICE__HOP_METRICS__INIT,
	                   h2 = SLUICE__HOP_METRICS__INIT,
	                   h3 = SLUICE__HOP_METRICS__INIT;
	Sluice__HopMetrics *hops[3] = {&h1, &h2, &h3};
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	struct health_node nodes[1] = {{"a", false, 10, &m, 0, 0, 0}};
	struct health_input in = {nodes, 1, NULL, 600, 60000};
	struct seen s = {0};

	(void)state;
	h1.name = S("sendgrid");
	h1.alert_scope = S("hop-config");
	h1.alert_reply = S("550 Unauthenticated senders not allowed");
	h2.name = S("ses");
	h2.alert_scope = S("account");
	h2.alert_reply = S("554 Message rejected: Sending paused for this "
	                   "account.");
	h3.name = S("m365");
	h3.throttled = true;
	h3.throttled_for_s = 3600;
	m.hops = hops;
	m.n_hops = 3;
	health_evaluate(&in, collect, &s);
	assert_true(has(&s, "hop_config a/sendgrid"));
	assert_true(has(&s, "hop_account a/ses"));
	assert_int_equal(s.n, 2);
}

/* Bursts by IP and by user are summed over fresh nodes; a silent node's
 * stale counts do not add. */
static void
test_auth_bursts(void **state)
{
	Sluice__QueueMetrics m1 = SLUICE__QUEUE_METRICS__INIT,
	                     m2 = SLUICE__QUEUE_METRICS__INIT,
	                     m3 = SLUICE__QUEUE_METRICS__INIT;
	Sluice__AuthFailures a1 = SLUICE__AUTH_FAILURES__INIT,
	                     a2 = SLUICE__AUTH_FAILURES__INIT,
	                     b1 = SLUICE__AUTH_FAILURES__INIT,
	                     c1 = SLUICE__AUTH_FAILURES__INIT;
	Sluice__AuthFailures *l1[2] = {&a1, &a2}, *l2[1] = {&b1},
	                     *l3[1] = {&c1};
	struct health_node nodes[3] = {
	    {"a", false, 10, &m1, 0, 0, 0}, {"b", false, 10, &m2, 0, 0, 0},
	    {"c", false, 99999, &m3, 0, 0,
	        0}, /* silent: its counts are stale */
	};
	struct health_input in = {nodes, 3, NULL, 600, 60000};
	struct seen s = {0};

	(void)state;
	a1.kind = S("ip");
	a1.subject = S("192.0.2.7");
	a1.failures = 30;
	a2.kind = S("user");
	a2.subject = S("app1");
	a2.failures = 20;
	b1.kind = S("ip");
	b1.subject = S("192.0.2.7");
	b1.failures = 21; /* 30 + 21 > 50: an attack spread over nodes */
	c1.kind = S("user");
	c1.subject = S("app1");
	c1.failures = 1000;
	m1.auth_failures_by = l1;
	m1.n_auth_failures_by = 2;
	m2.auth_failures_by = l2;
	m2.n_auth_failures_by = 1;
	m3.auth_failures_by = l3;
	m3.n_auth_failures_by = 1;
	health_evaluate(&in, collect, &s);
	assert_true(has(&s, "auth_burst_ip 192.0.2.7"));
	assert_false(has(&s, "auth_burst_user app1"));
	b1.failures = 20; /* 50: not above the default limit */
	s.n = 0;
	health_evaluate(&in, collect, &s);
	assert_false(has(&s, "auth_burst_ip 192.0.2.7"));
}

static void
test_states(void **state)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;

	(void)state;
	assert_string_equal(health_state(0, -1, 600, false, NULL), "new");
	assert_string_equal(health_state(1, 601, 600, true, &m), "silent");
	assert_string_equal(health_state(1, 10, 600, false, &m), "up");
	assert_string_equal(health_state(1, 10, 600, true, &m), "draining");
	m.draining = true;
	m.drained = true;
	assert_string_equal(health_state(1, 10, 600, true, &m), "drained");
	/* the flag is the controller's: a resumed node is not drained */
	assert_string_equal(health_state(1, 10, 600, false, &m), "up");
}

/* Issue 13: a node silent beyond redundancy_lost_after_seconds is lost
 * (alert.c then declares it so) - only when the controller watched that
 * long itself, and never with the setting at 0; a node accepting mail
 * without peer copies raises shadow_degraded. */
static void
test_shadow_lost_degraded(void **state)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	Sluice__Policy p = SLUICE__POLICY__INIT;
	Sluice__Limit l = SLUICE__LIMIT__INIT, *limits[1] = {&l};
	struct health_node nodes[3] = {
	    {"gone", false, 31000, &m, 0, 0, 0},
	    {"quiet", false, 5000, &m, 0, 0, 0},
	    {"bare", false, 100, &m, 0, 0, 0},
	};
	struct health_input in = {nodes, 3, &p, 2000, 60000};
	struct seen s = {0};

	(void)state;
	l.key = S("redundancy_lost_after_seconds");
	l.value = 30;
	p.limits = limits;
	p.n_limits = 1;
	m.shadow_degraded = S("no shadow peer");
	m.shadow_unprotected = 3;
	health_evaluate(&in, collect, &s);
	assert_true(has(&s, "node_lost gone"));
	assert_false(has(&s, "node_lost quiet")); /* silent, not lost yet */
	assert_true(has(&s, "node_silent quiet"));
	assert_true(has(&s, "shadow_degraded bare"));
	assert_false(has(&s, "shadow_degraded gone")); /* stale numbers */
	/* not watched for 30 s: no verdict */
	memset(&s, 0, sizeof(s));
	in.watched_ms = 20000;
	health_evaluate(&in, collect, &s);
	assert_false(has(&s, "node_lost gone"));
	/* the default (0): never lost by silence */
	memset(&s, 0, sizeof(s));
	in.watched_ms = 60000;
	p.n_limits = 0;
	health_evaluate(&in, collect, &s);
	assert_false(has(&s, "node_lost gone"));
	assert_true(has(&s, "node_silent gone"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quiet_fleet),
	    cmocka_unit_test(test_silent_only),
	    cmocka_unit_test(test_silent_grace),
	    cmocka_unit_test(test_silent_per_node),
	    cmocka_unit_test(test_quarantine),
	    cmocka_unit_test(test_thresholds),
	    cmocka_unit_test(test_hops_and_routes),
	    cmocka_unit_test(test_hop_scope_alerts),
	    cmocka_unit_test(test_states),
	    cmocka_unit_test(test_auth_bursts),
	    cmocka_unit_test(test_shadow_lost_degraded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
