/* oauth_jwt.c - JWTs, token responses and the XOAUTH2 string.  JSON is
 * built and read with jansson (keys in a fixed order), signatures with
 * OpenSSL EVP. */
#include "oauth_jwt.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OAUTH_GOOGLE_LIFETIME_S 3600 /* Google's maximum */
#define OAUTH_M365_LIFETIME_S   600

static char *
oauth_b64(const unsigned char *in, size_t len, bool url)
{
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	                          "opqrstuvwxyz0123456789+/";
	static const char web[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	                          "opqrstuvwxyz0123456789-_";
	const char *tab = url ? web : std;
	char *out = malloc(len / 3 * 4 + 5), *o = out;
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		if (i + 1 < len)
			*o++ = tab[(v >> 6) & 63];
		else if (!url)
			*o++ = '=';
		if (i + 2 < len)
			*o++ = tab[v & 63];
		else if (!url)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

char *
oauth_b64url(const unsigned char *in, size_t len)
{
	return oauth_b64(in, len, true);
}

static void
oauth_thumb(X509 *x, const EVP_MD *md, char *out, size_t outlen)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	char *b;

	out[0] = '\0';
	if (X509_digest(x, md, d, &dl) != 1 ||
	    (b = oauth_b64url(d, dl)) == NULL)
		return;
	snprintf(out, outlen, "%s", b);
	free(b);
}

int
oauth_load_key(const char *pem, bool want_cert, EVP_PKEY **key, char *x5t,
    size_t x5tlen, char *x5t256, size_t x5t256len, char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = NULL;

	*key = NULL;
	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (*key == NULL) {
		snprintf(err, errlen, "no PEM private key in the credential");
		return -1;
	}
	if (!EVP_PKEY_is_a(*key, "RSA")) {
		snprintf(
		    err, errlen, "the credential's key is not RSA (RS256)");
		goto fail;
	}
	if (!want_cert)
		return 0;
	if ((b = BIO_new_mem_buf(pem, -1)) != NULL) {
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if (x == NULL) {
		snprintf(err, errlen,
		    "no PEM certificate beside the key in the credential");
		goto fail;
	}
	if (X509_check_private_key(x, *key) != 1) {
		X509_free(x);
		snprintf(err, errlen, "the certificate is not the key's");
		goto fail;
	}
	oauth_thumb(x, EVP_sha1(), x5t, x5tlen);
	oauth_thumb(x, EVP_sha256(), x5t256, x5t256len);
	X509_free(x);
	return 0;
fail:
	EVP_PKEY_free(*key);
	*key = NULL;
	return -1;
}

char *
oauth_jwt_sign(const char *header_json, const char *claims_json, EVP_PKEY *key,
    char *err, size_t errlen)
{
	char *h = NULL, *c = NULL, *s = NULL, *out = NULL, *input = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0, il;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	h = oauth_b64url(
	    (const unsigned char *)header_json, strlen(header_json));
	c = oauth_b64url(
	    (const unsigned char *)claims_json, strlen(claims_json));
	if (md == NULL || h == NULL || c == NULL)
		goto nomem;
	il = strlen(h) + 1 + strlen(c);
	if ((input = malloc(il + 1)) == NULL)
		goto nomem;
	snprintf(input, il + 1, "%s.%s", h, c);
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (unsigned char *)input, il) !=
	        1 ||
	    (sig = malloc(siglen)) == NULL ||
	    EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, il) != 1) {
		snprintf(err, errlen, "cannot sign the JWT with the key");
		goto done;
	}
	if ((s = oauth_b64url(sig, siglen)) == NULL)
		goto nomem;
	if ((out = malloc(il + 1 + strlen(s) + 1)) == NULL)
		goto nomem;
	sprintf(out, "%s.%s", input, s);
	goto done;
nomem:
	snprintf(err, errlen, "out of memory");
done:
	EVP_MD_CTX_free(md);
	free(h);
	free(c);
	free(s);
	free(sig);
	free(input);
	return out;
}

static char *
oauth_jwt_json(
    json_t *header, json_t *claims, EVP_PKEY *key, char *err, size_t errlen)
{
	char *hj = NULL, *cj = NULL, *out = NULL;

	if (header == NULL || claims == NULL ||
	    (hj = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
	        NULL ||
	    (cj = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER)) ==
	        NULL)
		snprintf(err, errlen, "cannot build the JWT");
	else
		out = oauth_jwt_sign(hj, cj, key, err, errlen);
	free(hj);
	free(cj);
	json_decref(header);
	json_decref(claims);
	return out;
}

char *
oauth_jwt_google(const char *client_email, const char *sub, const char *scope,
    const char *aud, int64_t now_s, EVP_PKEY *key, char *err, size_t errlen)
{
	return oauth_jwt_json(
	    json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT"),
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", client_email,
	        "sub", sub, "scope", scope, "aud", aud, "iat",
	        (json_int_t)now_s, "exp",
	        (json_int_t)(now_s + OAUTH_GOOGLE_LIFETIME_S)),
	    key, err, errlen);
}

char *
oauth_jwt_m365(const char *client_id, const char *aud, const char *x5t,
    const char *x5t256, const char *jti, int64_t now_s, EVP_PKEY *key,
    char *err, size_t errlen)
{
	return oauth_jwt_json(json_pack("{s:s, s:s, s:s, s:s}", "alg", "RS256",
	                          "typ", "JWT", "x5t", x5t, "x5t#S256", x5t256),
	    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", aud, "iss",
	        client_id, "sub", client_id, "jti", jti, "nbf",
	        (json_int_t)now_s, "iat", (json_int_t)now_s, "exp",
	        (json_int_t)(now_s + OAUTH_M365_LIFETIME_S)),
	    key, err, errlen);
}

char *
oauth_form(const char *const *kv, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, len = 1;
	char *out, *o;
	const char *s;

	for (i = 0; i < 2 * n; i++)
		len += strlen(kv[i]) * 3 + 1;
	if ((out = malloc(len)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i < 2 * n; i++) {
		if (i > 0)
			*o++ = i % 2 ? '=' : '&';
		for (s = kv[i]; *s; s++) {
			unsigned char ch = (unsigned char)*s;

			if ((ch >= 'A' && ch <= 'Z') ||
			    (ch >= 'a' && ch <= 'z') ||
			    (ch >= '0' && ch <= '9') || ch == '-' ||
			    ch == '.' || ch == '_' || ch == '~')
				*o++ = (char)ch;
			else {
				*o++ = '%';
				*o++ = hex[ch >> 4];
				*o++ = hex[ch & 15];
			}
		}
	}
	*o = '\0';
	return out;
}

/* Printable, one line: what an endpoint says goes into a log line. */
static void
oauth_clean(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s >= 0x7f ||
		    *s == '"')
			*s = ' ';
}

int
oauth_parse_response(long http_status, const char *body, size_t len,
    char **token, int64_t *expires_in_s, char *err, size_t errlen)
{
	json_t *j = json_loadb(body, len, 0, NULL), *v;
	const char *e, *d;

	*token = NULL;
	*expires_in_s = 0;
	if (j == NULL || !json_is_object(j)) {
		snprintf(err, errlen, "HTTP %ld, %s", http_status,
		    len == 0 ? "empty body" : "the body is not JSON");
		json_decref(j);
		return -1;
	}
	if (http_status != 200) {
		e = json_string_value(json_object_get(j, "error"));
		d = json_string_value(json_object_get(j, "error_description"));
		snprintf(err, errlen, "HTTP %ld %s%s%.160s", http_status,
		    e ? e : "error", d ? ": " : "", d ? d : "");
		oauth_clean(err);
		json_decref(j);
		return -1;
	}
	v = json_object_get(j, "access_token");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > 16384) {
		snprintf(err, errlen, "HTTP 200 without an access_token");
		json_decref(j);
		return -1;
	}
	for (e = json_string_value(v); *e; e++)
		if ((unsigned char)*e <= ' ' || (unsigned char)*e >= 0x7f) {
			snprintf(err, errlen,
			    "HTTP 200 with an unprintable access_token");
			json_decref(j);
			return -1;
		}
	e = json_string_value(json_object_get(j, "token_type"));
	if (e != NULL && strcasecmp(e, "bearer") != 0) {
		snprintf(err, errlen, "token_type '%.32s' is not Bearer", e);
		oauth_clean(err);
		json_decref(j);
		return -1;
	}
	/* A number, or (some endpoints) a string of digits. */
	v = json_object_get(j, "expires_in");
	if (json_is_integer(v))
		*expires_in_s = json_integer_value(v);
	else if (json_is_string(v))
		*expires_in_s = strtoll(json_string_value(v), NULL, 10);
	else
		*expires_in_s = 3600;
	if (*expires_in_s <= 0 || *expires_in_s > 86400 * 7) {
		snprintf(err, errlen, "HTTP 200 with expires_in %lld",
		    (long long)*expires_in_s);
		json_decref(j);
		return -1;
	}
	if ((*token = strdup(json_string_value(
	         json_object_get(j, "access_token")))) == NULL) {
		snprintf(err, errlen, "out of memory");
		json_decref(j);
		return -1;
	}
	json_decref(j);
	return 0;
}

enum oauth_freshness
oauth_freshness(int64_t got_ms, int64_t lifetime_ms, int64_t now_ms)
{
	int64_t margin = lifetime_ms / 10;

	if (margin > 60000)
		margin = 60000;
	if (now_ms < got_ms + lifetime_ms / 5 * 4)
		return OAUTH_FRESH;
	if (now_ms < got_ms + lifetime_ms - margin)
		return OAUTH_REFRESH;
	return OAUTH_EXPIRED;
}

char *
oauth_xoauth2(const char *user, const char *token)
{
	size_t len = 5 + strlen(user) + 1 + 12 + strlen(token) + 2;
	char *raw = malloc(len + 1), *out;

	if (raw == NULL)
		return NULL;
	snprintf(
	    raw, len + 1, "user=%s\001auth=Bearer %s\001\001", user, token);
	out = oauth_b64((const unsigned char *)raw, len, false);
	explicit_bzero(raw, len);
	free(raw);
	return out;
}
