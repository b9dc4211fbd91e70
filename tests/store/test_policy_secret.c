/* test_policy_secret.c - unit tests of controller/policy_secret.c: admin
 * replies never carry secrets; an apply keeps stored secrets by name and
 * refuses a new user without a password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy_secret.h"
#include "rpc.h"

static char s_relay[] = "relay", s_host[] = "smtp.example.com",
            s_user[] = "apikey", s_secret[] = "s3cr3t", s_app[] = "app1",
            s_hash[] = "$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA", s_star[] = "*",
            s_empty[] = "", s_new[] = "new", s_dom[] = "example.com",
            s_sel[] = "s1", s_key[] = "-----BEGIN PRIVATE KEY-----";

/* A policy with one hop, one user and one DKIM key, as if unpacked from
 * the wire: secret, hash and key as given. */
static Sluice__Policy *
make(char *secret, int keep, char *hash, int has_pw, char *user, char *key)
{
	Sluice__Policy p = SLUICE__POLICY__INIT;
	Sluice__Hop h = SLUICE__HOP__INIT, *hp = &h;
	Sluice__User u = SLUICE__USER__INIT, *up = &u;
	Sluice__DkimKey d = SLUICE__DKIM_KEY__INIT, *dp = &d;
	char *senders[1] = {s_star};
	Sluice__Policy *out;
	uint8_t *buf;
	size_t len;

	h.name = s_relay;
	h.host = s_host;
	h.port = 587;
	h.auth_user = s_user;
	h.secret = secret;
	h.keep_secret = keep;
	u.name = user;
	u.password_hash = hash;
	u.has_password = has_pw;
	u.senders = senders;
	u.n_senders = 1;
	d.domain = s_dom;
	d.selector = s_sel;
	d.private_key = key;
	d.has_key = key[0] == '\0';
	p.hops = &hp;
	p.n_hops = 1;
	p.users = &up;
	p.n_users = 1;
	p.dkim = &dp;
	p.n_dkim = 1;
	buf = rpc_pack(&p.base, &len);
	out = sluice__policy__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(out);
	return out;
}

static void
test_redact(void **state)
{
	Sluice__Policy *p = make(s_secret, 0, s_hash, 0, s_app, s_key);

	(void)state;
	policy_secret_redact(p);
	assert_string_equal(p->hops[0]->secret, "");
	assert_true(p->hops[0]->has_secret);
	assert_string_equal(p->users[0]->password_hash, "");
	assert_true(p->users[0]->has_password);
	assert_string_equal(p->dkim[0]->private_key, "");
	assert_true(p->dkim[0]->has_key);
	sluice__policy__free_unpacked(p, NULL);
}

static void
test_merge_keeps(void **state)
{
	Sluice__Policy *cur = make(s_secret, 0, s_hash, 0, s_app, s_key);
	Sluice__Policy *p = make(s_empty, 1, s_empty, 1, s_app, s_empty);
	struct policy_error err;

	(void)state;
	assert_int_equal(policy_secret_merge(p, cur, &err), 0);
	assert_string_equal(p->hops[0]->secret, "s3cr3t");
	assert_true(p->hops[0]->has_secret);
	assert_false(p->hops[0]->keep_secret);
	assert_string_equal(p->users[0]->password_hash, s_hash);
	assert_string_equal(p->dkim[0]->private_key, s_key);
	sluice__policy__free_unpacked(p, NULL);
	sluice__policy__free_unpacked(cur, NULL);
}

static void
test_merge_nothing_to_keep(void **state)
{
	Sluice__Policy *p = make(s_empty, 1, s_hash, 0, s_app, s_key);
	struct policy_error err;

	(void)state;
	assert_int_equal(policy_secret_merge(p, NULL, &err), 0);
	assert_string_equal(p->hops[0]->secret, "");
	assert_false(p->hops[0]->has_secret);
	assert_false(p->hops[0]->keep_secret);
	sluice__policy__free_unpacked(p, NULL);
}

static void
test_merge_new_user_without_password(void **state)
{
	Sluice__Policy *cur = make(s_secret, 0, s_hash, 0, s_app, s_key);
	Sluice__Policy *p = make(s_secret, 0, s_empty, 1, s_new, s_key);
	struct policy_error err;

	(void)state;
	assert_int_equal(policy_secret_merge(p, cur, &err), -1);
	assert_string_equal(err.section, "users");
	assert_int_equal(err.index, 0);
	assert_string_equal(err.msg, "user 'new' has no password");
	sluice__policy__free_unpacked(p, NULL);
	sluice__policy__free_unpacked(cur, NULL);
}

static void
test_merge_new_secret_wins(void **state)
{
	static char fresh[] = "fresh";
	Sluice__Policy *cur = make(s_secret, 0, s_hash, 0, s_app, s_key);
	Sluice__Policy *p = make(fresh, 0, s_hash, 0, s_app, s_key);
	struct policy_error err;

	(void)state;
	assert_int_equal(policy_secret_merge(p, cur, &err), 0);
	assert_string_equal(p->hops[0]->secret, "fresh");
	assert_true(p->hops[0]->has_secret);
	sluice__policy__free_unpacked(p, NULL);
	sluice__policy__free_unpacked(cur, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redact),
	    cmocka_unit_test(test_merge_keeps),
	    cmocka_unit_test(test_merge_nothing_to_keep),
	    cmocka_unit_test(test_merge_new_user_without_password),
	    cmocka_unit_test(test_merge_new_secret_wins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
