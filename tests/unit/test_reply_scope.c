/* test_reply_scope.c - every documented provider reply and the generic
 * rules: one line each, the reply as the provider sends it, the stage,
 * smart host or MX, and the scope, window and provider expected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reply_scope.h"

#define S true  /* smart host */
#define X false /* MX delivery */

static const struct {
	int code;
	const char *enh, *text;
	enum reply_stage st;
	bool smart;
	enum reply_scope want;
	int64_t window_s;
	const char *provider;
} cases[] = {
    /* Amazon SES */
    {454, "4.7.0", "Throttling failure: Maximum sending rate exceeded.",
        REPLY_MAIL, S, SCOPE_HOP_THROTTLE, 1, "ses"},
    {454, "", "Throttling failure: Daily message quota exceeded.", REPLY_MAIL,
        S, SCOPE_HOP_THROTTLE, 3600, "ses"},
    {554, "", "Message rejected: Sending paused for this account.", REPLY_DATA,
        S, SCOPE_ACCOUNT, 0, "ses"},
    {554, "",
        "Message rejected: Email address is not verified. The following "
        "identities failed the check in region EU-WEST-1: a@example.com",
        REPLY_DATA, S, SCOPE_HOP_CONFIG, 0, "ses"},
    {535, "", "Authentication Credentials Invalid", REPLY_AUTH, S,
        SCOPE_HOP_CONFIG, 0, "ses"},
    {530, "", "Authentication required", REPLY_MAIL, S, SCOPE_HOP_CONFIG, 0,
        "ses"},
    {454, "", "Temporary service failure", REPLY_MAIL, S, SCOPE_HOP_THROTTLE, 0,
        "generic"},
    /* SendGrid */
    {550, "", "Unauthenticated senders not allowed", REPLY_MAIL, S,
        SCOPE_HOP_CONFIG, 0, "sendgrid"},
    {451, "", "Authentication failed: Maximum credits exceeded", REPLY_MAIL, S,
        SCOPE_ACCOUNT, 0, "sendgrid"},
    {550, "", "The from address does not match a verified Sender Identity.",
        REPLY_MAIL, S, SCOPE_HOP_CONFIG, 0, "sendgrid"},
    {421, "",
        "Message from (198.51.100.7) temporarily deferred due to "
        "unexpected volume or user complaints - 4.16.55.1",
        REPLY_RCPT, S, SCOPE_HOP_THROTTLE, 3600, "sendgrid"},
    {421, "", "temporarily deferred", REPLY_MAIL, S, SCOPE_HOP_THROTTLE, 600,
        "sendgrid"},
    /* Mailgun */
    {421, "",
        "Domain sandbox1.mailgun.org is not allowed to send: Free accounts "
        "are for test purposes only.",
        REPLY_RCPT, S, SCOPE_ACCOUNT, 0, "mailgun"},
    {550, "5.7.1", "Relaying denied", REPLY_RCPT, S, SCOPE_HOP_CONFIG, 0,
        "mailgun"},
    {421, "4.7.0", "Too many requests, try later", REPLY_MAIL, S,
        SCOPE_HOP_THROTTLE, 60, "mailgun"},
    /* Microsoft 365 */
    {432, "4.3.2", "STOREDRV.ClientSubmit; sender thread limit exceeded",
        REPLY_DATA, S, SCOPE_HOP_THROTTLE, 60, "m365"},
    {432, "4.3.2", "Concurrent connections limit exceeded", REPLY_GREETING, S,
        SCOPE_HOP_THROTTLE, 60, "m365"},
    {554, "5.2.0",
        "STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
        REPLY_DATA, S, SCOPE_HOP_THROTTLE, 3600, "m365"},
    {550, "5.7.30",
        "Basic authentication is not supported for Client Submission.",
        REPLY_AUTH, S, SCOPE_HOP_CONFIG, 0, "m365"},
    {535, "5.7.139",
        "Authentication unsuccessful, SmtpClientAuthentication is disabled "
        "for the Tenant.",
        REPLY_AUTH, S, SCOPE_HOP_CONFIG, 0, "m365"},
    {550, "5.7.60",
        "SMTP; Client does not have permissions to send as this sender",
        REPLY_MAIL, S, SCOPE_HOP_CONFIG, 0, "m365"},
    {550, "5.7.708",
        "Service unavailable. Access denied, traffic not "
        "accepted from this IP.",
        REPLY_MAIL, S, SCOPE_ACCOUNT, 0, "m365"},
    /* Google Workspace SMTP relay */
    {550, "5.4.5", "Daily SMTP relay limit exceeded for user.", REPLY_MAIL, S,
        SCOPE_HOP_THROTTLE, 3600, "google"},
    {450, "4.2.1", "Peak SMTP relay limit exceeded for customer.", REPLY_MAIL,
        S, SCOPE_HOP_THROTTLE, 600, "google"},
    {550, "5.7.1", "Invalid credentials for relay [198.51.100.7].", REPLY_MAIL,
        S, SCOPE_HOP_CONFIG, 0, "google"},
    {550, "5.7.0", "Mail relay denied [198.51.100.7].", REPLY_RCPT, S,
        SCOPE_HOP_CONFIG, 0, "google"},
    /* Generic, smart hosts */
    {535, "5.7.8", "Error: authentication failed: UGFzc3dvcmQ6", REPLY_AUTH, S,
        SCOPE_HOP_CONFIG, 0, "generic"},
    {530, "5.7.0", "Must issue a STARTTLS command first", REPLY_MAIL, S,
        SCOPE_HOP_CONFIG, 0, "generic"},
    {550, "5.7.1", "Client was not authenticated", REPLY_MAIL, S,
        SCOPE_HOP_CONFIG, 0, "generic"},
    {554, "5.7.1", "no service for you", REPLY_GREETING, S, SCOPE_HOP_CONFIG, 0,
        "generic"},
    {550, "5.1.1", "<b@example.net> user unknown", REPLY_RCPT, S,
        SCOPE_RECIPIENT, 0, "generic"},
    {552, "5.3.4", "message too big", REPLY_MAIL, S, SCOPE_MESSAGE, 0,
        "generic"},
    {554, "5.7.1", "message content rejected", REPLY_DATA, S, SCOPE_MESSAGE, 0,
        "generic"},
    {421, "4.4.2", "closing connection", REPLY_RCPT, S, SCOPE_HOP_TRANSIENT, 0,
        "generic"},
    {451, "4.1.1", "<b@example.net> rejected by test", REPLY_RCPT, S,
        SCOPE_HOP_TRANSIENT, 0, "generic"},
    {0, "4.4.1", "connect to x: Connection refused", REPLY_CONNECT, S,
        SCOPE_HOP_TRANSIENT, 0, "generic"},
    {0, "4.4.2", "timeout while sending data", REPLY_SESSION, S,
        SCOPE_HOP_TRANSIENT, 0, "generic"},
    {0, "4.7.0", "relay.test offers no AUTH PLAIN or LOGIN", REPLY_AUTH, S,
        SCOPE_HOP_CONFIG, 0, "generic"},
    {454, "4.7.0", "Temporary authentication failure", REPLY_AUTH, S,
        SCOPE_HOP_TRANSIENT, 0, "generic"},
    {250, "2.0.0", "ok", REPLY_DATA, S, SCOPE_OK, 0, "generic"},
    /* Generic, MX: provider rows do not apply; 5xx is about the mail */
    {550, "5.7.1", "Relaying denied", REPLY_RCPT, X, SCOPE_RECIPIENT, 0,
        "generic"},
    {550, "", "Unauthenticated senders not allowed", REPLY_MAIL, X,
        SCOPE_MESSAGE, 0, "generic"},
    {554, "5.7.1", "go away", REPLY_GREETING, X, SCOPE_HOP_TRANSIENT, 0,
        "generic"},
    {452, "4.2.2", "mailbox full", REPLY_RCPT, X, SCOPE_RECIPIENT, 0,
        "generic"},
    {450, "4.2.1",
        "The user you are trying to contact is receiving mail at a rate "
        "that prevents additional messages from being delivered.",
        REPLY_RCPT, X, SCOPE_RECIPIENT, 0, "generic"},
    {454, "4.7.0", "Throttling failure", REPLY_MAIL, X, SCOPE_HOP_THROTTLE, 0,
        "generic"},
    /* Prefixes end at a dot: 5.7.1 is not 5.7.139 */
    {550, "5.7.13", "Client was not authenticated", REPLY_MAIL, S,
        SCOPE_MESSAGE, 0, "generic"},
};

static void
test_table(void **state)
{
	struct reply_verdict v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		reply_scope_classify(cases[i].code, cases[i].enh, cases[i].text,
		    cases[i].st, cases[i].smart, &v);
		if (v.scope != cases[i].want ||
		    v.window_s != cases[i].window_s ||
		    strcmp(v.provider, cases[i].provider) != 0)
			fail_msg("case %zu: %d %s %s (%s): got %s/%lld/%s, "
			         "want %s/%lld/%s",
			    i, cases[i].code, cases[i].enh, cases[i].text,
			    reply_stage_name(cases[i].st),
			    reply_scope_name(v.scope), (long long)v.window_s,
			    v.provider, reply_scope_name(cases[i].want),
			    (long long)cases[i].window_s, cases[i].provider);
	}
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(reply_scope_name(SCOPE_HOP_CONFIG), "hop-config");
	assert_string_equal(reply_stage_name(REPLY_RCPT), "rcpt");
	assert_true(reply_scope_alerts(SCOPE_ACCOUNT));
	assert_true(reply_scope_alerts(SCOPE_HOP_CONFIG));
	assert_false(reply_scope_alerts(SCOPE_HOP_THROTTLE));
	assert_false(reply_scope_alerts(SCOPE_RECIPIENT));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
