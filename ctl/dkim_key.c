/* dkim_key.c - DKIM key generation and inspection for sluicectl
 * (dkim_key.h), through OpenSSL EVP.  Pure apart from the random numbers
 * of key generation. */
#include "dkim_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define DKIM_RSA_BITS 2048

char *
dkim_key_generate(const char *alg, char *err, size_t errlen)
{
	EVP_PKEY *k = NULL;
	BIO *b = NULL;
	char *p, *out = NULL;
	long n;

	if (strcmp(alg, "rsa") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_RSA_BITS);
	else if (strcmp(alg, "ed25519") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else {
		snprintf(err, errlen,
		    "algorithm must be rsa or ed25519, not "
		    "'%.32s'",
		    alg);
		return NULL;
	}
	if (k == NULL || (b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (n = BIO_get_mem_data(b, &p)) <= 0 ||
	    (out = strndup(p, (size_t)n)) == NULL)
		snprintf(err, errlen, "cannot generate an %s key", alg);
	if (b != NULL)
		BIO_free(b);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return out;
}

static char *
b64(const unsigned char *p, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);

	if (o != NULL)
		EVP_EncodeBlock((unsigned char *)o, p, (int)n);
	return o;
}

int
dkim_key_inspect(
    const char *pem, char alg[16], char **pub, char *err, size_t errlen)
{
	BIO *b;
	EVP_PKEY *k;
	unsigned char *der = NULL, raw[32];
	size_t rawlen = sizeof(raw);
	int n, rv = -1;

	*pub = NULL;
	if ((b = BIO_new_mem_buf(pem, -1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (k == NULL) {
		snprintf(err, errlen,
		    "not a PEM private key (unencrypted "
		    "PKCS#8 or RSA PRIVATE KEY)");
		goto out;
	}
	if (EVP_PKEY_is_a(k, "RSA")) {
		/* RFC 8301 3.2: verifiers need at least 1024 bits */
		if (EVP_PKEY_get_bits(k) < 1024) {
			snprintf(err, errlen,
			    "RSA key of %d bits: DKIM needs "
			    "at least 1024 (2048 advised)",
			    EVP_PKEY_get_bits(k));
			goto out;
		}
		snprintf(alg, 16, "rsa");
		if ((n = i2d_PUBKEY(k, &der)) <= 0)
			goto fail;
		*pub = b64(der, (size_t)n);
	} else if (EVP_PKEY_is_a(k, "ED25519")) {
		snprintf(alg, 16, "ed25519");
		if (EVP_PKEY_get_raw_public_key(k, raw, &rawlen) != 1)
			goto fail;
		*pub = b64(raw, rawlen);
	} else {
		snprintf(err, errlen, "the key is neither RSA nor Ed25519");
		goto out;
	}
	if (*pub == NULL)
		goto fail;
	rv = 0;
	goto out;
fail:
	snprintf(err, errlen, "cannot derive the public key");
out:
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return rv;
}

char *
dkim_key_txt(const char *alg, const char *pub)
{
	size_t n = strlen(alg) + strlen(pub) + 32;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "v=DKIM1; k=%s; p=%s", alg, pub);
	return s;
}
