/* dkim.c - fuzz target: the DKIM signing core (node/dkim.c) over message
 * data a client sent.  The first input byte picks a chunk size; the rest
 * is a message fed once whole and once in chunks.  Invariants: both runs
 * agree on the canonical bodies (relaxed and simple), the From: domain and
 * the signature (Ed25519 is deterministic); a relaxed body has no WSP at a
 * line end, no WSP runs, and ends in CRLF unless empty; a From: domain is
 * lowercase letters, digits, '-' and dots; a signature header starts with
 * "DKIM-Signature: v=1;", ends with CRLF and folds with CRLF TAB. */
#include <stdbool.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim.h"
#include "fuzz.h"

static struct dkim_key *key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *pem, err[128];
	long n;

	(void)argc;
	(void)argv;
	FUZZ_ASSERT(k != NULL && b != NULL);
	FUZZ_ASSERT(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
	n = BIO_get_mem_data(b, &p);
	pem = strndup(p, (size_t)n);
	key = dkim_key_new("example.com", "s1", pem, err, sizeof(err));
	FUZZ_ASSERT(key != NULL);
	free(pem);
	BIO_free(b);
	EVP_PKEY_free(k);
	return 0;
}

static void
check_relaxed(const char *b, size_t n)
{
	FUZZ_ASSERT(n == 0 || (n >= 2 && b[n - 2] == '\r' && b[n - 1] == '\n'));
	for (size_t i = 0; i + 1 < n; i++) {
		if (b[i] == ' ' || b[i] == '\t')
			FUZZ_ASSERT(b[i + 1] != ' ' && b[i + 1] != '\t' &&
			            !(b[i + 1] == '\r' && i + 2 < n &&
			                b[i + 2] == '\n'));
		FUZZ_ASSERT(b[i] != '\t');
	}
}

static char *
sign(const uint8_t *d, size_t n, size_t chunk, char *dom, size_t domlen)
{
	struct dkim_sign *s = dkim_sign_new(DKIM_BODY_RELAXED, 4096);
	struct dkim_sign_params p = {key, DKIM_RELAXED, DKIM_RELAXED, NULL};
	const char *f;
	char err[128], *h;

	FUZZ_ASSERT(s != NULL);
	for (size_t off = 0; off < n; off += chunk)
		dkim_sign_update(s, d + off, n - off < chunk ? n - off : chunk);
	f = dkim_sign_from_domain(s);
	snprintf(dom, domlen, "%s", f != NULL ? f : "");
	h = dkim_sign_header(s, &p, 1, err, sizeof(err));
	dkim_sign_free(s);
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t chunk, n[4];
	char *b[4], *h1, *h2, d1[300], d2[300];

	if (key == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	chunk = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	for (int c = 0; c < 2; c++) {
		b[2 * c] = dkim_canon_body(
		    (enum dkim_canon)c, (const char *)data, size, 0, &n[2 * c]);
		b[2 * c + 1] = dkim_canon_body((enum dkim_canon)c,
		    (const char *)data, size, chunk, &n[2 * c + 1]);
		FUZZ_ASSERT(n[2 * c] == n[2 * c + 1] &&
		            memcmp(b[2 * c], b[2 * c + 1], n[2 * c]) == 0);
	}
	check_relaxed(b[0], n[0]);
	FUZZ_ASSERT(n[2] >= 2); /* simple: at least CRLF */
	for (int i = 0; i < 4; i++)
		free(b[i]);
	h1 = sign(data, size, size > 0 ? size : 1, d1, sizeof(d1));
	h2 = sign(data, size, chunk, d2, sizeof(d2));
	FUZZ_ASSERT(strcmp(d1, d2) == 0);
	for (const char *p = d1; *p != '\0'; p++)
		FUZZ_ASSERT((*p >= 'a' && *p <= 'z') ||
		            (*p >= '0' && *p <= '9') || *p == '-' || *p == '.');
	FUZZ_ASSERT((h1 == NULL) == (h2 == NULL));
	if (h1 != NULL) {
		size_t hl = strlen(h1);
		FUZZ_ASSERT(strcmp(h1, h2) == 0);
		FUZZ_ASSERT(strncmp(h1, "DKIM-Signature: v=1;", 20) == 0);
		FUZZ_ASSERT(hl >= 2 && strcmp(h1 + hl - 2, "\r\n") == 0);
		for (const char *p = h1; (p = strstr(p, "\r\n")) != NULL;
		     p += 2)
			FUZZ_ASSERT(p[2] == '\0' || p[2] == '\t');
	}
	free(h1);
	free(h2);
	return 0;
}
