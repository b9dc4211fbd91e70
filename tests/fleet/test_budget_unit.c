/* test_budget_unit.c - cmocka table tests of controller/budget.c: a hop's
 * fleet-wide max_conn and rate divided among live nodes by demand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "budget.h"

#define S(x) ((char *)(uintptr_t)(x))

struct fixture {
	Sluice__Hop a, b, c;
	Sluice__Hop *hops[3];
	Sluice__Policy p;
};

static void
fixture_init(struct fixture *f)
{
	sluice__hop__init(&f->a);
	sluice__hop__init(&f->b);
	sluice__hop__init(&f->c);
	f->a.name = S("ses");
	f->a.rate_per_minute = 600;
	f->a.max_conn = 10;
	f->b.name = S("plain"); /* not budgeted */
	f->c.name = S("small");
	f->c.max_conn = 1;
	f->hops[0] = &f->a;
	f->hops[1] = &f->b;
	f->hops[2] = &f->c;
	sluice__policy__init(&f->p);
	f->p.hops = f->hops;
	f->p.n_hops = 3;
}

static void
test_equal(void **state)
{
	struct fixture f;
	struct budget_node nodes[3] = {{1, 0}, {2, 0}, {3, 0}};
	struct budget_share s[8];

	(void)state;
	fixture_init(&f);
	assert_true(budget_any(&f.p));
	assert_int_equal(budget_shares(&f.p, nodes, 3, 2, s, 8), 2);
	assert_string_equal(s[0].hop, "ses");
	assert_int_equal(s[0].rate, 200);
	assert_int_equal(s[0].max_conn, 3); /* 10/3 rounded down */
	assert_string_equal(s[1].hop, "small");
	assert_int_equal(s[1].max_conn, 1); /* the floor */
	assert_int_equal(s[1].rate, 0);     /* not budgeted */
}

static void
test_demand(void **state)
{
	struct fixture f;
	struct budget_node nodes[2] = {{1, 299}, {2, 99}};
	struct budget_share s[8];
	uint32_t sum;

	(void)state;
	fixture_init(&f);
	budget_shares(&f.p, nodes, 2, 1, s, 8);
	assert_int_equal(s[0].rate, 450); /* 600 x 300 / 400 */
	sum = s[0].rate;
	budget_shares(&f.p, nodes, 2, 2, s, 8);
	assert_int_equal(s[0].rate, 150);
	assert_true(sum + s[0].rate <= 600);
}

static void
test_alone_and_absent(void **state)
{
	struct fixture f;
	struct budget_node nodes[1] = {{7, 5}};
	struct budget_share s[8];

	(void)state;
	fixture_init(&f);
	budget_shares(&f.p, nodes, 1, 7, s, 8);
	assert_int_equal(s[0].rate, 600); /* the whole budget */
	/* a node not (yet) among the live ones counts itself in */
	budget_shares(&f.p, nodes, 1, 8, s, 8);
	assert_int_equal(s[0].rate, 85); /* 600 x 1 / 7 */
	f.a.rate_per_minute = 0;
	f.a.max_conn = 0;
	f.c.max_conn = 0;
	assert_false(budget_any(&f.p));
	assert_int_equal(budget_shares(&f.p, nodes, 1, 7, s, 8), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_demand),
	    cmocka_unit_test(test_alone_and_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
