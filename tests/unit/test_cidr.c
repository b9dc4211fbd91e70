/* test_cidr.c - CIDR parsing, canonical form and matching. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "cidr.h"

static const struct {
	const char *in;
	const char *canon; /* NULL: must be refused */
} parse_cases[] = {
    {"10.0.0.0/8", "10.0.0.0/8"},
    {"192.168.1.7", "192.168.1.7/32"},
    {"0.0.0.0/0", "0.0.0.0/0"},
    {"2001:db8::/32", "2001:db8::/32"},
    {"::1", "::1/128"},
    {"10.1.2.3/8", NULL}, /* host bits set */
    {"10.0.0.0/33", NULL},
    {"10.0.0.0/", NULL},
    {"10.0.0.0/-1", NULL},
    {"10.0.0.0/8x", NULL},
    {"300.0.0.0/8", NULL},
    {"example.com", NULL},
    {"", NULL},
    {"2001:db8::/129", NULL},
};

static void
test_parse(void **state)
{
	char err[200], out[64];
	struct cidr c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		int rv = cidr_parse(parse_cases[i].in, &c, err, sizeof(err));
		if (parse_cases[i].canon == NULL) {
			assert_int_equal(rv, -1);
			assert_non_null(strstr(err, parse_cases[i].in));
			continue;
		}
		assert_int_equal(rv, 0);
		cidr_format(&c, out, sizeof(out));
		assert_string_equal(out, parse_cases[i].canon);
	}
	assert_int_equal(cidr_parse("10.1.2.3/8", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "did you mean 10.0.0.0/8"));
}

static int
match(const char *net, const char *addr)
{
	char err[200];
	struct cidr c;
	uint8_t a[16];
	int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;

	assert_int_equal(cidr_parse(net, &c, err, sizeof(err)), 0);
	assert_int_equal(inet_pton(fam, addr, a), 1);
	return cidr_contains(&c, fam, a);
}

static void
test_contains(void **state)
{
	(void)state;
	assert_true(match("10.0.0.0/8", "10.255.1.2"));
	assert_false(match("10.0.0.0/8", "11.0.0.1"));
	assert_true(match("0.0.0.0/0", "203.0.113.9"));
	assert_true(match("192.0.2.0/25", "192.0.2.127"));
	assert_false(match("192.0.2.0/25", "192.0.2.128"));
	assert_true(match("2001:db8::/32", "2001:db8:1::5"));
	assert_false(match("2001:db8::/32", "2001:db9::5"));
	/* IPv4-mapped IPv6 clients match IPv4 networks */
	assert_true(match("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_false(match("10.0.0.0/8", "::1"));
	assert_false(match("::/0", "10.0.0.1"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_contains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
