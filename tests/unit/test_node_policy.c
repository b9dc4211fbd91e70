/* test_node_policy.c - the node's verdicts: trusted networks (longest
 * prefix, deny on a tie), sender ownership, route specificity. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "policy.h"
#include "route_match.h"
#include "policy_fixture.h"

/* policy_new takes ownership of an unpacked snapshot: round-trip the
 * fixture through the wire format to get one. */
static struct policy *
compile(struct fixture *f)
{
	size_t n = sluice__policy__get_packed_size(&f->p);
	uint8_t *buf = malloc(n + 1);
	Sluice__Policy *snap;
	struct policy *p;
	char err[256];

	sluice__policy__pack(&f->p, buf);
	snap = sluice__policy__unpack(NULL, n, buf);
	free(buf);
	assert_non_null(snap);
	p = policy_new(snap, err, sizeof(err));
	if (p == NULL)
		fail_msg("policy_new: %s", err);
	return p;
}

static int
trusted(struct policy *p, const char *addr)
{
	uint8_t a[16];
	int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;

	assert_int_equal(inet_pton(fam, addr, a), 1);
	return policy_client_trusted(p, fam, a);
}

static void
test_networks(void **state)
{
	struct fixture f;
	struct policy *p;

	(void)state;
	fix_init(&f);
	fix_net(&f, "10.0.0.0/8", 0);
	fix_net(&f, "10.9.0.0/16", 1);
	fix_net(&f, "10.9.8.0/24", 0);
	fix_net(&f, "2001:db8::/32", 0);
	p = compile(&f);
	assert_true(trusted(p, "10.1.2.3"));
	assert_false(trusted(p, "10.9.1.1"));  /* deny /16 beats allow /8 */
	assert_true(trusted(p, "10.9.8.1"));   /* allow /24 beats deny /16 */
	assert_false(trusted(p, "192.0.2.1")); /* no match: not trusted */
	assert_true(trusted(p, "2001:db8::25"));
	assert_true(trusted(p, "::ffff:10.1.1.1"));
	policy_unref(p);

	p = policy_empty(); /* the empty policy trusts nobody */
	assert_false(trusted(p, "127.0.0.1"));
	assert_int_equal(policy_version(p), 0);
	assert_int_equal(policy_limit(p, "max_recipients"), 100);
	policy_unref(p);
}

static void
test_senders(void **state)
{
	struct fixture f;
	struct policy *p;
	const Sluice__User *u;

	(void)state;
	fix_init(&f);
	fix_user(&f, "app1", FIX_HASH, "*@example.com");
	fix_user(&f, "app2", FIX_HASH, "alerts@example.org");
	fix_user(&f, "app3", FIX_HASH, "*@*.example.net");
	p = compile(&f);
	u = policy_user(p, "app1");
	assert_non_null(u);
	assert_true(policy_sender_allowed(u, "a@example.com"));
	assert_true(policy_sender_allowed(u, "A@EXAMPLE.COM"));
	assert_false(policy_sender_allowed(u, "a@sub.example.com"));
	assert_false(policy_sender_allowed(u, "a@example.com.evil"));
	assert_false(policy_sender_allowed(u, ""));
	u = policy_user(p, "app2");
	assert_true(policy_sender_allowed(u, "alerts@example.org"));
	assert_false(policy_sender_allowed(u, "other@example.org"));
	u = policy_user(p, "app3");
	assert_true(policy_sender_allowed(u, "x@a.example.net"));
	assert_false(policy_sender_allowed(u, "x@example.net"));
	assert_null(policy_user(p, "nobody"));
	policy_unref(p);
}

static void
test_routes(void **state)
{
	static const char *const h[] = {"h"};
	struct fixture f;
	struct policy *p;

	(void)state;
	fix_init(&f);
	fix_hop(&f, "h", "10.0.0.1", 25);
	fix_route(&f, "*", h, 1, NULL, 0);
	fix_route(&f, "*.example.com", h, 1, NULL, 0);
	fix_route(&f, "a.example.com", h, 1, NULL, 0);
	fix_route(&f, "*.b.example.com", h, 1, NULL, 0);
	p = compile(&f);
	assert_string_equal(
	    route_match(policy_snapshot(p), "a.example.com")->pattern,
	    "a.example.com");
	assert_string_equal(
	    route_match(policy_snapshot(p), "A.Example.COM")->pattern,
	    "a.example.com");
	assert_string_equal(
	    route_match(policy_snapshot(p), "x.example.com")->pattern,
	    "*.example.com");
	assert_string_equal(
	    route_match(policy_snapshot(p), "c.b.example.com")->pattern,
	    "*.b.example.com");
	assert_string_equal(
	    route_match(policy_snapshot(p), "example.com")->pattern, "*");
	assert_string_equal(
	    route_match(policy_snapshot(p), "example.org")->pattern, "*");
	policy_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_networks),
	    cmocka_unit_test(test_senders),
	    cmocka_unit_test(test_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
