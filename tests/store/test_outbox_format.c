/* test_outbox_format.c - unit tests of controller/outbox_format.c: the
 * event_webhook config line, the two payload shapes, the signature and
 * the retry backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "outbox_format.h"

static void
test_endpoint_lines(void **state)
{
	static const struct {
		const char *line;
		const char *err; /* NULL: valid */
	} cases[] = {
	    {"a url=https://h.example/p secret_file=/s", NULL},
	    {"a url=https://[::1]:8443/p?x=1 secret_file=/s shape=sendgrid "
	     "kinds=delivered,provider_bounced senders=Example.COM,*.ex.org "
	     "batch=1000 ca=/ca.pem",
	        NULL},
	    {"", "want NAME"},
	    {"a/b url=https://h/ secret_file=/s", "want NAME"},
	    {"a url=http://h/ secret_file=/s", "want https://"},
	    {"a url=https://u:p@h/ secret_file=/s", "want https://"},
	    {"a url=https://h/", "required"},
	    {"a secret_file=/s", "required"},
	    {"a url=https://h/ secret_file=/s shape=json", "shape 'json'"},
	    {"a url=https://h/ secret_file=/s batch=0", "batch '0'"},
	    {"a url=https://h/ secret_file=/s batch=1001", "batch '1001'"},
	    {"a url=https://h/ secret_file=/s kinds=a-b", "not an event kind"},
	    {"a url=https://h/ secret_file=/s senders=*.", "not a domain"},
	    {"a url=https://h/ secret_file=/s senders=a_b.c", "not a domain"},
	    {"a url=https://h/ secret_file=/s colour=red", "unknown option"},
	    {"a url=https://h/ secret_file=/s stray", "not key=value"},
	};
	struct outbox_endpoint ep;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = outbox_format_endpoint(
		    cases[i].line, &ep, err, sizeof(err));

		if (cases[i].err == NULL) {
			if (rc != 0)
				fail_msg("%s: %s", cases[i].line, err);
		} else if (rc != -1 || strstr(err, cases[i].err) == NULL)
			fail_msg("%s: rc %d err '%s', want '%s'", cases[i].line,
			    rc, rc ? err : "", cases[i].err);
	}
	assert_int_equal(
	    outbox_format_endpoint(cases[1].line, &ep, err, sizeof(err)), 0);
	assert_string_equal(ep.name, "a");
	assert_string_equal(ep.host, "::1");
	assert_string_equal(ep.hostport, "[::1]:8443");
	assert_string_equal(ep.path, "/p?x=1");
	assert_int_equal(ep.shape, OUTBOX_SHAPE_SENDGRID);
	assert_int_equal(ep.n_kinds, 2);
	assert_string_equal(ep.kinds[1], "provider_bounced");
	assert_int_equal(ep.n_senders, 2);
	assert_string_equal(ep.senders[0], "example.com");
	assert_string_equal(ep.senders[1], "*.ex.org");
	assert_int_equal(ep.batch, 1000);
	assert_int_equal(
	    outbox_format_endpoint(cases[0].line, &ep, err, sizeof(err)), 0);
	assert_int_equal(ep.port, 443);
	assert_int_equal(ep.batch, 100);
	assert_int_equal(ep.shape, OUTBOX_SHAPE_SLUICE);
	assert_int_equal(ep.n_kinds, 0);
}

static char *
body(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);

	assert_non_null(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	return s;
}

static void
test_payloads(void **state)
{
	char k_recv[] = "received", k_bounce[] = "bounced", q[] = "Q1",
	     mid[] = "<m@x>", snd[] = "a@example.com", r1[] = "x@d.net",
	     r2[] = "y\"\\\n@d.net", empty[] = "", reply[] = "550 5.1.1 no",
	     enh[] = "5.1.1", hop[] = "mx", client[] = "192.0.2.1";
	char *rcpts[] = {r1, r2};
	Sluice__Event e1 = SLUICE__EVENT__INIT, e2 = SLUICE__EVENT__INIT;
	struct outbox_event oe[2];
	struct evbuffer *b = evbuffer_new();
	char *s;

	(void)state;
	e1.seq = 7;
	e1.at_ms = 1700000000123LL;
	e1.kind = k_recv;
	e1.queue_id = q;
	e1.message_id = mid;
	e1.sender = snd;
	e1.recipients = rcpts;
	e1.n_recipients = 2;
	e1.client = client;
	e2 = e1;
	e2.seq = 8;
	e2.kind = k_bounce;
	e2.recipients = NULL;
	e2.n_recipients = 0;
	e2.recipient = r1;
	e2.reply = reply;
	e2.enhanced = enh;
	e2.hop = hop;
	e2.code = 550;
	e2.client = empty;
	oe[0] = (struct outbox_event){3, "n1", &e1};
	oe[1] = (struct outbox_event){3, "n1", &e2};

	outbox_format_payload(b, OUTBOX_SHAPE_SLUICE, "hook", oe, 2);
	s = body(b);
	assert_non_null(strstr(s, "{\"endpoint\":\"hook\",\"events\":[{"
	                          "\"event_id\":\"3-7\",\"kind\":\"received\","
	                          "\"at\":\"2023-11-14T22:13:20.123Z\","
	                          "\"at_ms\":1700000000123,\"node\":\"n1\""));
	assert_non_null(strstr(s, "\"recipients\":[\"x@d.net\","
	                          "\"y\\\"\\\\\\u000a@d.net\"]"));
	assert_non_null(
	    strstr(s, "{\"event_id\":\"3-8\",\"kind\":\"bounced\""));
	assert_non_null(strstr(s, "\"code\":550,\"enhanced\":\"5.1.1\""));
	assert_int_equal(s[strlen(s) - 1], '}');
	free(s);

	outbox_format_payload(b, OUTBOX_SHAPE_SENDGRID, "hook", oe, 2);
	s = body(b);
	/* the received event: one object per recipient, ids .0 and .1 */
	assert_non_null(strstr(s, "[{\"email\":\"x@d.net\",\"timestamp\":"
	                          "1700000000,\"event\":\"processed\","
	                          "\"sg_event_id\":\"3-7.0\","
	                          "\"sg_message_id\":\"Q1\","
	                          "\"smtp-id\":\"<m@x>\""));
	assert_non_null(strstr(s, "\"sg_event_id\":\"3-7.1\""));
	assert_non_null(strstr(s, "\"ip\":\"192.0.2.1\""));
	assert_non_null(strstr(s, "{\"email\":\"x@d.net\",\"timestamp\":"
	                          "1700000000,\"event\":\"bounce\","
	                          "\"sg_event_id\":\"3-8\""));
	assert_non_null(strstr(s, "\"reason\":\"550 5.1.1 no\",\"status\":"
	                          "\"5.1.1\",\"type\":\"bounce\""));
	assert_int_equal(s[strlen(s) - 1], ']');
	free(s);
	evbuffer_free(b);

	assert_string_equal(outbox_format_sendgrid_event("expired"), "dropped");
	assert_string_equal(
	    outbox_format_sendgrid_event("complaint"), "spamreport");
	assert_string_equal(
	    outbox_format_sendgrid_event("provider_bounced"), "bounce");
	assert_string_equal(
	    outbox_format_sendgrid_event("new_kind"), "new_kind");
}

static void
test_sign(void **state)
{
	char sig[OUTBOX_SIG_LEN];

	(void)state;
	/* python3: hmac.new(b"k3y", b'1700000000.{"a":1}', sha256) */
	outbox_format_sign("k3y", 3, 1700000000, "{\"a\":1}", 7, sig);
	assert_string_equal(sig, "v1=fd5a70e965043f7df6309c2c3b5ff5a8ffa99b1f"
	                         "5175e9a311459e73c4634d4a");
}

static void
test_backoff(void **state)
{
	static const struct {
		int failures;
		int64_t max_ms;
		uint32_t rnd;
		int64_t want;
	} cases[] = {
	    {1, 300000, 0, 500},
	    {1, 300000, 500, 1000},
	    {1, 300000, 501, 500}, /* rnd wraps into [base/2, base] */
	    {2, 300000, 0, 1000},
	    {4, 300000, 4000, 8000},
	    {30, 300000, 0, 150000},
	    {30, 300000, 150000, 300000},
	    {1000000, 1000, 0, 500},
	    {3, 1000, 123, 623},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(outbox_format_backoff_ms(cases[i].failures,
		                     cases[i].max_ms, cases[i].rnd),
		    cases[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_endpoint_lines),
	    cmocka_unit_test(test_payloads),
	    cmocka_unit_test(test_sign),
	    cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
