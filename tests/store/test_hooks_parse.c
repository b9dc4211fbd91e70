/* test_hooks_parse.c - unit tests of controller/hooks_parse.c: each
 * provider's body as its documentation shows it, the sluice events it
 * becomes (kind, recipient, join keys, hard or not), what is ignored, and
 * bodies that are not the provider's (a one-line error, no crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hooks_parse.h"

enum prov { SENDGRID, MAILGUN, POSTMARK, BREVO, SES };

struct want {
	const char *kind, *rcpt, *pid, *mid, *qid;
	bool hard;
};

struct row {
	enum prov p;
	const char *body;
	int rc;
	size_t n, ignored;
	struct want w[2];
};

static const struct row rows[] = {
    {SENDGRID,
        "[{\"email\":\"A@Ex.com\",\"timestamp\":1700000000,\"event\":"
        "\"bounce\",\"type\":\"bounce\",\"status\":\"5.1.1\",\"reason\":"
        "\"no such user\",\"sg_event_id\":\"e1\",\"sg_message_id\":"
        "\"14c5d75ce93.filter0001.16648.5515E0B88.0\",\"smtp-id\":"
        "\"<m1@ex.com>\",\"sluice_qid\":\"OLD\",\"sluice_queue_id\":\"Q1\"},"
        "{\"email\":\"b@ex.com\",\"event\":\"processed\",\"sg_event_id\":"
        "\"e2\"},"
        "{\"email\":\"c@ex.com\",\"event\":\"bounce\",\"type\":\"blocked\","
        "\"sg_event_id\":\"e3\",\"sg_message_id\":\"X.f\"}]",
        0, 2, 1,
        {{"provider_bounced", "a@ex.com", "14c5d75ce93", "<m1@ex.com>", "Q1",
             true},
            {"provider_bounced", "c@ex.com", "X", "", "", false}}},
    {SENDGRID, "{\"event\":\"delivered\"}", -1, 0, 0, {{0}}},
    {SENDGRID, "[{\"event\":\"delivered\",\"email\":\"a@x\"}]", -1, 0, 0,
        {{0}}}, /* no sg_event_id */
    {SENDGRID, "not json", -1, 0, 0, {{0}}},
    {SENDGRID,
        "[{\"event\":\"spamreport\",\"email\":\"a@x\",\"sg_event_id\":\"s\"}"
        ",{\"event\":\"open\",\"email\":\"a@x\",\"sg_event_id\":\"o\"}]",
        0, 2, 0,
        {{"complaint", "a@x", "", "", "", true},
            {"opened", "a@x", "", "", "", false}}},
    {MAILGUN,
        "{\"signature\":{\"timestamp\":\"1529006854\",\"token\":\"t\","
        "\"signature\":\"abc\"},\"event-data\":{\"id\":\"ev1\",\"event\":"
        "\"failed\",\"severity\":\"permanent\",\"recipient\":\"d@x\","
        "\"timestamp\":1521472262.9,\"message\":{\"headers\":{"
        "\"message-id\":\"m2@x\"}},\"user-variables\":{\"sluice_qid\":"
        "\"Q2\"},\"delivery-status\":{\"code\":550,\"message\":\"gone\"}}}",
        0, 1, 0, {{"provider_bounced", "d@x", "", "<m2@x>", "Q2", true}}},
    {MAILGUN,
        "{\"signature\":{\"timestamp\":1,\"token\":\"t\",\"signature\":\"s\""
        "},\"event-data\":{\"id\":\"ev2\",\"event\":\"failed\",\"severity\":"
        "\"temporary\",\"recipient\":\"d@x\"}}",
        0, 1, 0, {{"provider_deferred", "d@x", "", "", "", false}}},
    {MAILGUN,
        "{\"signature\":{},\"event-data\":{\"id\":\"x\",\"event\":"
        "\"unsubscribed\"}}",
        0, 0, 1, {{0}}},
    {MAILGUN, "{\"event-data\":{}}", -1, 0, 0, {{0}}},
    {POSTMARK,
        "{\"RecordType\":\"Bounce\",\"ID\":42,\"Type\":\"HardBounce\","
        "\"MessageID\":\"883953f4\",\"Email\":\"e@x\",\"Description\":\"d\","
        "\"BouncedAt\":\"2019-11-05T16:33:54Z\",\"Metadata\":{"
        "\"sluice-queue-id\":\"Q3\"}}",
        0, 1, 0, {{"provider_bounced", "e@x", "883953f4", "", "Q3", true}}},
    {POSTMARK,
        "{\"RecordType\":\"Delivery\",\"MessageID\":\"p1\",\"Recipient\":"
        "\"f@x\",\"DeliveredAt\":\"2019-11-05T16:33:54Z\"}",
        0, 1, 0, {{"provider_delivered", "f@x", "p1", "", "", false}}},
    {POSTMARK, "[]", -1, 0, 0, {{0}}},
    {BREVO,
        "{\"event\":\"hard_bounce\",\"email\":\"g@x\",\"message-id\":"
        "\"<m3@x>\",\"ts_event\":1604933619,\"reason\":\"unknown\","
        "\"X-Mailin-custom\":\"other=1;sluice_queue_id=Q4\"}",
        0, 1, 0, {{"provider_bounced", "g@x", "", "<m3@x>", "Q4", true}}},
    {BREVO, "{\"event\":\"soft_bounce\",\"email\":\"h@x\"}", 0, 1, 0,
        {{"provider_bounced", "h@x", "", "", "", false}}},
    {BREVO, "\"str\"", -1, 0, 0, {{0}}},
    {SES,
        "{\"notificationType\":\"Bounce\",\"mail\":{\"messageId\":\"S1\","
        "\"tags\":{\"sluice_queue_id\":[\"Q5\"]},\"commonHeaders\":{"
        "\"messageId\":\"<m4@x>\"}},\"bounce\":{\"bounceType\":"
        "\"Permanent\",\"bouncedRecipients\":[{\"emailAddress\":\"i@x\","
        "\"diagnosticCode\":\"smtp; 550\"},{\"emailAddress\":\"j@x\"}]}}",
        0, 2, 0,
        {{"provider_bounced", "i@x", "S1", "<m4@x>", "Q5", true},
            {"provider_bounced", "j@x", "S1", "<m4@x>", "Q5", true}}},
    {SES,
        "{\"eventType\":\"DeliveryDelay\",\"mail\":{\"messageId\":\"S2\"},"
        "\"deliveryDelay\":{\"delayedRecipients\":[{\"emailAddress\":"
        "\"k@x\"}]}}",
        0, 1, 0, {{"provider_deferred", "k@x", "S2", "", "", false}}},
    {SES, "{\"eventType\":\"Send\",\"mail\":{}}", 0, 0, 1, {{0}}},
    {SES, "[1", -1, 0, 0, {{0}}},
};

static int
parse(const struct row *r, struct hook_batch *b, char *err, size_t len)
{
	struct hooks_mailgun_sig sig;
	size_t n = strlen(r->body);

	switch (r->p) {
	case SENDGRID:
		return hooks_parse_sendgrid(r->body, n, b, err, len);
	case MAILGUN:
		return hooks_parse_mailgun(r->body, n, b, &sig, err, len);
	case POSTMARK:
		return hooks_parse_postmark(r->body, n, b, err, len);
	case BREVO:
		return hooks_parse_brevo(r->body, n, b, err, len);
	case SES:
		return hooks_parse_ses(r->body, "sns-1", b, err, len);
	}
	return -1;
}

static void
test_rows(void **state)
{
	char err[256];
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct hook_batch b;
		int rc;

		memset(&b, 0, sizeof(b));
		err[0] = '\0';
		rc = parse(r, &b, err, sizeof(err));
		if (rc != r->rc)
			fail_msg(
			    "row %zu: rc %d, want %d (%s)", i, rc, r->rc, err);
		if (rc == -1)
			assert_true(err[0] != '\0');
		if (b.n != r->n || b.ignored != r->ignored)
			fail_msg(
			    "row %zu: %zu events %zu ignored, want %zu %zu", i,
			    b.n, b.ignored, r->n, r->ignored);
		for (k = 0; k < b.n && k < 2; k++) {
			const struct want *w = &r->w[k];
			const struct hook_event *e = &b.v[k];

			if (strcmp(e->kind, w->kind) != 0 ||
			    strcmp(e->recipient, w->rcpt) != 0 ||
			    strcmp(e->provider_id, w->pid) != 0 ||
			    strcmp(e->message_id, w->mid) != 0 ||
			    strcmp(e->queue_id, w->qid) != 0 ||
			    e->is_hard != w->hard || e->event_id[0] == '\0')
				fail_msg(
				    "row %zu event %zu: %s %s pid=%s mid=%s "
				    "qid=%s hard=%d id=%s",
				    i, k, e->kind, e->recipient, e->provider_id,
				    e->message_id, e->queue_id, e->is_hard,
				    e->event_id);
		}
		hooks_batch_free(&b);
	}
}

/* SES event ids are the SNS MessageId and the recipient: two recipients
 * of one notification are two events, a replay the same ids. */
static void
test_ses_ids(void **state)
{
	struct hook_batch b;
	char err[128];

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(
	    hooks_parse_ses(rows[15].body, "abc", &b, err, sizeof(err)), 0);
	assert_int_equal(b.n, 2);
	assert_string_equal(b.v[0].event_id, "abc:i@x");
	assert_string_equal(b.v[1].event_id, "abc:j@x");
	hooks_batch_remove(&b, 0);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.v[0].event_id, "abc:j@x");
	assert_int_equal(b.ignored, 1);
	hooks_batch_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_ses_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
