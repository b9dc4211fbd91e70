/* test_route_match.c - lib/route_match.c as tables: which route a
 * message takes (recipient domain, sender, AUTH user, listener, client
 * network; the user's default route), which policies tie, and the
 * sentence that names both routes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route_match.h"

#define MAXR 10

/* A route as "pattern from user listener client", "-" for none. */
struct rdef {
	const char *pattern, *sender, *user, *listener, *client;
};

struct pol {
	Sluice__Policy p;
	Sluice__Route r[MAXR], *rp[MAXR];
	Sluice__User u, *up[1];
	Sluice__Route dflt;
	Sluice__HopGroup g, *gp[1];
};

static char *
opt(const char *s)
{
	return (char *)(uintptr_t)(s == NULL || strcmp(s, "-") == 0 ? "" : s);
}

static void
pol_init(struct pol *p, const struct rdef *defs, size_t n)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	sluice__policy__init(&p->p);
	p->p.routes = p->rp;
	for (i = 0; i < n && defs[i].pattern != NULL; i++) {
		sluice__route__init(&p->r[i]);
		p->r[i].pattern = (char *)(uintptr_t)defs[i].pattern;
		p->r[i].sender = opt(defs[i].sender);
		p->r[i].user = opt(defs[i].user);
		p->r[i].listener = opt(defs[i].listener);
		p->r[i].client = opt(defs[i].client);
		p->rp[i] = &p->r[i];
		p->p.n_routes++;
	}
	/* user "dflt" has a default route */
	sluice__user__init(&p->u);
	p->u.name = (char *)(uintptr_t) "dflt";
	sluice__route__init(&p->dflt);
	p->dflt.pattern = (char *)(uintptr_t) "*";
	sluice__hop_group__init(&p->g);
	p->gp[0] = &p->g;
	p->dflt.groups = p->gp;
	p->dflt.n_groups = 1;
	p->u.default_route = &p->dflt;
	p->up[0] = &p->u;
	p->p.users = p->up;
	p->p.n_users = 1;
}

static const struct rdef policy1[] = {
    {"*", "-", "-", "-", "-"},                               /* 0 */
    {"example.org", "-", "-", "-", "-"},                     /* 1 */
    {"*.example.org", "-", "-", "-", "-"},                   /* 2 */
    {"*", "*@billing.example.com", "-", "-", "-"},           /* 3 */
    {"*", "ceo@billing.example.com", "-", "-", "-"},         /* 4 */
    {"*", "*@*.example.com", "-", "-", "-"},                 /* 5 */
    {"*", "-", "scanner", "-", "-"},                         /* 6 */
    {"*", "-", "-", "-", "10.1.0.0/16"},                     /* 7 */
    {"example.org", "*@billing.example.com", "-", "-", "-"}, /* 8 */
    {"*", "-", "-", "submission", "-"},                      /* 9 */
};

static const struct {
	const char *domain, *sender, *user, *listener, *client;
	int want; /* index in policy1, -1 none, -2 the default route */
} select_cases[] = {
    /* recipient domain only: exact > longest suffix > "*" */
    {"example.org", "a@x.net", "", "", "", 1},
    {"EXAMPLE.ORG", "a@x.net", "", "", "", 1},
    {"a.example.org", "a@x.net", "", "", "", 2},
    {"example.net", "a@x.net", "", "", "", 0},
    /* the sender: a literal local part beats *@domain beats *@*.d */
    {"example.net", "bob@billing.example.com", "", "", "", 3},
    {"example.net", "BOB@Billing.Example.COM", "", "", "", 3},
    {"example.net", "ceo@billing.example.com", "", "", "", 4},
    {"example.net", "a@ops.example.com", "", "", "", 5},
    {"example.net", "a@example.com", "", "", "", 0}, /* apex: no */
    {"example.net", "", "", "", "", 0},              /* <> */
    /* two conditions beat one */
    {"example.org", "bob@billing.example.com", "", "", "", 8},
    /* user, listener, client */
    {"example.net", "a@x.net", "scanner", "", "", 6},
    {"example.net", "a@x.net", "Scanner", "", "", 0},
    {"example.net", "a@x.net", "", "submission", "", 9},
    {"example.net", "a@x.net", "", "relay", "", 0},
    {"example.net", "a@x.net", "", "", "[10.1.2.3]:4000", 7},
    {"example.net", "a@x.net", "", "", "10.1.255.255", 7},
    {"example.net", "a@x.net", "", "", "[10.2.0.1]:25", 0},
    {"example.net", "a@x.net", "", "", "local", 0},
    /* the user's default route: only where "*" is all that matches */
    {"example.net", "a@x.net", "dflt", "", "", -2},
    {"example.org", "a@x.net", "dflt", "", "", 1},
    {"example.net", "bob@billing.example.com", "dflt", "", "", 3},
};

static void
test_select(void **state)
{
	struct pol p;
	struct route_ctx c;
	const Sluice__Route *r;
	size_t i;
	char d[300];

	(void)state;
	pol_init(&p, policy1, sizeof(policy1) / sizeof(*policy1));
	for (i = 0; i < sizeof(select_cases) / sizeof(*select_cases); i++) {
		memset(&c, 0, sizeof(c));
		c.domain = select_cases[i].domain;
		c.sender = select_cases[i].sender;
		c.user = select_cases[i].user;
		c.listener = select_cases[i].listener;
		route_ctx_client(&c, select_cases[i].client);
		r = route_select(&p.p, &c);
		if (r != NULL)
			route_describe(r, d, sizeof(d));
		else
			snprintf(d, sizeof(d), "(none)");
		print_message("case %zu: %s %s -> %s\n", i,
		    select_cases[i].domain, select_cases[i].sender, d);
		if (select_cases[i].want == -2)
			assert_ptr_equal(r, &p.dflt);
		else if (select_cases[i].want == -1)
			assert_null(r);
		else
			assert_ptr_equal(r, &p.r[select_cases[i].want]);
	}
	/* no catch-all: the default route still applies, else none */
	p.rp[0] = p.rp[--p.p.n_routes];
	memset(&c, 0, sizeof(c));
	c.domain = "example.net";
	c.sender = "a@x.net";
	assert_null(route_select(&p.p, &c));
	c.user = "dflt";
	assert_ptr_equal(route_select(&p.p, &c), &p.dflt);
	assert_true(route_is_default(&p.p, &p.dflt));
	assert_false(route_is_default(&p.p, p.rp[0]));
}

/* Policies and their tie verdict: NULL for none, else a piece of the
 * message. */
static const struct {
	struct rdef r[4];
	const char *tie;
} tie_cases[] = {
    /* the pre-issue-15 routes never tie */
    {{{"*", "-", "-", "-", "-"}, {"example.org", "-", "-", "-", "-"},
         {"*.example.org", "-", "-", "-", "-"}, {NULL, NULL, NULL, NULL, NULL}},
        NULL},
    /* one condition each, on different things, overlapping: a tie */
    {{{"*", "*@billing.example.com", "-", "-", "-"},
         {"*", "-", "scanner", "-", "-"}, {NULL, NULL, NULL, NULL, NULL}},
        "routes '* from=*@billing.example.com' and '* user=scanner' tie: "
        "mail matching '* from=*@billing.example.com user=scanner'"},
    /* ... resolved by a route for exactly the overlap */
    {{{"*", "*@billing.example.com", "-", "-", "-"},
         {"*", "-", "scanner", "-", "-"},
         {"*", "*@billing.example.com", "scanner", "-", "-"},
         {NULL, NULL, NULL, NULL, NULL}},
        NULL},
    /* ... or by a wider one with both conditions */
    {{{"*", "*@billing.example.com", "-", "-", "-"},
         {"*", "-", "scanner", "-", "-"},
         {"*", "*@*.example.com", "scanner", "-", "-"},
         {NULL, NULL, NULL, NULL, NULL}},
        NULL},
    /* a covering route that misses part of the overlap does not */
    {{{"*", "*@*.example.com", "-", "-", "-"}, {"*", "-", "scanner", "-", "-"},
         {"*", "*@billing.example.com", "scanner", "-", "-"},
         {NULL, NULL, NULL, NULL, NULL}},
        "tie: mail matching '* from=*@*.example.com user=scanner'"},
    /* recipient domain against sender */
    {{{"example.org", "-", "-", "-", "-"},
         {"*", "*@billing.example.com", "-", "-", "-"},
         {NULL, NULL, NULL, NULL, NULL}},
        "'example.org from=*@billing.example.com'"},
    /* disjoint: no tie */
    {{{"*", "*@billing.example.com", "-", "-", "-"},
         {"*", "*@ops.example.com", "-", "-", "-"},
         {"*", "-", "-", "-", "10.0.0.0/8"}, {NULL, NULL, NULL, NULL, NULL}},
        "'* from=*@billing.example.com' and '* client=10.0.0.0/8' tie"},
    {{{"*", "-", "-", "-", "10.0.0.0/8"}, {"*", "-", "-", "-", "10.1.0.0/16"},
         {"*", "-", "-", "-", "192.168.0.0/16"},
         {NULL, NULL, NULL, NULL, NULL}},
        NULL},
    /* same conditions, different recipient domains: dominance */
    {{{"example.org", "*@billing.example.com", "-", "-", "-"},
         {"*.org", "a@billing.example.com", "-", "-", "-"},
         {NULL, NULL, NULL, NULL, NULL}},
        "'example.org from=a@billing.example.com'"},
    /* the same conditions twice */
    {{{"*", "-", "app1", "-", "-"}, {"*", "-", "app1", "-", "-"},
         {NULL, NULL, NULL, NULL, NULL}},
        "route '* user=app1' is listed twice"},
    {{{"*", "-", "app1", "-", "-"}, {"*", "-", "app2", "-", "-"},
         {"*", "-", "-", "relay", "-"}, {NULL, NULL, NULL, NULL, NULL}},
        "'* user=app1' and '* listener=relay' tie"},
};

static void
test_ties(void **state)
{
	struct pol p;
	char msg[512];
	size_t i, a, b;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(tie_cases) / sizeof(*tie_cases); i++) {
		pol_init(&p, tie_cases[i].r, 4);
		msg[0] = '\0';
		rc = route_check_ties(&p.p, &a, &b, msg, sizeof(msg));
		print_message("case %zu: %s\n", i, rc == 0 ? "ok" : msg);
		if (tie_cases[i].tie == NULL) {
			assert_int_equal(rc, 0);
			continue;
		}
		assert_int_equal(rc, -1);
		assert_true(a < b);
		assert_non_null(strstr(msg, tie_cases[i].tie));
	}
}

static void
test_cmp(void **state)
{
	struct pol p;
	static const struct rdef r[] = {
	    {"*", "-", "-", "-", "-"},
	    {"example.org", "-", "-", "-", "-"},
	    {"*", "-", "u", "-", "-"},
	    {"example.org", "-", "u", "-", "-"},
	    {"*.org", "-", "u", "-", "-"},
	};

	(void)state;
	pol_init(&p, r, 5);
	assert_int_equal(route_cmp(&p.r[1], &p.r[0]), 1);
	assert_int_equal(route_cmp(&p.r[0], &p.r[1]), -1);
	assert_int_equal(route_cmp(&p.r[1], &p.r[2]), ROUTE_CMP_INCOMPARABLE);
	assert_int_equal(route_cmp(&p.r[3], &p.r[1]), 1);
	assert_int_equal(route_cmp(&p.r[3], &p.r[4]), 1);
	assert_int_equal(route_cmp(&p.r[2], &p.r[2]), 0);
	assert_int_equal(route_nconds(&p.r[0]), 0);
	assert_int_equal(route_nconds(&p.r[3]), 2);
	assert_true(route_sender_syntax("*@example.com"));
	assert_true(route_sender_syntax("*@*.example.com"));
	assert_true(route_sender_syntax("a@example.com"));
	assert_false(route_sender_syntax("a*@example.com"));
	assert_false(route_sender_syntax("*@*"));
	assert_false(route_sender_syntax("example.com"));
	assert_false(route_sender_syntax("@example.com"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_select),
	    cmocka_unit_test(test_ties),
	    cmocka_unit_test(test_cmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
