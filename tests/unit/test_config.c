/* test_config.c - the key = value config parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static void
test_parse_ok(void **state)
{
	const char *text = "# node\n"
	                   "name = edge-1\n"
	                   "controller = tcp://a:1\n"
	                   "  controller=tcp://b:2   # second\n"
	                   "database = \"host=/x dbname=y # not a comment\"\n"
	                   "\n"
	                   "heartbeat_ms = 500\n";
	char err[200];
	struct config *c = config_parse(text, "t.conf", err, sizeof(err));
	int64_t v;

	(void)state;
	assert_non_null(c);
	assert_string_equal(config_get(c, "name"), "edge-1");
	assert_string_equal(config_get_nth(c, "controller", 0), "tcp://a:1");
	assert_string_equal(config_get_nth(c, "controller", 1), "tcp://b:2");
	assert_null(config_get_nth(c, "controller", 2));
	assert_string_equal(
	    config_get(c, "database"), "host=/x dbname=y # not a comment");
	assert_int_equal(
	    config_get_int(c, "heartbeat_ms", 1, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 500);
	assert_int_equal(
	    config_get_int(c, "absent", 7, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 7);
	assert_int_equal(
	    config_get_int(c, "name", 7, &v, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not an integer"));
	config_free(c);
}

static void
test_parse_errors(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
	    {"name edge\n", "t.conf:1: expected 'key = value'"},
	    {"a = 1\n = 2\n", "t.conf:2: missing key"},
	    {"a-b = 1\n", "t.conf:1: bad character in key"},
	    {"a = \"open\n", "t.conf:1: unterminated quoted value"},
	};
	char err[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_null(
		    config_parse(cases[i].text, "t.conf", err, sizeof(err)));
		assert_non_null(strstr(err, cases[i].want));
	}
}

static void
test_unknown(void **state)
{
	static const char *const allowed[] = {"name", "spool", NULL};
	char err[200];
	struct config *c =
	    config_parse("name = a\nspol = /x\n", "t", err, sizeof(err));
	const struct config_entry *e;

	(void)state;
	assert_non_null(c);
	e = config_unknown(c, allowed);
	assert_non_null(e);
	assert_string_equal(e->key, "spol");
	assert_int_equal(e->line, 2);
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
