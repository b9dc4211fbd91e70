/* test_dkim.c - the DKIM signing core (node/dkim.c): canonicalisation
 * tables (RFC 6376 3.4, its 3.4.5 example), chunking invariance, From:
 * domain parsing, header selection and the signature header's shape.
 * Verification by an independent implementation is tests/dkim/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim.h"
#include "signer.h"

static void
test_body_canon(void **state)
{
	static const struct {
		const char *in, *relaxed, *simple;
	} t[] = {
	    {"", "", "\r\n"},
	    {"\r\n", "", "\r\n"},
	    {"\r\n\r\n\r\n", "", "\r\n"},
	    {"abc", "abc\r\n", "abc\r\n"},
	    {"abc\r\n", "abc\r\n", "abc\r\n"},
	    {"a  b \t\r\n\r\n\r\n", "a b\r\n", "a  b \t\r\n"},
	    {" \r\n", "", " \r\n"},
	    {" \r\n \t \r\n", "", " \r\n \t \r\n"},
	    {"a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"},
	    {"a\r\n \r\nb\r\n", "a\r\n\r\nb\r\n", "a\r\n \r\nb\r\n"},
	    {"a\rb\r\n", "a\rb\r\n", "a\rb\r\n"},
	    {"a\r", "a\r\r\n", "a\r\r\n"},
	    {"a\r\r\n", "a\r\r\n", "a\r\r\n"},
	    {"a\nb\r\n", "a\nb\r\n", "a\nb\r\n"},
	    {"\tx", " x\r\n", "\tx\r\n"},
	    /* RFC 6376 3.4.5 */
	    {" C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n", " C \r\nD \t E\r\n"},
	    {".\r\n..\r\n", ".\r\n..\r\n", ".\r\n..\r\n"},
	};
	static const size_t chunks[] = {0, 1, 2, 3, 7};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]);
		     c++) {
			size_t n;
			char *o;

			o = dkim_canon_body(DKIM_RELAXED, t[i].in,
			    strlen(t[i].in), chunks[c], &n);
			if (n != strlen(t[i].relaxed) ||
			    memcmp(o, t[i].relaxed, n) != 0)
				fail_msg(
				    "relaxed case %zu chunk %zu", i, chunks[c]);
			free(o);
			o = dkim_canon_body(DKIM_SIMPLE, t[i].in,
			    strlen(t[i].in), chunks[c], &n);
			if (n != strlen(t[i].simple) ||
			    memcmp(o, t[i].simple, n) != 0)
				fail_msg(
				    "simple case %zu chunk %zu", i, chunks[c]);
			free(o);
		}
}

static void
test_header_canon(void **state)
{
	static const struct {
		const char *in, *relaxed;
	} t[] = {
	    /* RFC 6376 3.4.5 */
	    {"A: X\r\n", "a:X\r\n"},
	    {"B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n"},
	    {"Subject:   hello   world \r\n", "subject:hello world\r\n"},
	    {"X-Empty:\r\n", "x-empty:\r\n"},
	    {"X-Empty:  \r\n", "x-empty:\r\n"},
	    {"To: a@b,\r\n  c@d\r\n", "to:a@b, c@d\r\n"},
	    {"FROM:x\r\n", "from:x\r\n"},
	    {"Subject: Re: a:  b\r\n", "subject:Re: a: b\r\n"},
	    {"H: a:\r\n\tb\r\n", "h:a: b\r\n"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n;
		char *o = dkim_canon_header(
		    DKIM_RELAXED, t[i].in, strlen(t[i].in), &n);
		if (n != strlen(t[i].relaxed) ||
		    memcmp(o, t[i].relaxed, n) != 0)
			fail_msg("case %zu: '%.*s'", i, (int)n, o);
		free(o);
		o = dkim_canon_header(
		    DKIM_SIMPLE, t[i].in, strlen(t[i].in), &n);
		assert_int_equal(n, strlen(t[i].in));
		assert_memory_equal(o, t[i].in, n);
		free(o);
	}
}

static const char *
from_of(const char *msg, char *buf, size_t len)
{
	struct dkim_sign *s = dkim_sign_new(DKIM_BODY_RELAXED, 0);
	const char *d;

	assert_non_null(s);
	dkim_sign_update(s, msg, strlen(msg));
	d = dkim_sign_from_domain(s);
	snprintf(buf, len, "%s", d != NULL ? d : "(null)");
	dkim_sign_free(s);
	return buf;
}

static void
test_from_domain(void **state)
{
	static const struct {
		const char *msg, *dom;
	} t[] = {
	    {"From: a@Example.COM\r\n\r\nx\r\n", "example.com"},
	    {"From: Alice <alice@mail.example.org>\r\n\r\n",
	        "mail.example.org"},
	    {"from:\"Smith, J @ home\" <j@x.example>\r\n\r\n", "x.example"},
	    {"From: j@x.example (Jane @ work)\r\n\r\n", "x.example"},
	    {"From: (c@d) Jane\r\n <j@y.example>\r\n\r\n", "y.example"},
	    {"Subject: s\r\nFrom : <b@z.example >\r\n\r\n", "z.example"},
	    {"From: a@b.example, c@d.example\r\n\r\n", "(null)"},
	    {"From: a@b.example\r\nFrom: c@d.example\r\n\r\n", "(null)"},
	    {"From: undisclosed:;\r\n\r\n", "(null)"},
	    {"From: nobody\r\n\r\n", "(null)"},
	    {"From: <a@b..example>\r\n\r\n", "(null)"},
	    {"From: <a@b_c.example>\r\n\r\n", "(null)"},
	    {"To: a@b.example\r\n\r\n", "(null)"},
	    {"From: a@b.example\r\n", "b.example"}, /* no body */
	};
	char buf[300];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(from_of(t[i].msg, buf, sizeof(buf)), t[i].dom) != 0)
			fail_msg("case %zu: got %s", i, buf);
}

static char *
gen_pem(const char *type)
{
	EVP_PKEY *k = strcmp(type, "RSA") == 0
	                  ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
	                  : EVP_PKEY_Q_keygen(NULL, NULL, type);
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	assert_non_null(k);
	assert_int_equal(
	    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)n);
	BIO_free(b);
	EVP_PKEY_free(k);
	return s;
}

static const char msg[] =
    "Received: from x by y; Sun, 6 Dec 2026 10:00:00 +0000\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.net\r\n"
    "Subject: a subject that is long enough\r\n"
    "  to be folded\r\n"
    "Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "\r\n"
    "Hello  Bob \r\n"
    ".\r\n"
    "\r\n"
    "\r\n";

static char *
sign_chunked(const struct dkim_key *k, size_t chunk)
{
	struct dkim_sign *s = dkim_sign_new(DKIM_BODY_RELAXED, 0);
	struct dkim_sign_params p = {k, DKIM_RELAXED, DKIM_RELAXED, NULL};
	char err[128], *h;

	for (size_t off = 0; off < sizeof(msg) - 1; off += chunk)
		dkim_sign_update(s, msg + off,
		    sizeof(msg) - 1 - off < chunk ? sizeof(msg) - 1 - off
		                                  : chunk);
	assert_string_equal(dkim_sign_from_domain(s), "example.com");
	h = dkim_sign_header(s, &p, 1765000000, err, sizeof(err));
	if (h == NULL)
		fail_msg("%s", err);
	dkim_sign_free(s);
	return h;
}

static void
test_sign_shape(void **state)
{
	char *pem = gen_pem("ED25519"), err[128], *a, *b;
	struct dkim_key *k =
	    dkim_key_new("example.com", "s1", pem, err, sizeof(err));
	char *line, *save;

	(void)state;
	assert_non_null(k);
	assert_int_equal(dkim_key_alg(k), DKIM_ED25519_SHA256);
	/* Ed25519 is deterministic: any chunking, the same header */
	a = sign_chunked(k, 1);
	b = sign_chunked(k, sizeof(msg));
	assert_string_equal(a, b);
	free(b);
	b = sign_chunked(k, 5);
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "a=ed25519-sha256;"));
	assert_non_null(strstr(a, "d=example.com;"));
	assert_non_null(strstr(a, "s=s1;"));
	assert_non_null(strstr(a, "t=1765000000;"));
	/* From oversigned; Received not signed */
	assert_non_null(strstr(a, "h=from:from:subject:date:to:message-id;"));
	assert_int_equal(strncmp(a, "DKIM-Signature: v=1;", 20), 0);
	/* folded: no line over 78, continuation lines start with a tab */
	for (line = strtok_r(a, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		assert_true(strlen(line) <= 79);
		if (line != a)
			assert_int_equal(line[0], '\t');
	}
	free(a);
	free(b);
	dkim_key_free(k);
	free(pem);
}

static void
test_keys(void **state)
{
	char *pem = gen_pem("RSA"), err[128];
	struct dkim_key *k;

	(void)state;
	k = dkim_key_new("example.com", "r1", pem, err, sizeof(err));
	assert_non_null(k);
	assert_int_equal(dkim_key_alg(k), DKIM_RSA_SHA256);
	assert_string_equal(dkim_key_selector(k), "r1");
	dkim_key_free(k);
	free(pem);
	assert_null(
	    dkim_key_new("example.com", "x", "garbage", err, sizeof(err)));
	assert_string_equal(err, "not a PEM private key");
	pem = gen_pem("X25519");
	assert_null(dkim_key_new("example.com", "x", pem, err, sizeof(err)));
	assert_string_equal(err, "key is neither RSA nor Ed25519");
	free(pem);
}

static void
test_header_ceiling(void **state)
{
	char *pem = gen_pem("ED25519"), err[128], *h;
	struct dkim_key *k =
	    dkim_key_new("example.com", "s1", pem, err, sizeof(err));
	struct dkim_sign *s = dkim_sign_new(DKIM_BODY_RELAXED, 64);
	struct dkim_sign_params p = {k, DKIM_RELAXED, DKIM_RELAXED, NULL};

	(void)state;
	dkim_sign_update(s, msg, sizeof(msg) - 1);
	assert_null(dkim_sign_from_domain(s));
	h = dkim_sign_header(s, &p, 1, err, sizeof(err));
	assert_null(h);
	assert_string_equal(err, "header section too large to sign");
	/* simple body not hashed: refused, not a wrong signature */
	p.body_canon = DKIM_SIMPLE;
	dkim_sign_free(s);
	s = dkim_sign_new(DKIM_BODY_RELAXED, 0);
	dkim_sign_update(s, msg, sizeof(msg) - 1);
	assert_null(dkim_sign_header(s, &p, 1, err, sizeof(err)));
	dkim_sign_free(s);
	dkim_key_free(k);
	free(pem);
}

static void
count_cb(const char *domain, uint64_t nsigned, uint64_t nfailed, void *arg)
{
	uint64_t *got = arg;

	(void)domain;
	got[0] += nsigned;
	got[1] += nfailed;
}

static void
test_describe(void **state)
{
	static const struct {
		const char *in, *want;
	} t[] = {
	    {"", ""},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=r1;\r\n"
	     "\tbh=x; b=abc\r\n\ts=\r\n",
	        "example.com:r1"},
	    {"DKIM-Signature: v=1; d=ex.org;\r\n\ts=r1; b=x\r\n"
	     "DKIM-Signature: v=1; d=ex.org; s=e1; b=y\r\n",
	        "ex.org:r1,e1"},
	};
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		signer_describe(t[i].in, buf, sizeof(buf));
		if (strcmp(buf, t[i].want) != 0)
			fail_msg("case %zu: '%s'", i, buf);
	}
}

/* signer.c: which keys sign which From: domain, and failure policy. */
static void
test_signer(void **state)
{
	char *ed = gen_pem("ED25519");
	Sluice__DkimKey k[5], *kp[5];
	Sluice__Policy p = SLUICE__POLICY__INIT;
	static const struct {
		const char *from;
		enum signer_outcome out;
		const char *desc; /* signer_describe of the fields */
	} t[] = {
	    {"a@example.com", SIGNER_SIGNED, "example.com:s1,s2"},
	    {"a@EXAMPLE.com", SIGNER_SIGNED, "example.com:s1,s2"},
	    {"a@sub.example.com", SIGNER_NONE, ""}, /* no subdomains flag */
	    {"a@x.y.parent.test", SIGNER_SIGNED, "parent.test:p1"},
	    {"a@parent.test", SIGNER_SIGNED, "parent.test:p1"},
	    {"a@other.test", SIGNER_NONE, ""},
	    {"a@broken.test", SIGNER_FAILED_OPTIONAL, ""},
	    {"a@strict.test", SIGNER_FAILED_REQUIRED, ""},
	};
	const char *doms[5] = {"example.com", "example.com", "parent.test",
	    "broken.test", "strict.test"};
	const char *sels[5] = {"s1", "s2", "p1", "b1", "x1"};
	struct signer *s, *s2;

	(void)state;
	for (int i = 0; i < 5; i++) {
		sluice__dkim_key__init(&k[i]);
		k[i].domain = (char *)(uintptr_t)doms[i];
		k[i].selector = (char *)(uintptr_t)sels[i];
		k[i].private_key = i < 3 ? ed : (char *)(uintptr_t) "garbage";
		kp[i] = &k[i];
	}
	k[2].subdomains = true;
	k[4].required = true;
	p.dkim = kp;
	p.n_dkim = 5;
	s = signer_new(&p, NULL);
	assert_non_null(s);
	assert_true(signer_active(s));
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char m[300], desc[300];
		struct dkim_sign *ds = dkim_sign_new(signer_body_canons(s), 0);
		struct signer_result r;

		snprintf(m, sizeof(m), "From: <%s>\r\n\r\nhi\r\n", t[i].from);
		dkim_sign_update(ds, m, strlen(m));
		signer_sign(s, ds, 1, &r);
		if (r.outcome != t[i].out)
			fail_msg(
			    "case %zu: %s", i, signer_outcome_name(r.outcome));
		signer_describe(
		    r.headers != NULL ? r.headers : "", desc, sizeof(desc));
		if (strcmp(desc, t[i].desc) != 0)
			fail_msg("case %zu: '%s'", i, desc);
		free(r.headers);
		dkim_sign_free(ds);
	}
	/* counters carry over a policy swap */
	s2 = signer_new(&p, s);
	signer_free(s);
	{
		uint64_t got[2] = {0, 0};
		signer_counts(s2, count_cb, got);
		assert_int_equal(
		    got[0], 4); /* example.com x2, parent.test x2 */
		assert_int_equal(got[1], 2); /* broken.test, strict.test */
	}
	signer_free(s2);
	free(ed);
}

/* The policy's canon strings (issue 14): the three offered, "" the
 * default; anything else refused. */
static void
test_canon_parse(void **state)
{
	static const struct {
		const char *in;
		int rc;
		enum dkim_canon h, b;
	} t[] = {
	    {"", 0, DKIM_RELAXED, DKIM_RELAXED},
	    {"relaxed/relaxed", 0, DKIM_RELAXED, DKIM_RELAXED},
	    {"simple/simple", 0, DKIM_SIMPLE, DKIM_SIMPLE},
	    {"relaxed/simple", 0, DKIM_RELAXED, DKIM_SIMPLE},
	    {"simple/relaxed", -1, DKIM_RELAXED, DKIM_RELAXED},
	    {"simple", -1, DKIM_RELAXED, DKIM_RELAXED},
	    {"RELAXED/RELAXED", -1, DKIM_RELAXED, DKIM_RELAXED},
	};
	enum dkim_canon h, b;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		h = b = (enum dkim_canon)7;
		assert_int_equal(dkim_canon_parse(t[i].in, &h, &b), t[i].rc);
		if (t[i].rc == 0) {
			assert_int_equal(h, t[i].h);
			assert_int_equal(b, t[i].b);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_body_canon),
	    cmocka_unit_test(test_header_canon),
	    cmocka_unit_test(test_from_domain),
	    cmocka_unit_test(test_sign_shape),
	    cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_header_ceiling),
	    cmocka_unit_test(test_describe),
	    cmocka_unit_test(test_signer),
	    cmocka_unit_test(test_canon_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
