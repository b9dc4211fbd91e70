/* test_provider_id.c - unit tests of node/provider_id.c: the provider's
 * message id in 250 replies as SES, SendGrid, Postmark and Postfix-style
 * servers write them (text after the code and enhanced code). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "provider_id.h"

static void
test_replies(void **state)
{
	static const struct {
		const char *text, *want; /* want NULL: no id */
	} cases[] = {
	    /* SES */
	    {"Ok 0100018c4b2e1f2a-5f1e1c3b-3c1d-4e2f-9a8b-7c6d5e4f3a2b-000000",
	        "0100018c4b2e1f2a-5f1e1c3b-3c1d-4e2f-9a8b-7c6d5e4f3a2b-000000"},
	    /* SendGrid */
	    {"Ok: queued as 5Z4mGBZbQbWo0AWEa9sZ6g", "5Z4mGBZbQbWo0AWEa9sZ6g"},
	    /* Postfix and friends */
	    {"Ok: queued as 8AB12", "8AB12"},
	    {"OK: QUEUED AS 8AB12", "8AB12"},
	    {"2.0.0 Ok: queued as <abc-123@pm.example>", "abc-123@pm.example"},
	    {"Ok: queued as 8AB12 (more text)", "8AB12"},
	    /* no id */
	    {"Great success", NULL},
	    {"Ok", NULL},
	    {"Ok short", NULL},
	    {"Ok: queued as ", NULL},
	    {"Ok: queued as \"weird\"", NULL},
	    {"", NULL},
	};
	char out[PROVIDER_ID_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok =
		    provider_id_from_reply(cases[i].text, out, sizeof(out));

		if (cases[i].want == NULL) {
			if (ok)
				fail_msg("'%s': want none, got '%s'",
				    cases[i].text, out);
		} else if (!ok || strcmp(out, cases[i].want) != 0)
			fail_msg("'%s': want '%s', got '%s'", cases[i].text,
			    cases[i].want, ok ? out : "(none)");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
