/* test_rewrite.c - the From: rewrite (node/rewrite.c) as a table: header
 * block in, header block out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rewrite.h"

static const struct {
	const char *in, *out; /* out NULL: nothing to rewrite */
} cases[] = {
    {"From: a@app.example\r\nTo: b@example.org\r\n\r\n",
        "From: id@verified.example\r\nTo: b@example.org\r\n\r\n"},
    {"Subject: x\r\nFrom: \"Billing App\" <a@app.example>\r\n\r\n",
        "Subject: x\r\nFrom: \"Billing App\" <id@verified.example>\r\n\r\n"},
    /* display name with a quoted '<', folded field, any case */
    {"from: \"A <b>\"\r\n <a@app.example>\r\nX: y\r\n\r\n",
        "From: \"A <b>\" <id@verified.example>\r\nX: y\r\n\r\n"},
    {"FROM:Ops <ops@app.example>\r\n\r\n",
        "From: Ops <id@verified.example>\r\n\r\n"},
    /* only the first From:, not one in the body or in another field */
    {"X-From: a@b\r\nFrom: a@c\r\n\r\nFrom: body\r\n",
        "X-From: a@b\r\nFrom: id@verified.example\r\n\r\nFrom: body\r\n"},
    /* no From: field, or only in the body */
    {"To: b@example.org\r\n\r\n", NULL},
    {"To: b@example.org\r\n\r\nFrom: a@b\r\n", NULL},
    {"\r\nFrom: a@b\r\n", NULL},
    /* a header block without its empty line (all header) */
    {"From: a@b", "From: id@verified.example\r\n"},
};

static void
test_table(void **state)
{
	size_t i, len;
	char *out;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		out = rewrite_from(cases[i].in, strlen(cases[i].in),
		    "id@verified.example", &len);
		print_message("case %zu\n", i);
		if (cases[i].out == NULL) {
			assert_null(out);
			continue;
		}
		assert_non_null(out);
		assert_int_equal(len, strlen(cases[i].out));
		assert_memory_equal(out, cases[i].out, len);
		free(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
