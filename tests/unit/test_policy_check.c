/* test_policy_check.c - whole-policy validation: each rule, first error
 * names the section, the element and the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy_check.h"
#include "policy_fixture.h"

static void
good(struct fixture *f)
{
	static const char *const g1[] = {"primary", "backup"};
	static const char *const g2[] = {"sendgrid"};

	fix_init(f);
	fix_net(f, "10.0.0.0/8", 0);
	fix_net(f, "10.9.0.0/16", 1);
	fix_user(f, "app1", FIX_HASH, "*@example.com");
	fix_hop(f, "primary", "10.0.0.5", 25);
	fix_hop(f, "backup", "mail.example.com", 25);
	fix_hop(f, "sendgrid", "smtp.sendgrid.net", 587);
	fix_route(f, "*", g1, 2, g2, 1);
	fix_limit(f, "max_message_size", 1048576);
}

static void
expect(struct fixture *f, enum policy_check_mode mode, const char *section,
    int index, const char *msg)
{
	struct policy_error e;

	assert_int_equal(policy_check(&f->p, mode, &e), -1);
	assert_string_equal(e.section, section);
	assert_int_equal(e.index, index);
	if (strstr(e.msg, msg) == NULL)
		fail_msg("message '%s' lacks '%s'", e.msg, msg);
}

static void
test_good(void **state)
{
	struct fixture f;
	struct policy_error e;

	(void)state;
	good(&f);
	assert_int_equal(policy_check(&f.p, POLICY_CHECK_SNAPSHOT, &e), 0);
	fix_init(&f); /* the empty policy is valid: it relays nothing */
	assert_int_equal(policy_check(&f.p, POLICY_CHECK_SNAPSHOT, &e), 0);
}

static void
test_errors(void **state)
{
	static const char *const ghost[] = {"ghost"};
	static const char *const mx[] = {"mx"};
	struct fixture f;

	(void)state;
	good(&f);
	f.net[1].cidr = (char *)(uintptr_t) "10.9.0.1/16";
	expect(&f, POLICY_CHECK_SNAPSHOT, "networks", 1, "host bits set");
	good(&f);
	f.net[0].cidr = (char *)(uintptr_t) "10.0.0.0/33";
	expect(&f, POLICY_CHECK_SNAPSHOT, "networks", 0, "prefix length");
	good(&f);
	fix_net(&f, "10.0.0.0/8", 1);
	expect(&f, POLICY_CHECK_SNAPSHOT, "networks", 2, "listed twice");
	good(&f);
	fix_route(&f, "example.org", ghost, 1, NULL, 0);
	expect(&f, POLICY_CHECK_SNAPSHOT, "routes", 1, "unknown hop 'ghost'");
	good(&f);
	fix_route(&f, "example.org", mx, 1, NULL, 0); /* mx is built in */
	{
		struct policy_error e;
		assert_int_equal(
		    policy_check(&f.p, POLICY_CHECK_SNAPSHOT, &e), 0);
	}
	good(&f);
	fix_route(&f, "exa mple.org", mx, 1, NULL, 0);
	expect(&f, POLICY_CHECK_SNAPSHOT, "routes", 1, "pattern");
	good(&f);
	fix_limit(&f, "max_recipients", -1);
	expect(&f, POLICY_CHECK_SNAPSHOT, "limits", 1, "between 1 and");
	good(&f);
	fix_limit(&f, "max_bogus", 1);
	expect(&f, POLICY_CHECK_SNAPSHOT, "limits", 1, "unknown limit");
	good(&f);
	f.hop[0].port = 70000;
	expect(&f, POLICY_CHECK_SNAPSHOT, "hops", 0, "port");
	good(&f);
	f.hop[1].host = (char *)(uintptr_t) "";
	expect(&f, POLICY_CHECK_SNAPSHOT, "hops", 1, "host");
	good(&f);
	fix_hop(&f, "primary", "x.example", 25);
	expect(&f, POLICY_CHECK_SNAPSHOT, "hops", 3, "listed twice");
	good(&f);
	f.hop[0].secret = (char *)(uintptr_t) "s";
	expect(&f, POLICY_CHECK_SNAPSHOT, "hops", 0, "AUTH user");
	good(&f);
	f.user[0].senders[0] = (char *)(uintptr_t) "example.com";
	expect(&f, POLICY_CHECK_SNAPSHOT, "users", 0, "bad sender pattern");
	good(&f);
	f.user[0].password_hash = (char *)(uintptr_t) "plaintext";
	expect(&f, POLICY_CHECK_SNAPSHOT, "users", 0, "not an scrypt hash");
	good(&f);
	f.user[0].password_hash = (char *)(uintptr_t) "";
	expect(&f, POLICY_CHECK_SNAPSHOT, "users", 0, "no password");
	/* an apply may keep the stored hash */
	f.user[0].has_password = 1;
	{
		struct policy_error e;
		assert_int_equal(policy_check(&f.p, POLICY_CHECK_APPLY, &e), 0);
	}
	good(&f);
	f.hop[2].keep_secret = 1;
	expect(&f, POLICY_CHECK_SNAPSHOT, "hops", 2, "keep a secret");
}

static void
test_patterns(void **state)
{
	(void)state;
	assert_int_equal(policy_check_pattern("*"), 0);
	assert_int_equal(policy_check_pattern("*.example.com"), 0);
	assert_int_equal(policy_check_pattern("example.com"), 0);
	assert_int_equal(policy_check_pattern("*example.com"), -1);
	assert_int_equal(policy_check_pattern("example..com"), -1);
	assert_int_equal(policy_check_pattern(""), -1);
	assert_int_equal(policy_check_sender("*@example.com"), 0);
	assert_int_equal(policy_check_sender("@example.com"), 0);
	assert_int_equal(policy_check_sender("a.b@example.com"), 0);
	assert_int_equal(policy_check_sender("*"), 0);
	assert_int_equal(policy_check_sender("<a@example.com>"), -1);
	assert_int_equal(policy_check_sender("a@"), -1);
	assert_int_equal(policy_check_name("edge-1"), 0);
	assert_int_equal(policy_check_name("edge 1"), -1);
	assert_int_equal(policy_check_name(""), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
