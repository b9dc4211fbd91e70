/* test_proxy.c - node/proxy.c: PROXY v1 and v2 headers, whole, partial
 * and hostile. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy.h"

static const uint8_t sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static void
test_v1(void **state)
{
	static const struct {
		const char *in;
		int rv; /* -2: header length */
		int family;
		const char *src;
		unsigned port;
	} t[] = {
	    {"PROXY TCP4 192.0.2.7 10.0.0.1 52100 25\r\nEHLO", -2, AF_INET,
	        "192.0.2.7", 52100},
	    {"PROXY TCP6 2001:db8::7 2001:db8::1 52100 25\r\n", -2, AF_INET6,
	        "2001:db8::7", 52100},
	    {"PROXY UNKNOWN\r\n", -2, 0, NULL, 0},
	    {"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n", -2, 0, NULL, 0},
	    {"PROXY TCP4 192.0.2.7 10.0.0.1 52100 25", 0, 0, NULL, 0},
	    {"PROXY TCP4 192.0.2.7 10.0.0.1 52100 25\r", 0, 0, NULL, 0},
	    {"PROX", 0, 0, NULL, 0},
	    {"", 0, 0, NULL, 0},
	    {"EHLO x\r\n", -1, 0, NULL, 0},
	    {"PROXY TCP4 192.0.2.7 10.0.0.1 52100\r\n", -1, 0, NULL, 0},
	    {"PROXY TCP4 192.0.2.7 10.0.0.1 52100 25 x\r\n", -1, 0, NULL, 0},
	    {"PROXY TCP4 2001:db8::7 10.0.0.1 52100 25\r\n", -1, 0, NULL, 0},
	    {"PROXY TCP4 192.0.2.7 10.0.0.1 65536 25\r\n", -1, 0, NULL, 0},
	    {"PROXY TCP4 192.0.2.7 10.0.0.1 052 25\r\n", -1, 0, NULL, 0},
	    {"PROXY UDP4 192.0.2.7 10.0.0.1 52100 25\r\n", -1, 0, NULL, 0},
	    {"PROXY TCP4 192.0.2.7 10.0.0.1 52100 25\n", -1, 0, NULL, 0},
	};
	struct proxy_info pi;
	char ip[64];
	size_t i, len;
	int rv;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		len = strlen(t[i].in);
		rv = proxy_parse((const uint8_t *)t[i].in, len, &pi);
		if (t[i].rv == -2) {
			const char *e = strstr(t[i].in, "\r\n");

			assert_int_equal(rv, (int)(e - t[i].in) + 2);
			if (t[i].src == NULL) {
				assert_true(pi.local);
				continue;
			}
			assert_false(pi.local);
			assert_int_equal(pi.family, t[i].family);
			inet_ntop(pi.family, pi.src, ip, sizeof(ip));
			assert_string_equal(ip, t[i].src);
			assert_int_equal(pi.src_port, t[i].port);
		} else if (rv != t[i].rv)
			fail_msg("case %zu %s: %d", i, t[i].in, rv);
	}
}

static void
test_v1_overlong(void **state)
{
	char buf[200];
	struct proxy_info pi;

	(void)state;
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, "PROXY TCP4", 10);
	assert_int_equal(proxy_parse((uint8_t *)buf, 106, &pi), 0);
	assert_int_equal(proxy_parse((uint8_t *)buf, sizeof(buf), &pi), -1);
}

static size_t
v2(uint8_t *b, uint8_t cmd, uint8_t fam, const uint8_t *addr, size_t alen)
{
	memcpy(b, sig, 12);
	b[12] = cmd;
	b[13] = fam;
	b[14] = (uint8_t)(alen >> 8);
	b[15] = (uint8_t)alen;
	memcpy(b + 16, addr, alen);
	return 16 + alen;
}

static void
test_v2(void **state)
{
	uint8_t b[4096], a4[12 + 7] = {192, 0, 2, 7, 10, 0, 0, 1, 0xcb, 0x84, 0,
	                     25, /* a TLV: */ 0x04, 0, 4, 'x', 'x', 'x', 'x'};
	uint8_t a6[36] = {0x20, 0x01, 0x0d, 0xb8};
	struct proxy_info pi;
	char ip[64];
	size_t n, i;

	(void)state;
	a6[15] = 7;
	a6[32] = 0xcb;
	a6[33] = 0x84;
	n = v2(b, 0x21, 0x11, a4, sizeof(a4));
	assert_int_equal(proxy_parse(b, n, &pi), (int)n);
	assert_int_equal(pi.family, AF_INET);
	inet_ntop(AF_INET, pi.src, ip, sizeof(ip));
	assert_string_equal(ip, "192.0.2.7");
	assert_int_equal(pi.src_port, 52100);
	/* every prefix is "need more" */
	for (i = 0; i < n; i++)
		assert_int_equal(proxy_parse(b, i, &pi), 0);
	n = v2(b, 0x21, 0x21, a6, sizeof(a6));
	assert_int_equal(proxy_parse(b, n, &pi), (int)n);
	assert_int_equal(pi.family, AF_INET6);
	inet_ntop(AF_INET6, pi.src, ip, sizeof(ip));
	assert_string_equal(ip, "2001:db8::7");
	/* LOCAL: the proxy's own health check */
	n = v2(b, 0x20, 0x00, a4, 0);
	assert_int_equal(proxy_parse(b, n, &pi), 16);
	assert_true(pi.local);
	/* version 1 in the v2 header, unknown command, UDP, short */
	n = v2(b, 0x11, 0x11, a4, 12);
	assert_int_equal(proxy_parse(b, n, &pi), -1);
	n = v2(b, 0x22, 0x11, a4, 12);
	assert_int_equal(proxy_parse(b, n, &pi), -1);
	n = v2(b, 0x21, 0x12, a4, 12);
	assert_int_equal(proxy_parse(b, n, &pi), -1);
	n = v2(b, 0x21, 0x11, a4, 8);
	assert_int_equal(proxy_parse(b, n, &pi), -1);
	/* over our ceiling */
	memset(b, 0, sizeof(b));
	n = v2(b, 0x21, 0x11, a4, 12);
	b[14] = 0x10;
	assert_int_equal(proxy_parse(b, 4000, &pi), -1);
	/* a broken signature */
	n = v2(b, 0x21, 0x11, a4, 12);
	b[11] = 'X';
	assert_int_equal(proxy_parse(b, n, &pi), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v1),
	    cmocka_unit_test(test_v1_overlong),
	    cmocka_unit_test(test_v2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
