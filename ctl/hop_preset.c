/* hop_preset.c - presets for cloud relays.  Used by `hop add --preset` and
 * by policy files (`preset:`); explicit settings override what a preset
 * fills in, so callers apply the preset first. */
#include "hop_preset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_edit.h"

/* The providers' published limits, as hop budgets a user can override
 * (issue 15).  SES: 50 recipients per message, 40 MB per message (v2
 * API).  Microsoft 365 SMTP AUTH submission: 3 concurrent connections
 * and 30 messages a minute per mailbox (Exchange Online limits; the hop
 * is one mailbox, and max_conn/rate_per_minute are fleet-wide budgets).
 * Google Workspace SMTP relay: 100 recipients per SMTP transaction. */
#define SES_MAX_RCPT    50
#define SES_MAX_SIZE    41943040
#define M365_MAX_CONN   3
#define M365_RATE       30
#define GOOGLE_MAX_RCPT 100

static const char *const tls_names[] = {"none", "starttls", "require", "smtps"};

const char *
hop_tls_name(Sluice__TlsMode m)
{
	if ((int)m < 0 || (size_t)m >= sizeof(tls_names) / sizeof(*tls_names))
		return "unknown";
	return tls_names[m];
}

int
hop_tls_parse(const char *s, Sluice__TlsMode *out)
{
	size_t i;

	for (i = 0; i < sizeof(tls_names) / sizeof(*tls_names); i++)
		if (strcmp(s, tls_names[i]) == 0) {
			*out = (Sluice__TlsMode)i;
			return 0;
		}
	return -1;
}

bool
hop_tls_verify_default(Sluice__TlsMode m)
{
	return m == SLUICE__TLS_MODE__TLS_REQUIRE ||
	       m == SLUICE__TLS_MODE__TLS_SMTPS;
}

const char *
hop_preset_names(void)
{
	return "sendgrid|ses|mailgun|m365|google";
}

/* What each provider authenticates with: SendGrid the user "apikey" (set
 * by the preset) and an API key; SES SMTP credentials (an IAM SMTP user
 * name and password, per region); Mailgun a domain's SMTP login and
 * password.  None of them relays for an unauthenticated client: a hop
 * without them would only collect "530"/"550 Unauthenticated" replies. */
static const struct {
	const char *preset, *user, *secret;  /* hop add's flags */
	const char *file_user, *file_secret; /* policy file keys */
} preset_creds[] = {
    {"sendgrid", NULL, "--secret-stdin (the SendGrid API key)", NULL,
        "secret, secret_file or secret_env (the SendGrid API key)"},
    {"ses", "--user (the SES SMTP user name)",
        "--secret-stdin (the SES SMTP password)",
        "user (the SES SMTP user name)",
        "secret, secret_file or secret_env (the SES SMTP password)"},
    {"mailgun", "--user (the Mailgun SMTP login)",
        "--secret-stdin (the Mailgun SMTP password)",
        "user (the Mailgun SMTP login)",
        "secret, secret_file or secret_env (the Mailgun SMTP password)"},
    {"m365", "--user (the mailbox, e.g. app@example.com)",
        "--secret-stdin (the mailbox's password)",
        "user (the mailbox, e.g. app@example.com)",
        "secret, secret_file or secret_env (the mailbox's password)"},
    /* google: the SMTP relay service accepts by client IP or by SMTP
     * AUTH, so credentials are optional */
};

static const char *
preset_missing(const char *preset, bool has_user, bool has_secret, bool is_file)
{
	size_t i;

	for (i = 0; i < sizeof(preset_creds) / sizeof(*preset_creds); i++) {
		if (strcmp(preset, preset_creds[i].preset) != 0)
			continue;
		if (preset_creds[i].user != NULL && !has_user)
			return is_file ? preset_creds[i].file_user
			               : preset_creds[i].user;
		if (!has_secret)
			return is_file ? preset_creds[i].file_secret
			               : preset_creds[i].secret;
		return NULL;
	}
	return NULL;
}

const char *
hop_preset_missing(const char *preset, bool has_user, bool has_secret)
{
	return preset_missing(preset, has_user, has_secret, false);
}

const char *
hop_preset_missing_field(const char *preset, bool has_user, bool has_secret)
{
	return preset_missing(preset, has_user, has_secret, true);
}

int
hop_preset_apply(Sluice__Hop *h, const char *preset, const char *region,
    bool eu, char *err, size_t errlen)
{
	char host[256];

	if (strcmp(preset, "sendgrid") == 0) {
		policy_set_str(&h->host, "smtp.sendgrid.net");
		policy_set_str(&h->auth_user, "apikey");
	} else if (strcmp(preset, "ses") == 0) {
		if (region == NULL || region[0] == '\0') {
			snprintf(err, errlen,
			    "preset ses needs a region (e.g. eu-west-1)");
			return -1;
		}
		for (const char *p = region; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') ||
			        (*p >= '0' && *p <= '9') || *p == '-')) {
				snprintf(err, errlen,
				    "'%.64s' is not an AWS region name",
				    region);
				return -1;
			}
		snprintf(host, sizeof(host), "email-smtp.%.64s.amazonaws.com",
		    region);
		policy_set_str(&h->host, host);
		h->max_rcpt = SES_MAX_RCPT;
		h->max_size = SES_MAX_SIZE;
	} else if (strcmp(preset, "mailgun") == 0) {
		policy_set_str(
		    &h->host, eu ? "smtp.eu.mailgun.org" : "smtp.mailgun.org");
	} else if (strcmp(preset, "m365") == 0) {
		policy_set_str(&h->host, "smtp.office365.com");
		h->max_conn = M365_MAX_CONN;
		h->rate_per_minute = M365_RATE;
	} else if (strcmp(preset, "google") == 0) {
		policy_set_str(&h->host, "smtp-relay.gmail.com");
		h->max_rcpt = GOOGLE_MAX_RCPT;
	} else {
		snprintf(err, errlen, "unknown preset '%.64s' (use %s)", preset,
		    hop_preset_names());
		return -1;
	}
	if (eu && strcmp(preset, "mailgun") != 0) {
		snprintf(
		    err, errlen, "--eu applies to the mailgun preset only");
		return -1;
	}
	policy_set_str(&h->preset, preset);
	h->port = 587;
	h->tls = SLUICE__TLS_MODE__TLS_REQUIRE;
	h->verify_cert = true;
	return 0;
}
