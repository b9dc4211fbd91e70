/* test_provider_tag.c - unit tests of node/provider_tag.c: the metadata
 * header with sluice's queue id per provider, which hop a hook tags. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "provider_tag.h"

static void
test_headers(void **state)
{
	static const struct {
		const char *provider, *qid, *want; /* want "": none */
	} cases[] = {
	    {"ses", "0000000000AB12",
	        "X-SES-MESSAGE-TAGS: "
	        "sluice_queue_id=0000000000AB12\r\n"},
	    {"sendgrid", "0000000000AB12",
	        "X-SMTPAPI: {\"unique_args\":{\"sluice_queue_id\":"
	        "\"0000000000AB12\"}}\r\n"},
	    {"mailgun", "0000000000AB12",
	        "X-Mailgun-Variables: {\"sluice_queue_id\":"
	        "\"0000000000AB12\"}\r\n"},
	    {"postmark", "0000000000AB12",
	        "X-PM-Metadata-sluice-queue-id: 0000000000AB12\r\n"},
	    {"brevo", "0000000000AB12",
	        "X-Mailin-custom: sluice_queue_id=0000000000AB12\r\n"},
	    /* nothing to add */
	    {"smtp", "0000000000AB12", ""},
	    {"", "0000000000AB12", ""},
	    {"ses", "", ""},
	    /* never anything that could break the header or the JSON */
	    {"sendgrid", "a\"b", ""},
	    {"ses", "a\r\nBcc: x@y", ""},
	    {"mailgun", "a b", ""},
	    {"ses", "x-1_2.3",
	        "X-SES-MESSAGE-TAGS: sluice_queue_id=x-1_2.3\r\n"},
	};
	char out[PROVIDER_TAG_MAX];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = provider_tag_header(
		    cases[i].provider, cases[i].qid, out, sizeof(out));
		if (n != strlen(cases[i].want) || strcmp(out, cases[i].want))
			fail_msg("%s %s: want '%s', got '%s' (%zu)",
			    cases[i].provider, cases[i].qid, cases[i].want, out,
			    n);
	}
	/* too small a buffer: nothing, never a cut header */
	assert_int_equal(provider_tag_header("ses", "Q1", out, 20), 0);
	assert_string_equal(out, "");
	/* the longest queue id fits the buffer in every form */
	char qid[65];
	memset(qid, 'A', 64);
	qid[64] = '\0';
	assert_true(
	    provider_tag_header("sendgrid", qid, out, sizeof(out)) > 64);
	assert_int_equal(provider_tag_header("ses", NULL, out, sizeof(out)), 0);
}

static void
test_hop(void **state)
{
	Sluice__ProviderHook h[3] = {SLUICE__PROVIDER_HOOK__INIT,
	    SLUICE__PROVIDER_HOOK__INIT, SLUICE__PROVIDER_HOOK__INIT};
	Sluice__ProviderHook *hp[3] = {&h[0], &h[1], &h[2]};
	Sluice__Policy p = SLUICE__POLICY__INIT;
	char sendgrid[] = "sendgrid", sg[] = "sg", ses[] = "ses",
	     mailgun[] = "mailgun", mg[] = "mg";

	(void)state;
	h[0].provider = sendgrid;
	h[0].name = sg;
	h[0].tag = false;
	h[1].provider = ses;
	h[1].name = ses;
	h[1].tag = true;
	h[2].provider = mailgun;
	h[2].name = mg;
	h[2].tag = true;
	p.provider_hooks = hp;
	p.n_provider_hooks = 3;
	assert_null(provider_tag_for_hop(&p, "sg")); /* off by default */
	assert_string_equal(provider_tag_for_hop(&p, "ses"), "ses");
	assert_string_equal(provider_tag_for_hop(&p, "mg"), "mailgun");
	assert_null(provider_tag_for_hop(&p, "mx"));
	assert_null(provider_tag_for_hop(&p, NULL));
	assert_null(provider_tag_for_hop(NULL, "ses"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_hop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
