/* reply_scope.c - the reply-scope tables: first the replies the cloud
 * relays document (Amazon SES, SendGrid, Mailgun, Microsoft 365, Google
 * Workspace SMTP relay), matched only for smart hosts, then the generic
 * rules by stage and class.  The first matching row wins.  Data, not
 * code: a new provider reply is one row here and one line in
 * tests/unit/test_reply_scope.c and docs/delivery.md. */
#include "reply_scope.h"

#include <stddef.h>
#include <string.h>

#define ST(s)  (1u << (s))
#define ST_ANY 0xffffu
#define ST_TXN (ST(REPLY_MAIL) | ST(REPLY_RCPT) | ST(REPLY_DATA))
#define ST_SETUP                                                               \
	(ST(REPLY_CONNECT) | ST(REPLY_GREETING) | ST(REPLY_EHLO) |             \
	    ST(REPLY_STARTTLS))
#define HOUR      3600
#define DAY_RETRY HOUR /* rolling 24 h quotas: look again hourly */

struct reply_rule {
	const char *provider;
	unsigned stages; /* ST() mask */
	int code;        /* exact code; 4 or 5: a class; 0: any; -1: no reply */
	const char *enhanced; /* prefix of the enhanced code, or NULL */
	const char *text;     /* case-insensitive substring, or NULL */
	enum reply_scope scope;
	int64_t window_s;
};

/* Documented provider replies (smart hosts only). */
static const struct reply_rule provider_rules[] = {
    /* Amazon SES, "SMTP response codes" (SES developer guide). */
    {"ses", ST_ANY, 454, NULL, "Maximum sending rate exceeded",
        SCOPE_HOP_THROTTLE, 1},
    {"ses", ST_ANY, 454, NULL, "Daily message quota exceeded",
        SCOPE_HOP_THROTTLE, DAY_RETRY},
    {"ses", ST_ANY, 5, NULL, "Sending paused for this account", SCOPE_ACCOUNT,
        0},
    {"ses", ST_ANY, 5, NULL, "Account is suspended", SCOPE_ACCOUNT, 0},
    {"ses", ST_ANY, 5, NULL, "Email address is not verified", SCOPE_HOP_CONFIG,
        0},
    {"ses", ST_ANY, 5, NULL, "identities failed the check", SCOPE_HOP_CONFIG,
        0},
    {"ses", ST_ANY, 530, NULL, "Authentication required", SCOPE_HOP_CONFIG, 0},
    {"ses", ST_ANY, 535, NULL, "Authentication Credentials Invalid",
        SCOPE_HOP_CONFIG, 0},
    /* SendGrid, "SMTP errors and troubleshooting". */
    {"sendgrid", ST_ANY, 5, NULL, "Unauthenticated senders not allowed",
        SCOPE_HOP_CONFIG, 0},
    {"sendgrid", ST_ANY, 451, NULL, "Maximum credits exceeded", SCOPE_ACCOUNT,
        0},
    {"sendgrid", ST_ANY, 5, NULL, "does not match a verified Sender Identity",
        SCOPE_HOP_CONFIG, 0},
    {"sendgrid", ST_ANY, 421, NULL, "deferred due to unexpected volume",
        SCOPE_HOP_THROTTLE, HOUR},
    {"sendgrid", ST_ANY, 421, NULL, "temporarily deferred", SCOPE_HOP_THROTTLE,
        600},
    /* Mailgun: sandbox/disabled domains, business verification. */
    {"mailgun", ST_ANY, 0, NULL, "is not allowed to send", SCOPE_ACCOUNT, 0},
    {"mailgun", ST_ANY, 4, NULL, "Too many", SCOPE_HOP_THROTTLE, 60},
    {"mailgun", ST_ANY, 5, NULL, "Relaying denied", SCOPE_HOP_CONFIG, 0},
    /* Microsoft 365 (Exchange Online) SMTP AUTH submission. */
    {"m365", ST_ANY, 432, "4.3.2", NULL, SCOPE_HOP_THROTTLE, 60},
    {"m365", ST_ANY, 5, "5.2.0", "SubmissionQuotaExceeded", SCOPE_HOP_THROTTLE,
        DAY_RETRY},
    {"m365", ST_ANY, 5, "5.7.30", NULL, SCOPE_HOP_CONFIG, 0},
    {"m365", ST_ANY, 5, "5.7.139", NULL, SCOPE_HOP_CONFIG, 0},
    {"m365", ST_ANY, 5, "5.7.60", NULL, SCOPE_HOP_CONFIG, 0},
    {"m365", ST_ANY, 5, "5.7.708", NULL, SCOPE_ACCOUNT, 0},
    {"m365", ST_ANY, 5, "5.7.750", NULL, SCOPE_ACCOUNT, 0},
    /* Google Workspace SMTP relay: daily and peak relay limits, relay
     * settings that do not match us. */
    {"google", ST_ANY, 5, "5.4.5", NULL, SCOPE_HOP_THROTTLE, DAY_RETRY},
    {"google", ST_ANY, 4, "4.2.1", "relay limit", SCOPE_HOP_THROTTLE, 600},
    {"google", ST_ANY, 5, NULL, "Invalid credentials for relay",
        SCOPE_HOP_CONFIG, 0},
    {"google", ST_ANY, 5, NULL, "Mail relay denied", SCOPE_HOP_CONFIG, 0},
};

/* Any hop: RFC 5321/4954/3463 by stage and class. */
static const struct reply_rule generic_rules[] = {
    /* 454 and "throttling" mean slow down (SES, many relays). */
    {"generic", ST_TXN, 454, NULL, NULL, SCOPE_HOP_THROTTLE, 0},
    {"generic", ST_TXN, 4, NULL, "throttl", SCOPE_HOP_THROTTLE, 0},
    /* A 4xx mailbox status (RFC 3463 X.2.2 full, X.2.1 receiving too
     * fast) is the recipient's, not the hop's. */
    {"generic", ST(REPLY_RCPT), 4, "4.2.2", NULL, SCOPE_RECIPIENT, 0},
    {"generic", ST(REPLY_RCPT), 4, NULL, "receiving mail at a rate",
        SCOPE_RECIPIENT, 0},
    {"generic", ST_ANY, 4, NULL, NULL, SCOPE_HOP_TRANSIENT, 0},
    {"generic", ST_ANY, -1, NULL, NULL, SCOPE_HOP_TRANSIENT, 0},
    /* A 5xx before the transaction is about the session, not the mail
     * (an MX that refuses us: the next MX is tried). */
    {"generic", ST(REPLY_AUTH) | ST(REPLY_SESSION) | ST_SETUP, 5, NULL, NULL,
        SCOPE_HOP_TRANSIENT, 0},
};

/* Smart hosts: a 5xx about us, not the mail (RFC 4954 530/534/535,
 * RFC 3463 X.7.8 credentials invalid; "authentication required" to MAIL
 * from a relay we did not authenticate to); a 5xx greeting or EHLO. */
static const struct reply_rule smart_rules[] = {
    {"generic", ST_ANY, 530, NULL, NULL, SCOPE_HOP_CONFIG, 0},
    {"generic", ST_ANY, 534, NULL, NULL, SCOPE_HOP_CONFIG, 0},
    {"generic", ST_ANY, 535, NULL, NULL, SCOPE_HOP_CONFIG, 0},
    {"generic", ST_ANY, 5, "5.7.8", NULL, SCOPE_HOP_CONFIG, 0},
    {"generic", ST_ANY, 5, "5.7.0", "authenticat", SCOPE_HOP_CONFIG, 0},
    {"generic", ST_ANY, 5, "5.7.1", "authenticat", SCOPE_HOP_CONFIG, 0},
    {"generic", ST(REPLY_AUTH) | ST_SETUP, 5, NULL, NULL, SCOPE_HOP_CONFIG, 0},
    /* We have credentials, the hop offers no way to use them. */
    {"generic", ST(REPLY_AUTH), -1, NULL, NULL, SCOPE_HOP_CONFIG, 0},
};

static bool
rule_match(const struct reply_rule *r, int code, const char *enh,
    const char *text, enum reply_stage st)
{
	if ((r->stages & ST(st)) == 0)
		return false;
	if (r->code == -1 && code != 0)
		return false;
	if (r->code >= 100 && r->code != code)
		return false;
	if (r->code > 0 && r->code < 10 && code / 100 != r->code)
		return false;
	if (r->enhanced != NULL &&
	    strncmp(enh, r->enhanced, strlen(r->enhanced)) != 0)
		return false;
	/* "5.7.1" must not match "5.7.139": a prefix ends at a dot. */
	if (r->enhanced != NULL && enh[strlen(r->enhanced)] != '\0' &&
	    enh[strlen(r->enhanced)] != '.')
		return false;
	if (r->text != NULL && strcasestr(text, r->text) == NULL)
		return false;
	return true;
}

static const struct reply_rule *
rule_find(const struct reply_rule *rules, size_t n, int code, const char *enh,
    const char *text, enum reply_stage st)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (rule_match(&rules[i], code, enh, text, st))
			return &rules[i];
	return NULL;
}

void
reply_scope_classify(int code, const char *enhanced, const char *text,
    enum reply_stage st, bool smart_host, struct reply_verdict *v)
{
	const struct reply_rule *r = NULL;

	if (enhanced == NULL)
		enhanced = "";
	if (text == NULL)
		text = "";
	v->window_s = 0;
	v->provider = "generic";
	if (code >= 200 && code < 400) {
		v->scope = SCOPE_OK;
		return;
	}
	if (smart_host) {
		r = rule_find(provider_rules,
		    sizeof(provider_rules) / sizeof(*provider_rules), code,
		    enhanced, text, st);
		if (r == NULL)
			r = rule_find(smart_rules,
			    sizeof(smart_rules) / sizeof(*smart_rules), code,
			    enhanced, text, st);
	}
	if (r == NULL)
		r = rule_find(generic_rules,
		    sizeof(generic_rules) / sizeof(*generic_rules), code,
		    enhanced, text, st);
	if (r != NULL) {
		v->scope = r->scope;
		v->window_s = r->window_s;
		v->provider = r->provider;
		return;
	}
	/* 5xx in the transaction: the recipient's at RCPT, the message's
	 * at MAIL, DATA and the dot. */
	v->scope = st == REPLY_RCPT ? SCOPE_RECIPIENT : SCOPE_MESSAGE;
}

const char *
reply_scope_name(enum reply_scope s)
{
	switch (s) {
	case SCOPE_OK:
		return "ok";
	case SCOPE_RECIPIENT:
		return "recipient";
	case SCOPE_MESSAGE:
		return "message";
	case SCOPE_HOP_TRANSIENT:
		return "hop-transient";
	case SCOPE_HOP_THROTTLE:
		return "hop-throttle";
	case SCOPE_HOP_CONFIG:
		return "hop-config";
	case SCOPE_ACCOUNT:
		return "account";
	}
	return "unknown";
}

const char *
reply_stage_name(enum reply_stage s)
{
	static const char *const names[] = {"connect", "greeting", "ehlo",
	    "starttls", "auth", "mail", "rcpt", "data", "session"};

	if ((size_t)s >= sizeof(names) / sizeof(*names))
		return "unknown";
	return names[s];
}

bool
reply_scope_alerts(enum reply_scope s)
{
	return s == SCOPE_HOP_CONFIG || s == SCOPE_ACCOUNT;
}
