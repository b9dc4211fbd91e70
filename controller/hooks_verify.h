/* hooks_verify.h - pure checks of provider webhook signatures, each as its
 * provider documents it (docs/providers.md).  No I/O: the caller passes
 * the raw request parts, the secrets from policy and `now`; the SNS
 * signing certificate is passed in as PEM (hooks_http.c fetches and
 * caches it, only from a URL hooks_sns_cert_url_ok() accepts).  OpenSSL
 * EVP only. */
#ifndef SLUICE_HOOKS_VERIFY_H
#define SLUICE_HOOKS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hooks_verdict {
	HOOKS_OK = 0,
	HOOKS_UNSIGNED, /* no signature / credentials at all */
	HOOKS_FORGED,   /* signature or credentials do not match */
	HOOKS_STALE,    /* signed too long ago (or in the future) */
	HOOKS_REPLAY,   /* Mailgun token seen before (hooks_http.c) */
	HOOKS_BADKEY,   /* our configured key is unusable */
};

/* "ok", "unsigned", "forged", "stale", "replay", "badkey": logs and the
 * outcome label of sluice_hooks_requests_total. */
const char *hooks_verdict_name(enum hooks_verdict);

/* A Unix time from decimal digits; -1 when not one. */
int64_t hooks_unix_time(const char *s);
/* RFC 3339 "2012-04-26T20:45:04.751Z" (UTC, fraction optional) to Unix
 * seconds; -1 when not one. */
int64_t hooks_iso_time(const char *s);

/* SendGrid Signed Event Webhook: ECDSA P-256 / SHA-256 over timestamp
 * followed by the raw body; sig_b64 is the DER signature in base64
 * (X-Twilio-Email-Event-Webhook-Signature), ts the decimal timestamp
 * (X-Twilio-Email-Event-Webhook-Timestamp), pubkey_b64 the base64 DER
 * SubjectPublicKeyInfo the console shows.  |now - ts| > max_age_s is
 * stale. */
enum hooks_verdict hooks_verify_sendgrid(const char *pubkey_b64,
    const char *sig_b64, const char *ts, const void *body, size_t len,
    int64_t now, int64_t max_age_s);

/* Mailgun: hex HMAC-SHA256 with the webhook signing key over timestamp
 * followed by token (the body's "signature" object).  Token reuse is the
 * caller's check (it needs memory of earlier requests). */
enum hooks_verdict hooks_verify_mailgun(const char *key, const char *ts,
    const char *token, const char *sig_hex, int64_t now, int64_t max_age_s);

/* Postmark, Brevo: an Authorization header "Basic base64(user:pass)"
 * compared in constant time. */
enum hooks_verdict hooks_verify_basic(
    const char *authorization, const char *user, const char *pass);
/* Constant-time string equality (secret path tokens). */
bool hooks_secret_equal(const char *a, const char *b);

/* An SNS message's fields (pointers into the caller's parse; NULL when
 * absent). */
struct hooks_sns {
	const char *type; /* Notification, SubscriptionConfirmation, ... */
	const char *message_id;
	const char *token;
	const char *topic_arn;
	const char *subject;
	const char *message;
	const char *timestamp;
	const char *signature_version; /* "1" SHA1withRSA, "2" SHA256 */
	const char *signature;         /* base64 */
	const char *signing_cert_url;
	const char *subscribe_url;
};

/* The string SNS signs: for Notification the name/value lines of
 * Message, MessageId, Subject (when present), Timestamp, TopicArn, Type;
 * for (Un)SubscriptionConfirmation Message, MessageId, SubscribeURL,
 * Timestamp, Token, TopicArn, Type.  malloc'd, NULL when a field it
 * needs is missing or on ENOMEM. */
char *hooks_sns_canonical(const struct hooks_sns *);

/* Whether url may be fetched for a signing certificate: https, host
 * sns.<region>.amazonaws.com (region [a-z0-9-]+), a path ending in .pem,
 * no user info, no port.  test_host (NULL in production; the config key
 * hooks_sns_cert_host in tests) replaces that host rule with one exact
 * "host:port". */
bool hooks_sns_cert_url_ok(const char *url, const char *test_host);
/* The same host rule for a SubscriptionConfirmation's SubscribeURL (any
 * path and query). */
bool hooks_sns_url_ok(const char *url, const char *test_host);

/* Verifies an SNS message with the PEM certificate of its
 * SigningCertURL; a Timestamp older than max_age_s is stale. */
enum hooks_verdict hooks_verify_sns(const struct hooks_sns *,
    const char *cert_pem, size_t cert_len, int64_t now, int64_t max_age_s);

#endif
