/* test_text_escape.c - cmocka table tests of controller/text_escape.c:
 * which octet strings are UTF-8 as PostgreSQL takes it, and their escaped
 * form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "text_escape.h"

static const struct {
	const char *in;
	bool is_utf8;
	const char *escaped;
} cases[] = {
    {"", true, ""}, {"<a@example.com>", true, "<a@example.com>"},
    {"back\\slash", true, "back\\slash"},
    {"caf\xc3\xa9", true, "caf\xc3\xa9"},           /* U+00E9 */
    {"\xe2\x82\xac", true, "\xe2\x82\xac"},         /* U+20AC */
    {"\xf0\x9f\x93\xa7", true, "\xf0\x9f\x93\xa7"}, /* U+1F4E7 */
    {"<\xff\xfe\xc0@x>", false, "<\\xFF\\xFE\\xC0@x>"},
    {"caf\xe9", false, "caf\\xE9"},                      /* Latin-1 */
    {"\xc0\xaf", false, "\\xC0\\xAF"},                   /* overlong '/' */
    {"\xed\xa0\x80", false, "\\xED\\xA0\\x80"},          /* a surrogate */
    {"\xf4\x90\x80\x80", false, "\\xF4\\x90\\x80\\x80"}, /* > U+10FFFF */
    {"\xe2\x82", false, "\\xE2\\x82"},                   /* cut short */
    {"a\x80z", false, "a\\x80z"},                        /* lone continuation */
};

static void
test_table(void **state)
{
	size_t i;
	char *e;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		assert_int_equal(text_is_utf8(cases[i].in), cases[i].is_utf8);
		e = text_escape(cases[i].in);
		assert_non_null(e);
		assert_string_equal(e, cases[i].escaped);
		assert_true(text_is_utf8(e));
		free(e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
