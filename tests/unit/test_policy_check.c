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

/* An XOAUTH2 hop (issue 15): complete in a snapshot; each missing piece
 * is one sentence naming the policy key; a secret may be kept in an
 * apply. */
static void
oauth_hop(struct fixture *f, const char *kind)
{
	Sluice__Hop *h = &f->hop[2];

	good(f);
	h->host = (char *)(uintptr_t) "smtp.office365.com";
	h->tls = SLUICE__TLS_MODE__TLS_REQUIRE;
	h->oauth2 = (char *)(uintptr_t)kind;
	h->oauth2_tenant = (char *)(uintptr_t) "contoso.example";
	h->oauth2_client_id = (char *)(uintptr_t) "app-1";
	h->auth_user = (char *)(uintptr_t) "app@contoso.example";
	h->secret = (char *)(uintptr_t) "s3cret";
}

static void
test_oauth2(void **state)
{
	struct fixture f;
	struct policy_error e;
	static const struct {
		const char *kind, *field, *value, *msg;
	} t[] = {
	    {"yahoo", NULL, NULL, "oauth2 must be m365|google"},
	    {"m365", "tenant", "", "needs tenant"},
	    {"m365", "tenant", "a/b", "directory id or domain"},
	    {"m365", "client_id", "", "m365 needs client_id"},
	    {"google", "client_id", "", "client_email"},
	    {"m365", "user", "", "needs user (the mailbox"},
	    {"google", "user", "", "impersonate"},
	    {"m365", "secret", "", "needs the client secret"},
	    {"google", "secret", "", "service_account_file"},
	    {"m365", "token_url", "http://x.example/t", "https:// URL"},
	    {"m365", "tls", "starttls", "tls require or smtps"},
	};
	size_t i;

	(void)state;
	oauth_hop(&f, "m365");
	assert_int_equal(policy_check(&f.p, POLICY_CHECK_SNAPSHOT, &e), 0);
	oauth_hop(&f, "google");
	assert_int_equal(policy_check(&f.p, POLICY_CHECK_SNAPSHOT, &e), 0);
	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		Sluice__Hop *h = &f.hop[2];

		oauth_hop(&f, t[i].kind);
		if (t[i].field == NULL)
			;
		else if (strcmp(t[i].field, "tenant") == 0)
			h->oauth2_tenant = (char *)(uintptr_t)t[i].value;
		else if (strcmp(t[i].field, "client_id") == 0)
			h->oauth2_client_id = (char *)(uintptr_t)t[i].value;
		else if (strcmp(t[i].field, "user") == 0) {
			h->auth_user = (char *)(uintptr_t)t[i].value;
			h->secret = (char *)(uintptr_t) "";
			h->has_secret = 1; /* else "a secret needs a user" */
			expect(&f, POLICY_CHECK_APPLY, "hops", 2, t[i].msg);
			continue;
		} else if (strcmp(t[i].field, "secret") == 0)
			h->secret = (char *)(uintptr_t)t[i].value;
		else if (strcmp(t[i].field, "token_url") == 0)
			h->oauth2_token_url = (char *)(uintptr_t)t[i].value;
		else if (strcmp(t[i].field, "tls") == 0)
			h->tls = SLUICE__TLS_MODE__TLS_STARTTLS;
		expect(&f, POLICY_CHECK_SNAPSHOT, "hops", 2, t[i].msg);
	}
	/* m365 with a token_url needs no tenant */
	oauth_hop(&f, "m365");
	f.hop[2].oauth2_tenant = (char *)(uintptr_t) "";
	f.hop[2].oauth2_token_url = (char *)(uintptr_t) "https://t.example/tok";
	assert_int_equal(policy_check(&f.p, POLICY_CHECK_SNAPSHOT, &e), 0);
	/* an apply may keep the stored credential, a snapshot may not */
	oauth_hop(&f, "m365");
	f.hop[2].secret = (char *)(uintptr_t) "";
	f.hop[2].keep_secret = 1;
	f.hop[2].has_secret = 1;
	assert_int_equal(policy_check(&f.p, POLICY_CHECK_APPLY, &e), 0);
	expect(&f, POLICY_CHECK_SNAPSHOT, "hops", 2, "keep a secret");
	/* OAuth2 settings on a hop that is not oauth2 */
	good(&f);
	f.hop[2].oauth2_tenant = (char *)(uintptr_t) "contoso.example";
	expect(&f, POLICY_CHECK_SNAPSHOT, "hops", 2, "without oauth2");
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
	    cmocka_unit_test(test_oauth2),
	    cmocka_unit_test(test_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
