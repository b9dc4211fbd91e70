/* test_received.c - the Received: trace field, table-driven: every
 * "with" name, address literals, hostile HELO arguments, the date. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "received.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-12-06 23:30:05 UTC, a Sunday */
#define AT INT64_C(1796599805)

static const struct {
	struct received_info r;
	const char *want;
} cases[] = {
    {{"client.example", false, "192.0.2.7", "relay.example", true, true, true,
         false, "0660E452C96305", "b@example.net", AT},
        "Received: from client.example ([192.0.2.7])\r\n"
        "\tby relay.example (sluice) with ESMTPSA id 0660E452C96305\r\n"
        "\tfor <b@example.net>;\r\n"
        "\tSun, 06 Dec 2026 23:30:05 +0000\r\n"},
    /* several recipients: no "for" */
    {{"c", true, "2001:db8::1", "r", true, false, false, false, "Q", NULL, AT},
        "Received: from c ([IPv6:2001:db8::1])\r\n"
        "\tby r (sluice) with ESMTP id Q;\r\n"
        "\tSun, 06 Dec 2026 23:30:05 +0000\r\n"},
    /* hostile HELO: no comment or field can be forged */
    {{"a(b)c;<d>\\\"\x01\xc3\xa9", false, "10.0.0.1", "r", false, false, false,
         false, "Q", NULL, 0},
        "Received: from a?b?c??d?????? ([10.0.0.1])\r\n"
        "\tby r (sluice) with SMTP id Q;\r\n"
        "\tThu, 01 Jan 1970 00:00:00 +0000\r\n"},
    {{"", false, "10.0.0.1", "r", false, false, false, false, "Q", NULL,
         951782400}, /* 2000-02-29 */
        "Received: from unknown ([10.0.0.1])\r\n"
        "\tby r (sluice) with SMTP id Q;\r\n"
        "\tTue, 29 Feb 2000 00:00:00 +0000\r\n"},
};

static void
test_format(void **state)
{
	char buf[RECEIVED_MAX];
	size_t i, n;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		n = received_format(buf, sizeof(buf), &cases[i].r);
		if (n != strlen(cases[i].want) ||
		    memcmp(buf, cases[i].want, n) != 0)
			fail_msg("case %zu:\n%.*s\nwant:\n%s", i, (int)n, buf,
			    cases[i].want);
	}
	/* too small a buffer: 0, never a cut field */
	assert_int_equal(received_format(buf, 20, &cases[0].r), 0);
}

static void
test_protocol(void **state)
{
	static const struct {
		bool esmtp, tls, authed, utf8;
		const char *want;
	} t[] = {
	    {false, false, false, false, "SMTP"},
	    {false, true, true, true, "SMTP"},
	    {true, false, false, false, "ESMTP"},
	    {true, false, true, false, "ESMTPA"},
	    {true, true, false, false, "ESMTPS"},
	    {true, true, true, false, "ESMTPSA"},
	    {true, false, false, true, "UTF8SMTP"},
	    {true, false, true, true, "UTF8SMTPA"},
	    {true, true, false, true, "UTF8SMTPS"},
	    {true, true, true, true, "UTF8SMTPSA"},
	};
	struct received_info r;
	size_t i;

	(void)state;
	for (i = 0; i < N(t); i++) {
		memset(&r, 0, sizeof(r));
		r.esmtp = t[i].esmtp;
		r.tls = t[i].tls;
		r.authed = t[i].authed;
		r.smtputf8 = t[i].utf8;
		assert_string_equal(received_protocol(&r), t[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_protocol),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
