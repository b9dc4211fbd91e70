/* test_smtp_reply.c - the reply parser (smtp_reply.c), shared by the server
 * and the client side: one line in,
 * the expected verdict and fields out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_reply.h"

static void
test_single_lines(void **state)
{
	static const struct {
		const char *line;
		int rv, code;
		const char *enh, *text;
	} t[] = {
	    {"250 2.1.5 Ok", 1, 250, "2.1.5", "Ok"},
	    {"550 5.1.1 <x@y>: Recipient address rejected", 1, 550, "5.1.1",
	        "<x@y>: Recipient address rejected"},
	    {"220 mx.example.com ESMTP", 1, 220, "", "mx.example.com ESMTP"},
	    {"354", 1, 354, "", ""},
	    {"454 4.7.0 Throttling failure: Maximum sending rate", 1, 454,
	        "4.7.0", "Throttling failure: Maximum sending rate"},
	    /* Enhanced code of another class is text, not a code. */
	    {"451 5.1.1 odd", 1, 451, "", "5.1.1 odd"},
	    {"250 2.0.0", 1, 250, "2.0.0", ""},
	    {"250 2.0.00x1 not enhanced", 1, 250, "", "2.0.00x1 not enhanced"},
	    {"25 short", -1, 0, "", ""},
	    {"hello", -1, 0, "", ""},
	    {"250x nope", -1, 0, "", ""},
	    {"150 1.0.0 bad class", -1, 0, "", ""},
	    {"", -1, 0, "", ""},
	};
	struct smtp_reply_parser rp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		smtp_reply_init(&rp);
		assert_int_equal(
		    smtp_reply_feed(&rp, t[i].line, strlen(t[i].line), NULL),
		    t[i].rv);
		if (t[i].rv != 1)
			continue;
		assert_int_equal(rp.r.code, t[i].code);
		assert_string_equal(rp.r.enhanced, t[i].enh);
		assert_string_equal(rp.r.text, t[i].text);
	}
}

static void
test_multiline(void **state)
{
	struct smtp_reply_parser rp;
	const char *lt = NULL;

	(void)state;
	smtp_reply_init(&rp);
	assert_int_equal(smtp_reply_feed(&rp, "250-mx.example", 14, &lt), 0);
	assert_int_equal(smtp_reply_feed(&rp, "250-PIPELINING", 14, &lt), 0);
	assert_string_equal(lt, "PIPELINING");
	assert_int_equal(smtp_reply_feed(&rp, "250 SIZE 1000", 13, &lt), 1);
	assert_string_equal(lt, "SIZE 1000");
	assert_int_equal(rp.r.code, 250);
	assert_string_equal(rp.r.text, "mx.example");
	/* Changing code mid-reply is a protocol error. */
	smtp_reply_init(&rp);
	assert_int_equal(smtp_reply_feed(&rp, "250-a", 5, NULL), 0);
	assert_int_equal(smtp_reply_feed(&rp, "251 b", 5, NULL), -1);
}

static void
test_long_text_truncated(void **state)
{
	struct smtp_reply_parser rp;
	char line[2000];

	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "550 ", 4);
	smtp_reply_init(&rp);
	assert_int_equal(smtp_reply_feed(&rp, line, sizeof(line), NULL), 1);
	assert_int_equal(strlen(rp.r.text), SMTP_REPLY_TEXT - 1);
}

static void
test_format(void **state)
{
	struct smtp_reply r;
	char buf[128];

	(void)state;
	smtp_reply_set(&r, 421, "4.4.1", "connect to %s: refused", "h");
	smtp_reply_format(&r, buf, sizeof(buf));
	assert_string_equal(buf, "421 4.4.1 connect to h: refused");
	assert_int_equal(smtp_reply_class(&r), 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_lines),
	    cmocka_unit_test(test_multiline),
	    cmocka_unit_test(test_long_text_truncated),
	    cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
