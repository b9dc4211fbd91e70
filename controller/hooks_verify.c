/* hooks_verify.c - provider webhook signatures (hooks_verify.h).  Pure:
 * everything arrives as arguments, `now` included; OpenSSL EVP does the
 * cryptography.  Called by hooks_http.c; table-tested by
 * tests/store/test_hooks_verify.c. */
#include "hooks_verify.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define HV_B64_MAX 8192 /* longest key or signature decoded */

const char *
hooks_verdict_name(enum hooks_verdict v)
{
	switch (v) {
	case HOOKS_OK:
		return "ok";
	case HOOKS_UNSIGNED:
		return "unsigned";
	case HOOKS_FORGED:
		return "forged";
	case HOOKS_STALE:
		return "stale";
	case HOOKS_REPLAY:
		return "replay";
	case HOOKS_BADKEY:
		return "badkey";
	}
	return "?";
}

int64_t
hooks_unix_time(const char *s)
{
	int64_t v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 12)
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

int64_t
hooks_iso_time(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;

	if (s == NULL ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
	        &n) != 6 ||
	    n != 19)
		return -1;
	s += n;
	if (*s == '.') /* a fraction of a second: ignored */
		for (s++; isdigit((unsigned char)*s); s++)
			;
	if (strcmp(s, "Z") != 0 || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (int64_t)timegm(&tm);
}

static bool
hv_fresh(int64_t at, int64_t now, int64_t max_age_s)
{
	return at >= 0 && at <= now + max_age_s && now - at <= max_age_s;
}

/* Strict base64 with padding (whitespace not allowed); malloc'd bytes or
 * NULL. */
static unsigned char *
hv_b64(const char *s, size_t *len)
{
	size_t n = strlen(s), pad = 0;
	unsigned char *out;
	int k;

	if (n == 0 || n % 4 != 0 || n > HV_B64_MAX)
		return NULL;
	if ((out = malloc(n / 4 * 3 + 1)) == NULL)
		return NULL;
	if ((k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n)) < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	*len = (size_t)k - pad;
	return out;
}

/* Verifies sig over the concatenation of two parts with key and md. */
static enum hooks_verdict
hv_verify(EVP_PKEY *key, const EVP_MD *md, const unsigned char *sig,
    size_t siglen, const void *a, size_t alen, const void *b, size_t blen)
{
	EVP_MD_CTX *ctx;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return HOOKS_BADKEY;
	ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
	     EVP_DigestVerifyUpdate(ctx, a, alen) == 1 &&
	     (blen == 0 || EVP_DigestVerifyUpdate(ctx, b, blen) == 1) &&
	     EVP_DigestVerifyFinal(ctx, sig, siglen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? HOOKS_OK : HOOKS_FORGED;
}

enum hooks_verdict
hooks_verify_sendgrid(const char *pubkey_b64, const char *sig_b64,
    const char *ts, const void *body, size_t len, int64_t now,
    int64_t max_age_s)
{
	unsigned char *der, *sig;
	const unsigned char *p;
	size_t derlen, siglen;
	EVP_PKEY *key;
	enum hooks_verdict v;

	if (sig_b64 == NULL || ts == NULL || *sig_b64 == '\0' || *ts == '\0')
		return HOOKS_UNSIGNED;
	if (pubkey_b64 == NULL || (der = hv_b64(pubkey_b64, &derlen)) == NULL)
		return HOOKS_BADKEY;
	p = der;
	key = d2i_PUBKEY(NULL, &p, (long)derlen);
	free(der);
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
		EVP_PKEY_free(key);
		return HOOKS_BADKEY;
	}
	if ((sig = hv_b64(sig_b64, &siglen)) == NULL) {
		EVP_PKEY_free(key);
		return HOOKS_FORGED;
	}
	v = hv_verify(
	    key, EVP_sha256(), sig, siglen, ts, strlen(ts), body, len);
	free(sig);
	EVP_PKEY_free(key);
	/* The signature first: a forged request is "forged", whatever its
	 * timestamp says. */
	if (v == HOOKS_OK && !hv_fresh(hooks_unix_time(ts), now, max_age_s))
		v = HOOKS_STALE;
	return v;
}

enum hooks_verdict
hooks_verify_mailgun(const char *key, const char *ts, const char *token,
    const char *sig_hex, int64_t now, int64_t max_age_s)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1], lower[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int mdlen, i;
	size_t tlen, klen, n;
	unsigned char *msg;
	bool same;

	if (ts == NULL || token == NULL || sig_hex == NULL || *ts == '\0' ||
	    *token == '\0' || *sig_hex == '\0')
		return HOOKS_UNSIGNED;
	if (key == NULL || *key == '\0')
		return HOOKS_BADKEY;
	tlen = strlen(ts);
	n = tlen + strlen(token);
	if ((msg = malloc(n + 1)) == NULL)
		return HOOKS_BADKEY;
	memcpy(msg, ts, tlen);
	memcpy(msg + tlen, token, n - tlen);
	klen = strlen(key);
	if (HMAC(EVP_sha256(), key, (int)klen, msg, n, md, &mdlen) == NULL) {
		free(msg);
		return HOOKS_BADKEY;
	}
	free(msg);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	n = strlen(sig_hex);
	if (n != 2 * (size_t)mdlen)
		return HOOKS_FORGED;
	for (i = 0; i < n; i++)
		lower[i] = (char)tolower((unsigned char)sig_hex[i]);
	lower[n] = '\0';
	same = CRYPTO_memcmp(hex, lower, n) == 0;
	if (!same)
		return HOOKS_FORGED;
	if (!hv_fresh(hooks_unix_time(ts), now, max_age_s))
		return HOOKS_STALE;
	return HOOKS_OK;
}

bool
hooks_secret_equal(const char *a, const char *b)
{
	unsigned char da[32], db[32];
	unsigned int n;

	/* Equal-length digests: the comparison does not leak the length. */
	if (a == NULL || b == NULL ||
	    EVP_Digest(a, strlen(a), da, &n, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(b, strlen(b), db, &n, EVP_sha256(), NULL) != 1)
		return false;
	return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}

enum hooks_verdict
hooks_verify_basic(
    const char *authorization, const char *user, const char *pass)
{
	unsigned char *raw;
	char *want;
	size_t len, wlen;
	bool ok;

	if (authorization == NULL || strncasecmp(authorization, "Basic ", 6))
		return HOOKS_UNSIGNED;
	if (user == NULL || pass == NULL || *user == '\0' || *pass == '\0')
		return HOOKS_BADKEY;
	for (authorization += 6; *authorization == ' '; authorization++)
		;
	if ((raw = hv_b64(authorization, &len)) == NULL)
		return HOOKS_FORGED;
	raw[len] = '\0';
	wlen = strlen(user) + strlen(pass) + 2;
	if ((want = malloc(wlen)) == NULL) {
		OPENSSL_clear_free(raw, len + 1);
		return HOOKS_BADKEY;
	}
	snprintf(want, wlen, "%s:%s", user, pass);
	ok = strlen((char *)raw) == len &&
	     hooks_secret_equal((const char *)raw, want);
	OPENSSL_clear_free(raw, len + 1);
	OPENSSL_clear_free(want, wlen);
	return ok ? HOOKS_OK : HOOKS_FORGED;
}

/* ---------------------------------------------------------------- SNS */

static int
hv_line(
    char **buf, size_t *len, size_t *cap, const char *name, const char *value)
{
	size_t need = strlen(name) + strlen(value) + 2;
	char *n;

	if (*len + need + 1 > *cap) {
		*cap = (*len + need + 1) * 2;
		if ((n = realloc(*buf, *cap)) == NULL)
			return -1;
		*buf = n;
	}
	*len +=
	    (size_t)snprintf(*buf + *len, *cap - *len, "%s\n%s\n", name, value);
	return 0;
}

char *
hooks_sns_canonical(const struct hooks_sns *m)
{
	const char *names[8], *values[8];
	size_t n = 0, i, len = 0, cap = 0;
	char *buf = NULL;

	if (m->type == NULL)
		return NULL;
	if (strcmp(m->type, "Notification") == 0) {
		names[n] = "Message", values[n++] = m->message;
		names[n] = "MessageId", values[n++] = m->message_id;
		if (m->subject != NULL)
			names[n] = "Subject", values[n++] = m->subject;
		names[n] = "Timestamp", values[n++] = m->timestamp;
		names[n] = "TopicArn", values[n++] = m->topic_arn;
		names[n] = "Type", values[n++] = m->type;
	} else if (strcmp(m->type, "SubscriptionConfirmation") == 0 ||
	           strcmp(m->type, "UnsubscribeConfirmation") == 0) {
		names[n] = "Message", values[n++] = m->message;
		names[n] = "MessageId", values[n++] = m->message_id;
		names[n] = "SubscribeURL", values[n++] = m->subscribe_url;
		names[n] = "Timestamp", values[n++] = m->timestamp;
		names[n] = "Token", values[n++] = m->token;
		names[n] = "TopicArn", values[n++] = m->topic_arn;
		names[n] = "Type", values[n++] = m->type;
	} else
		return NULL;
	for (i = 0; i < n; i++) {
		if (values[i] == NULL ||
		    hv_line(&buf, &len, &cap, names[i], values[i]) == -1) {
			free(buf);
			return NULL;
		}
	}
	return buf;
}

/* https://<host>/..., the host as SNS's (or test_host), no user info;
 * *path set to the path.  The path: printable, no backslash or %. */
static bool
hv_sns_host(const char *url, const char *test_host, const char **path)
{
	const char *host, *end, *p;
	size_t hlen;

	if (url == NULL || strncmp(url, "https://", 8) != 0)
		return false;
	host = url + 8;
	if ((end = strchr(host, '/')) == NULL)
		return false;
	hlen = (size_t)(end - host);
	for (p = end; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || *p == '\\' || *p == '#')
			return false;
	*path = end;
	if (test_host != NULL)
		return hlen == strlen(test_host) &&
		       strncmp(host, test_host, hlen) == 0;
	/* sns.<region>.amazonaws.com: no user info, no port */
	if (hlen < 4 + 1 + 14 || strncmp(host, "sns.", 4) != 0 ||
	    strncmp(end - 14, ".amazonaws.com", 14) != 0)
		return false;
	for (p = host + 4; p < end - 14; p++)
		if (!(islower((unsigned char)*p) ||
		        isdigit((unsigned char)*p) || *p == '-'))
			return false;
	return true;
}

bool
hooks_sns_url_ok(const char *url, const char *test_host)
{
	const char *path;

	return hv_sns_host(url, test_host, &path);
}

bool
hooks_sns_cert_url_ok(const char *url, const char *test_host)
{
	const char *path;
	size_t plen;

	if (!hv_sns_host(url, test_host, &path))
		return false;
	/* no query, no escapes, no "..": a plain path to a .pem file */
	plen = strlen(path);
	if (strpbrk(path, "?%") != NULL || strstr(path, "..") != NULL ||
	    plen < 5 || strcmp(path + plen - 4, ".pem") != 0)
		return false;
	return true;
}

enum hooks_verdict
hooks_verify_sns(const struct hooks_sns *m, const char *cert_pem,
    size_t cert_len, int64_t now, int64_t max_age_s)
{
	const EVP_MD *md;
	unsigned char *sig;
	size_t siglen;
	char *canon;
	X509 *x = NULL;
	EVP_PKEY *key = NULL;
	BIO *bio;
	enum hooks_verdict v;

	if (m->signature == NULL || m->signature_version == NULL ||
	    *m->signature == '\0')
		return HOOKS_UNSIGNED;
	if (strcmp(m->signature_version, "1") == 0)
		md = EVP_sha1();
	else if (strcmp(m->signature_version, "2") == 0)
		md = EVP_sha256();
	else
		return HOOKS_FORGED;
	if ((canon = hooks_sns_canonical(m)) == NULL)
		return HOOKS_FORGED;
	if ((bio = BIO_new_mem_buf(cert_pem, (int)cert_len)) != NULL) {
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (x == NULL || (key = X509_get_pubkey(x)) == NULL ||
	    EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		X509_free(x);
		EVP_PKEY_free(key);
		free(canon);
		return HOOKS_BADKEY;
	}
	if ((sig = hv_b64(m->signature, &siglen)) == NULL)
		v = HOOKS_FORGED;
	else
		v = hv_verify(
		    key, md, sig, siglen, canon, strlen(canon), NULL, 0);
	free(sig);
	free(canon);
	EVP_PKEY_free(key);
	X509_free(x);
	if (v == HOOKS_OK &&
	    !hv_fresh(hooks_iso_time(m->timestamp), now, max_age_s))
		v = HOOKS_STALE;
	return v;
}
