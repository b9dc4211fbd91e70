/* test_passwd.c - scrypt hashes: verify, salt, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "passwd.h"

static void
test_roundtrip(void **state)
{
	char h1[PASSWD_HASH_MAX], h2[PASSWD_HASH_MAX];

	(void)state;
	assert_int_equal(passwd_hash("correct horse", h1, sizeof(h1)), 0);
	assert_int_equal(passwd_hash("correct horse", h2, sizeof(h2)), 0);
	assert_non_null(strstr(h1, "$scrypt$ln=14,r=8,p=1$"));
	assert_null(strstr(h1, "correct horse"));
	assert_string_not_equal(h1, h2); /* salted */
	assert_true(passwd_verify("correct horse", h1));
	assert_true(passwd_verify("correct horse", h2));
	assert_false(passwd_verify("correct horsE", h1));
	assert_false(passwd_verify("", h1));
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "plain",
	    "$scrypt$",
	    "$scrypt$ln=14,r=8,p=1$",
	    "$scrypt$ln=14,r=8,p=1$AAAA",
	    "$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
	    "$scrypt$ln=14,r=8,p=1$!!!!$AAAA",
	    "$bcrypt$10$abc",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(passwd_verify("x", bad[i]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
