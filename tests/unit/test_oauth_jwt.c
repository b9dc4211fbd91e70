/* test_oauth_jwt.c - the pure XOAUTH2 parts (lib/oauth_jwt.c): base64url,
 * the XOAUTH2 string, the form body, token responses, when a token is
 * refreshed, and JWTs whose signature verifies with the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "oauth_jwt.h"

static void
test_b64url(void **state)
{
	static const struct {
		const char *in, *out;
	} t[] = {
	    {"", ""},
	    {"f", "Zg"},
	    {"fo", "Zm8"},
	    {"foo", "Zm9v"},
	    {"\xfb\xff", "-_8"},
	    {"{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
	        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		char *s = oauth_b64url(
		    (const unsigned char *)t[i].in, strlen(t[i].in));
		assert_string_equal(s, t[i].out);
		free(s);
	}
}

static void
test_xoauth2_string(void **state)
{
	/* Google's documented example (developers.google.com, "OAuth 2.0
	 * Mechanism"). */
	char *s = oauth_xoauth2("someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");

	(void)state;
	assert_string_equal(s,
	    "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRm"
	    "dDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
	free(s);
}

static void
test_form(void **state)
{
	const char *kv[] = {"grant_type", "client_credentials", "scope",
	    "https://outlook.office365.com/.default", "client_secret",
	    "a b+c&d=~"};
	char *s = oauth_form(kv, 3);

	(void)state;
	assert_string_equal(s,
	    "grant_type=client_credentials&scope=https%3A%2F%2Foutlook."
	    "office365.com%2F.default&client_secret=a%20b%2Bc%26d%3D~");
	free(s);
}

static void
test_response(void **state)
{
	static const struct {
		long status;
		const char *body;
		int rc;
		const char *token;
		int64_t exp;
		const char *err; /* substring */
	} t[] = {
	    {200,
	        "{\"token_type\":\"Bearer\",\"expires_in\":3599,"
	        "\"ext_expires_in\":3599,\"access_token\":\"eyJ0.a.b\"}",
	        0, "eyJ0.a.b", 3599, NULL},
	    {200, "{\"access_token\":\"t\",\"expires_in\":\"120\"}", 0, "t",
	        120, NULL},
	    {200, "{\"access_token\":\"t\"}", 0, "t", 3600, NULL},
	    {200, "{\"access_token\":\"t\",\"token_type\":\"mac\"}", -1, NULL,
	        0, "not Bearer"},
	    {200, "{\"expires_in\":5}", -1, NULL, 0, "without an access_token"},
	    {200, "{\"access_token\":\"a b\"}", -1, NULL, 0, "unprintable"},
	    {200, "{\"access_token\":\"t\",\"expires_in\":0}", -1, NULL, 0,
	        "expires_in 0"},
	    {401,
	        "{\"error\":\"invalid_client\",\"error_description\":"
	        "\"AADSTS7000215: Invalid client secret "
	        "provided.\\r\\nTrace\"}",
	        -1, NULL, 0,
	        "HTTP 401 invalid_client: AADSTS7000215: Invalid client secret "
	        "provided.  Trace"},
	    {503, "<html>", -1, NULL, 0, "HTTP 503, the body is not JSON"},
	    {500, "", -1, NULL, 0, "HTTP 500, empty body"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		char *tok = NULL, err[256] = "";
		int64_t exp = 0;
		int rc = oauth_parse_response(t[i].status, t[i].body,
		    strlen(t[i].body), &tok, &exp, err, sizeof(err));

		assert_int_equal(rc, t[i].rc);
		if (rc == 0) {
			assert_string_equal(tok, t[i].token);
			assert_int_equal(exp, t[i].exp);
		} else {
			assert_null(tok);
			if (strstr(err, t[i].err) == NULL)
				fail_msg("case %zu: '%s' lacks '%s'", i, err,
				    t[i].err);
		}
		free(tok);
	}
}

static void
test_freshness(void **state)
{
	static const struct {
		int64_t got, life, now;
		enum oauth_freshness f;
	} t[] = {
	    {1000, 3600000, 1000, OAUTH_FRESH},
	    {1000, 3600000, 1000 + 2879999, OAUTH_FRESH},
	    {1000, 3600000, 1000 + 2880000, OAUTH_REFRESH}, /* 80 % */
	    {1000, 3600000, 1000 + 3539999, OAUTH_REFRESH},
	    {1000, 3600000, 1000 + 3540000, OAUTH_EXPIRED}, /* -60 s */
	    {0, 2000, 1599, OAUTH_FRESH},                   /* short-lived */
	    {0, 2000, 1600, OAUTH_REFRESH},
	    {0, 2000, 1800, OAUTH_EXPIRED}, /* -10 % */
	    {0, 2000, 999999, OAUTH_EXPIRED},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(*t); i++)
		if (oauth_freshness(t[i].got, t[i].life, t[i].now) != t[i].f)
			fail_msg("case %zu", i);
}

static unsigned char *
b64url_decode(const char *s, size_t len, size_t *outlen)
{
	char *b = calloc(1, len + 4);
	unsigned char *out = calloc(1, len + 4);
	size_t i;
	int n;

	for (i = 0; i < len; i++)
		b[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (i % 4)
		b[i++] = '=';
	n = EVP_DecodeBlock(out, (unsigned char *)b, (int)i);
	assert_true(n >= 0);
	*outlen = (size_t)n - (i - len);
	free(b);
	return out;
}

/* Splits a JWT, checks its RS256 signature with key, returns the
 * decoded header and claims. */
static void
jwt_open(const char *jwt, EVP_PKEY *key, json_t **h, json_t **c)
{
	const char *d1 = strchr(jwt, '.'), *d2 = strrchr(jwt, '.');
	unsigned char *hb, *cb, *sig;
	size_t hl, cl, sl;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	assert_non_null(d1);
	assert_true(d2 > d1);
	hb = b64url_decode(jwt, (size_t)(d1 - jwt), &hl);
	cb = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
	sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
	assert_int_equal(sl, 256);
	assert_int_equal(
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, sl,
	                     (const unsigned char *)jwt, (size_t)(d2 - jwt)),
	    1);
	*h = json_loadb((char *)hb, hl, 0, NULL);
	*c = json_loadb((char *)cb, cl, 0, NULL);
	assert_non_null(*h);
	assert_non_null(*c);
	EVP_MD_CTX_free(md);
	free(hb);
	free(cb);
	free(sig);
}

static char *
key_pem(EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	assert_int_equal(
	    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

static void
test_jwt_google(void **state)
{
	EVP_PKEY *gen = EVP_RSA_gen(2048), *key = NULL;
	char *pem = key_pem(gen), err[200], x5t[64], x5t256[64], *jwt;
	json_t *h, *c;

	(void)state;
	/* the PEM loads back (no certificate wanted for Google) */
	assert_int_equal(oauth_load_key(pem, false, &key, x5t, sizeof(x5t),
	                     x5t256, sizeof(x5t256), err, sizeof(err)),
	    0);
	/* a key without a certificate is refused where one is needed */
	{
		EVP_PKEY *k2 = NULL;
		assert_int_equal(
		    oauth_load_key(pem, true, &k2, x5t, sizeof(x5t), x5t256,
		        sizeof(x5t256), err, sizeof(err)),
		    -1);
		assert_non_null(strstr(err, "no PEM certificate"));
		assert_null(k2);
	}
	EVP_PKEY_free(key);
	assert_int_equal(oauth_load_key("junk", false, &key, x5t, sizeof(x5t),
	                     x5t256, sizeof(x5t256), err, sizeof(err)),
	    -1);
	assert_int_equal(oauth_load_key(pem, false, &key, x5t, sizeof(x5t),
	                     x5t256, sizeof(x5t256), err, sizeof(err)),
	    0);
	jwt = oauth_jwt_google("sa@p.iam.gserviceaccount.com",
	    "app@example.com", "https://mail.google.com/",
	    "https://oauth2.googleapis.com/token", 1700000000, key, err,
	    sizeof(err));
	assert_non_null(jwt);
	jwt_open(jwt, gen, &h, &c);
	assert_string_equal(
	    json_string_value(json_object_get(h, "alg")), "RS256");
	assert_string_equal(
	    json_string_value(json_object_get(h, "typ")), "JWT");
	assert_string_equal(json_string_value(json_object_get(c, "iss")),
	    "sa@p.iam.gserviceaccount.com");
	assert_string_equal(
	    json_string_value(json_object_get(c, "sub")), "app@example.com");
	assert_string_equal(json_string_value(json_object_get(c, "scope")),
	    "https://mail.google.com/");
	assert_string_equal(json_string_value(json_object_get(c, "aud")),
	    "https://oauth2.googleapis.com/token");
	assert_int_equal(
	    json_integer_value(json_object_get(c, "iat")), 1700000000);
	assert_int_equal(
	    json_integer_value(json_object_get(c, "exp")), 1700003600);
	json_decref(h);
	json_decref(c);
	free(jwt);

	/* Microsoft's assertion: x5t and x5t#S256 in the header, iss = sub
	 * = the application, a jti, ten minutes */
	jwt = oauth_jwt_m365("app-id",
	    "https://login.microsoftonline.com/t/"
	    "oauth2/v2.0/token",
	    "sha1thumb", "sha256thumb", "00ff", 1700000000, key, err,
	    sizeof(err));
	assert_non_null(jwt);
	jwt_open(jwt, gen, &h, &c);
	assert_string_equal(
	    json_string_value(json_object_get(h, "x5t")), "sha1thumb");
	assert_string_equal(
	    json_string_value(json_object_get(h, "x5t#S256")), "sha256thumb");
	assert_string_equal(
	    json_string_value(json_object_get(c, "iss")), "app-id");
	assert_string_equal(
	    json_string_value(json_object_get(c, "sub")), "app-id");
	assert_string_equal(
	    json_string_value(json_object_get(c, "jti")), "00ff");
	assert_int_equal(
	    json_integer_value(json_object_get(c, "nbf")), 1700000000);
	assert_int_equal(
	    json_integer_value(json_object_get(c, "exp")), 1700000600);
	json_decref(h);
	json_decref(c);
	free(jwt);
	free(pem);
	EVP_PKEY_free(key);
	EVP_PKEY_free(gen);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64url),
	    cmocka_unit_test(test_xoauth2_string),
	    cmocka_unit_test(test_form),
	    cmocka_unit_test(test_response),
	    cmocka_unit_test(test_freshness),
	    cmocka_unit_test(test_jwt_google),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
