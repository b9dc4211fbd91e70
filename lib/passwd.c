/* passwd.c - scrypt password hashes (RFC 7914) via EVP_KDF. */
#include "passwd.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define PASSWD_LN   14 /* N = 16384: ~16 MiB, tens of ms */
#define PASSWD_R    8
#define PASSWD_P    1
#define PASSWD_SALT 16
#define PASSWD_KEY  32

static int
passwd_kdf(const char *pw, const unsigned char *salt, size_t saltlen,
    unsigned ln, unsigned r, unsigned p, unsigned char *key, size_t keylen)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *ctx;
	OSSL_PARAM params[6], *q = params;
	uint64_t n = (uint64_t)1 << ln;
	uint32_t r32 = r, p32 = p;
	int rv = -1;

	if ((kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL)
		return -1;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return -1;
	*q++ = OSSL_PARAM_construct_octet_string(
	    OSSL_KDF_PARAM_PASSWORD, (void *)(uintptr_t)pw, strlen(pw));
	*q++ = OSSL_PARAM_construct_octet_string(
	    OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt, saltlen);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, key, keylen, params) == 1)
		rv = 0;
	EVP_KDF_CTX_free(ctx);
	return rv;
}

int
passwd_hash(const char *pw, char *out, size_t outlen)
{
	unsigned char salt[PASSWD_SALT], key[PASSWD_KEY];
	char s64[64], k64[64];

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    passwd_kdf(pw, salt, sizeof(salt), PASSWD_LN, PASSWD_R, PASSWD_P,
	        key, sizeof(key)) == -1) {
		log_warnx("passwd: scrypt failed");
		return -1;
	}
	EVP_EncodeBlock((unsigned char *)s64, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)k64, key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	if ((size_t)snprintf(out, outlen, "$scrypt$ln=%d,r=%d,p=%d$%s$%s",
	        PASSWD_LN, PASSWD_R, PASSWD_P, s64, k64) >= outlen)
		return -1;
	return 0;
}

/* Decodes base64 with its padding; returns the byte count or -1. */
static int
passwd_b64(const char *in, size_t inlen, unsigned char *out, size_t outmax)
{
	unsigned char tmp[128];
	int n;

	if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 > sizeof(tmp))
		return -1;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)inlen);
	if (n < 0)
		return -1;
	if (in[inlen - 1] == '=')
		n--;
	if (in[inlen - 2] == '=')
		n--;
	if ((size_t)n > outmax)
		return -1;
	memcpy(out, tmp, (size_t)n);
	return n;
}

bool
passwd_verify(const char *pw, const char *hash)
{
	unsigned char salt[64], want[64], got[64];
	const char *s, *k;
	unsigned ln, r, p;
	int sl, kl, off = 0;
	bool ok;

	if (sscanf(hash, "$scrypt$ln=%u,r=%u,p=%u$%n", &ln, &r, &p, &off) !=
	        3 ||
	    off == 0)
		return false;
	if (ln < 1 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16)
		return false;
	s = hash + off;
	if ((k = strchr(s, '$')) == NULL)
		return false;
	if ((sl = passwd_b64(s, (size_t)(k - s), salt, sizeof(salt))) <= 0 ||
	    (kl = passwd_b64(k + 1, strlen(k + 1), want, sizeof(want))) <= 0)
		return false;
	if (passwd_kdf(pw, salt, (size_t)sl, ln, r, p, got, (size_t)kl) == -1)
		return false;
	ok = CRYPTO_memcmp(got, want, (size_t)kl) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}
