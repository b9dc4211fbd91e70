/* test_handoff.c - drain --handoff's policy rewrite (node/control/
 * handoff.c): peer address forms, and the snapshot it returns: one "*"
 * route to handoff-N hops for the valid peers (over the shadow channel
 * for a peer that has one, else SMTP), no user default routes, the rest
 * of the policy untouched, NULL when no peer is usable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "handoff.h"
#include "policy_fixture.h"

static void
test_peer_split(void **state)
{
	static const struct {
		const char *in;
		int rv;
		const char *host;
		uint32_t port;
	} t[] = {
	    {"10.0.0.2:25", 0, "10.0.0.2", 25},
	    {"mx.example:2525", 0, "mx.example", 2525},
	    {"[::1]:2525", 0, "::1", 2525},
	    {"[2001:db8::5]:25", 0, "2001:db8::5", 25},
	    {"host:65535", 0, "host", 65535},
	    {"host", -1, NULL, 0},
	    {"host:0", -1, NULL, 0},
	    {"host:65536", -1, NULL, 0},
	    {"host:-5", -1, NULL, 0},
	    {":25", -1, NULL, 0},
	    {"[]:25", -1, NULL, 0},
	    {"", -1, NULL, 0},
	};
	char host[16];
	uint32_t port;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		port = 0;
		assert_int_equal(
		    handoff_peer_split(t[i].in, host, sizeof(host), &port),
		    t[i].rv);
		if (t[i].rv == 0) {
			assert_string_equal(host, t[i].host);
			assert_int_equal(port, t[i].port);
		}
	}
	/* a host longer than the buffer */
	assert_int_equal(handoff_peer_split("a-very-long-host-name.example:25",
	                     host, sizeof(host), &port),
	    -1);
}

static void
test_snapshot(void **state)
{
	static const char *const g1[] = {"primary"};
	static const char *const g2[] = {"backup"};
	static const struct handoff_peer peers[] = {
	    {"10.0.0.2:2525", "n2", ""},
	    {"not-a-peer", "nx", "10.0.0.9:2600"},
	    {"[::1]:25", "n3", "[::1]:2600"},
	};
	struct fixture f;
	Sluice__Policy *s;
	Sluice__User *u;
	size_t i;

	(void)state;
	fix_init(&f);
	f.p.version = 7;
	f.p.content_hash = (char *)(uintptr_t) "abc";
	fix_hop(&f, "primary", "mx1.example", 25);
	fix_hop(&f, "backup", "mx2.example", 25);
	fix_route(&f, "example.com", g1, 1, g2, 1);
	fix_route(&f, "*", g2, 1, NULL, 0);
	/* a user default route: it would win over "*" */
	u = fix_user(&f, "scanner", "x", NULL);
	fix_route(&f, "*", g1, 1, NULL, 0);
	u->default_route = f.routep[--f.p.n_routes];
	fix_net(&f, "10.0.0.0/8", 0);
	s = handoff_snapshot(&f.p, peers, 3);
	assert_non_null(s);
	/* everything but the routes as it was */
	assert_int_equal(s->version, 7);
	assert_string_equal(s->content_hash, "abc");
	assert_int_equal(s->n_networks, 1);
	assert_string_equal(s->networks[0]->cidr, "10.0.0.0/8");
	/* the original hops kept, the peers' appended */
	assert_int_equal(s->n_hops, 4);
	assert_string_equal(s->hops[0]->name, "primary");
	assert_string_equal(s->hops[1]->name, "backup");
	assert_string_equal(s->hops[2]->name, "handoff-1");
	assert_string_equal(s->hops[2]->host, "10.0.0.2");
	assert_int_equal(s->hops[2]->port, 2525);
	assert_int_equal(s->hops[2]->tls, SLUICE__TLS_MODE__TLS_NONE);
	assert_string_equal(s->hops[2]->shadow_peer, ""); /* SMTP */
	assert_string_equal(s->hops[3]->name, "handoff-2");
	assert_string_equal(s->hops[3]->host, "::1");
	assert_int_equal(s->hops[3]->port, 25);
	assert_string_equal(s->hops[3]->shadow_peer, "[::1]:2600");
	assert_string_equal(s->hops[3]->peer_node, "n3");
	/* the user's default route is gone: "*" takes its mail too */
	assert_int_equal(s->n_users, 1);
	assert_null(s->users[0]->default_route);
	assert_non_null(u->default_route);
	/* one route, every domain, one group over the peers */
	assert_int_equal(s->n_routes, 1);
	assert_string_equal(s->routes[0]->pattern, "*");
	assert_int_equal(s->routes[0]->n_groups, 1);
	assert_int_equal(s->routes[0]->groups[0]->n_hops, 2);
	for (i = 0; i < 2; i++)
		assert_string_equal(
		    s->routes[0]->groups[0]->hops[i], s->hops[2 + i]->name);
	sluice__policy__free_unpacked(s, NULL);
	/* the input is not touched */
	assert_int_equal(f.p.n_routes, 2);
	assert_int_equal(f.p.n_hops, 2);
}

static void
test_no_usable_peer(void **state)
{
	static const struct handoff_peer bad[] = {
	    {"nope", "n2", ""}, {"host:0", "n3", "127.0.0.1:2600"}};
	struct fixture f;

	(void)state;
	fix_init(&f);
	fix_hop(&f, "primary", "mx1.example", 25);
	assert_null(handoff_snapshot(&f.p, bad, 2));
	assert_null(handoff_snapshot(&f.p, NULL, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_peer_split),
	    cmocka_unit_test(test_snapshot),
	    cmocka_unit_test(test_no_usable_peer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
