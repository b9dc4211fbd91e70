/* test_hooks_verify.c - unit tests of controller/hooks_verify.c: each
 * provider's signature scheme with keys generated here (ECDSA P-256 for
 * SendGrid, HMAC for Mailgun, an RSA certificate for SNS versions 1 and 2),
 * as tables of (what is changed, expected verdict); the SNS certificate
 * URL rule; Basic credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hooks_verify.h"

#define NOW 1765000000

static char *
b64(const unsigned char *p, size_t n)
{
	char *out = malloc(4 * (n / 3 + 2));

	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static char *
sign(EVP_PKEY *k, const EVP_MD *md, const char *a, const char *b)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t len = sizeof(sig);

	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
	assert_int_equal(EVP_DigestSignUpdate(ctx, a, strlen(a)), 1);
	if (b != NULL)
		assert_int_equal(EVP_DigestSignUpdate(ctx, b, strlen(b)), 1);
	assert_int_equal(EVP_DigestSignFinal(ctx, sig, &len), 1);
	EVP_MD_CTX_free(ctx);
	return b64(sig, len);
}

static void
test_times(void **state)
{
	(void)state;
	assert_int_equal(hooks_unix_time("1700000000"), 1700000000);
	assert_int_equal(hooks_unix_time("17x"), -1);
	assert_int_equal(hooks_unix_time(""), -1);
	assert_int_equal(hooks_unix_time(NULL), -1);
	assert_int_equal(
	    hooks_iso_time("2012-04-26T20:45:04.751Z"), 1335473104);
	assert_int_equal(hooks_iso_time("2012-04-26T20:45:04Z"), 1335473104);
	assert_int_equal(hooks_iso_time("2012-04-26T20:45:04+02:00"), -1);
	assert_int_equal(hooks_iso_time("2012-13-26T20:45:04Z"), -1);
	assert_int_equal(hooks_iso_time("junk"), -1);
}

struct sg_case {
	const char *what, *key, *sig, *ts, *body;
	enum hooks_verdict want;
};

static void
test_sendgrid(void **state)
{
	static const char body[] =
	    "[{\"email\":\"a@example.com\",\"event\":\"delivered\"}]\r\n";
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	unsigned char *der = NULL;
	char ts[24], old[24], *pub, *sig, *sig_old, *sig_other;
	int len;
	struct sg_case *c, cases[7];

	(void)state;
	assert_non_null(k);
	len = i2d_PUBKEY(k, &der);
	pub = b64(der, (size_t)len);
	OPENSSL_free(der);
	snprintf(ts, sizeof(ts), "%d", NOW - 10);
	snprintf(old, sizeof(old), "%d", NOW - 3600);
	sig = sign(k, EVP_sha256(), ts, body);
	sig_old = sign(k, EVP_sha256(), old, body);
	sig_other = sign(other, EVP_sha256(), ts, body);
	c = cases;
	*c++ = (struct sg_case){"good", pub, sig, ts, body, HOOKS_OK};
	*c++ =
	    (struct sg_case){"no signature", pub, "", ts, body, HOOKS_UNSIGNED};
	*c++ = (struct sg_case){"body changed", pub, sig, ts,
	    "[{\"email\":\"b@example.com\",\"event\":\"delivered\"}]\r\n",
	    HOOKS_FORGED};
	*c++ = (struct sg_case){
	    "timestamp changed", pub, sig, old, body, HOOKS_FORGED};
	*c++ = (struct sg_case){
	    "signed an hour ago", pub, sig_old, old, body, HOOKS_STALE};
	*c++ = (struct sg_case){
	    "another key", pub, sig_other, ts, body, HOOKS_FORGED};
	*c++ = (struct sg_case){
	    "our key broken", "AAAA", sig, ts, body, HOOKS_BADKEY};
	for (c = cases; c < cases + 7; c++) {
		enum hooks_verdict v = hooks_verify_sendgrid(
		    c->key, c->sig, c->ts, c->body, strlen(c->body), NOW, 600);

		if (v != c->want)
			fail_msg("sendgrid %s: %s, want %s", c->what,
			    hooks_verdict_name(v), hooks_verdict_name(c->want));
	}
	free(pub);
	free(sig);
	free(sig_old);
	free(sig_other);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

static void
hmac_hex(const char *key, const char *ts, const char *token, char *out)
{
	unsigned char md[32];
	unsigned int n, i;
	char msg[256];

	snprintf(msg, sizeof(msg), "%s%s", ts, token);
	HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)msg,
	    strlen(msg), md, &n);
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
test_mailgun(void **state)
{
	char ts[24], old[24], good[65], stale[65], upper[65];
	const char *tok = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
	size_t i;
	struct {
		const char *what, *key, *ts, *token, *sig;
		enum hooks_verdict want;
	} cases[] = {
	    {"good", "key-1", ts, tok, good, HOOKS_OK},
	    {"upper-case hex", "key-1", ts, tok, upper, HOOKS_OK},
	    {"other key", "key-2", ts, tok, good, HOOKS_FORGED},
	    {"other token", "key-1", ts, "b", good, HOOKS_FORGED},
	    {"short signature", "key-1", ts, tok, "abcd", HOOKS_FORGED},
	    {"no signature", "key-1", ts, tok, "", HOOKS_UNSIGNED},
	    {"no token", "key-1", ts, NULL, good, HOOKS_UNSIGNED},
	    {"stale", "key-1", old, tok, stale, HOOKS_STALE},
	    {"no key configured", "", ts, tok, good, HOOKS_BADKEY},
	};

	(void)state;
	snprintf(ts, sizeof(ts), "%d", NOW + 5);
	snprintf(old, sizeof(old), "%d", NOW - 601);
	hmac_hex("key-1", ts, tok, good);
	hmac_hex("key-1", old, tok, stale);
	for (i = 0; i < 65; i++)
		upper[i] = (char)(good[i] >= 'a' ? good[i] - 32 : good[i]);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum hooks_verdict v = hooks_verify_mailgun(cases[i].key,
		    cases[i].ts, cases[i].token, cases[i].sig, NOW, 600);

		if (v != cases[i].want)
			fail_msg("mailgun %s: %s", cases[i].what,
			    hooks_verdict_name(v));
	}
}

static void
test_basic(void **state)
{
	(void)state;
	/* base64("pm:hunter2") */
	assert_int_equal(
	    hooks_verify_basic("Basic cG06aHVudGVyMg==", "pm", "hunter2"),
	    HOOKS_OK);
	assert_int_equal(
	    hooks_verify_basic("basic  cG06aHVudGVyMg==", "pm", "hunter2"),
	    HOOKS_OK);
	assert_int_equal(
	    hooks_verify_basic("Basic cG06aHVudGVyMg==", "pm", "hunter3"),
	    HOOKS_FORGED);
	assert_int_equal(
	    hooks_verify_basic("Basic cG06aHVudGVyMg", "pm", "hunter2"),
	    HOOKS_FORGED); /* padding missing: not base64 */
	assert_int_equal(
	    hooks_verify_basic("Basic cG06aHVudGVy", "pm", "hunter"),
	    HOOKS_OK); /* "pm:hunter": 9 bytes need no padding */
	assert_int_equal(
	    hooks_verify_basic("Basic !!!!", "pm", "hunter2"), HOOKS_FORGED);
	assert_int_equal(
	    hooks_verify_basic("Bearer cG06aHVudGVyMg==", "pm", "hunter2"),
	    HOOKS_UNSIGNED);
	assert_int_equal(
	    hooks_verify_basic(NULL, "pm", "hunter2"), HOOKS_UNSIGNED);
	assert_int_equal(hooks_verify_basic("Basic cG06aHVudGVyMg==", "pm", ""),
	    HOOKS_BADKEY);
	assert_true(hooks_secret_equal("abc", "abc"));
	assert_false(hooks_secret_equal("abc", "abcd"));
	assert_false(hooks_secret_equal("abc", NULL));
}

static void
test_sns_url(void **state)
{
	static const struct {
		const char *url, *test_host;
		bool ok;
	} cases[] = {
	    {"https://sns.us-east-1.amazonaws.com/"
	     "SimpleNotificationService-0123.pem",
	        NULL, true},
	    {"https://sns.eu-west-3.amazonaws.com/x.pem", NULL, true},
	    {"http://sns.us-east-1.amazonaws.com/x.pem", NULL, false},
	    {"https://sns.us-east-1.amazonaws.com.evil.test/x.pem", NULL,
	        false},
	    {"https://evil.test/sns.us-east-1.amazonaws.com/x.pem", NULL,
	        false},
	    {"https://sns.us-east-1.amazonaws.com:8443/x.pem", NULL, false},
	    {"https://a@sns.us-east-1.amazonaws.com/x.pem", NULL, false},
	    {"https://sns..amazonaws.com/x.pem", NULL, false},
	    {"https://sns.US-EAST-1.amazonaws.com/x.pem", NULL, false},
	    {"https://sns.us-east-1.amazonaws.com/x.txt", NULL, false},
	    {"https://sns.us-east-1.amazonaws.com/x.pem?a=.pem", NULL, false},
	    {"https://sns.us-east-1.amazonaws.com/../x.pem", NULL, false},
	    {"https://sns.us-east-1.amazonaws.com", NULL, false},
	    {"https://127.0.0.1:4443/cert.pem", "127.0.0.1:4443", true},
	    {"https://127.0.0.1:4444/cert.pem", "127.0.0.1:4443", false},
	    {"https://sns.us-east-1.amazonaws.com/x.pem", "127.0.0.1:4443",
	        false},
	    {NULL, NULL, false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (hooks_sns_cert_url_ok(cases[i].url, cases[i].test_host) !=
		    cases[i].ok)
			fail_msg(
			    "sns url %s: want %d", cases[i].url, cases[i].ok);
}

/* A self-signed RSA certificate, PEM. */
static char *
make_cert(EVP_PKEY *k, size_t *len)
{
	X509 *x = X509_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"sns.amazonaws.com", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	X509_free(x);
	return out;
}

static void
test_sns(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	struct hooks_sns m = {
	    .type = "Notification",
	    .message_id = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
	    .topic_arn = "arn:aws:sns:us-west-2:123456789012:ses",
	    .subject = NULL,
	    .message = "{\"notificationType\":\"Bounce\"}",
	    .timestamp = "2025-12-06T05:46:30.000Z",
	};
	struct hooks_sns c = m;
	char *pem, *opem, *canon, *s1, *s2, *sother;
	size_t len, olen;
	int64_t at = hooks_iso_time(m.timestamp);

	(void)state;
	pem = make_cert(k, &len);
	opem = make_cert(other, &olen);
	canon = hooks_sns_canonical(&m);
	assert_string_equal(canon,
	    "Message\n{\"notificationType\":\"Bounce\"}\n"
	    "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
	    "Timestamp\n2025-12-06T05:46:30.000Z\n"
	    "TopicArn\narn:aws:sns:us-west-2:123456789012:ses\n"
	    "Type\nNotification\n");
	s1 = sign(k, EVP_sha1(), canon, NULL);
	s2 = sign(k, EVP_sha256(), canon, NULL);
	sother = sign(other, EVP_sha256(), canon, NULL);

	m.signature_version = "1";
	m.signature = s1;
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 5, 3600), HOOKS_OK);
	m.signature_version = "2";
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 5, 3600), HOOKS_FORGED);
	m.signature = s2;
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 5, 3600), HOOKS_OK);
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 3601, 3600), HOOKS_STALE);
	assert_int_equal(
	    hooks_verify_sns(&m, opem, olen, at + 5, 3600), HOOKS_FORGED);
	assert_int_equal(
	    hooks_verify_sns(&m, "junk", 4, at + 5, 3600), HOOKS_BADKEY);
	m.signature_version = "3";
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 5, 3600), HOOKS_FORGED);
	m.signature_version = "2";
	m.signature = sother;
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 5, 3600), HOOKS_FORGED);
	/* a Subject that was not signed makes another string */
	m.signature = s2;
	m.subject = "x";
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 5, 3600), HOOKS_FORGED);
	m.subject = NULL;
	m.message = "{\"notificationType\":\"Complaint\"}";
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 5, 3600), HOOKS_FORGED);
	m.signature = NULL;
	assert_int_equal(
	    hooks_verify_sns(&m, pem, len, at + 5, 3600), HOOKS_UNSIGNED);

	/* SubscriptionConfirmation signs SubscribeURL and Token too */
	c.type = "SubscriptionConfirmation";
	c.message = "You have chosen to subscribe";
	c.token = "2336412f37";
	c.subscribe_url = "https://sns.us-west-2.amazonaws.com/?Action=x";
	free(canon);
	canon = hooks_sns_canonical(&c);
	assert_non_null(strstr(canon, "SubscribeURL\nhttps://sns.us-west-2."
	                              "amazonaws.com/?Action=x\nTimestamp\n"));
	assert_non_null(strstr(canon, "Token\n2336412f37\nTopicArn\n"));
	c.token = NULL;
	assert_null(hooks_sns_canonical(&c));
	c.type = "Other";
	assert_null(hooks_sns_canonical(&c));

	free(canon);
	free(s1);
	free(s2);
	free(sother);
	free(pem);
	free(opem);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_sendgrid),
	    cmocka_unit_test(test_mailgun),
	    cmocka_unit_test(test_basic),
	    cmocka_unit_test(test_sns_url),
	    cmocka_unit_test(test_sns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
