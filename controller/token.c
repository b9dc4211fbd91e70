/* token.c - node enrollment tokens (see token.h).  OpenSSL: RAND_bytes,
 * base64, sha256, CRYPTO_memcmp. */
#include "token.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int
token_new(char *out)
{
	unsigned char raw[32], b64[48];
	int i, n;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	n = EVP_EncodeBlock(b64, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	/* RFC 4648 section 5: base64url, and no padding. */
	for (i = 0; i < n && i < TOKEN_LEN; i++)
		out[i] = b64[i] == '+'   ? '-'
		         : b64[i] == '/' ? '_'
		                         : (char)b64[i];
	out[i] = '\0';
	OPENSSL_cleanse(b64, sizeof(b64));
	return 0;
}

int
token_digest(const char *token, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len, i;

	if (EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL) != 1)
		return -1;
	for (i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

bool
token_digest_equal(const char *a, const char *b)
{
	if (strlen(a) != TOKEN_DIGEST_LEN || strlen(b) != TOKEN_DIGEST_LEN)
		return false;
	return CRYPTO_memcmp(a, b, TOKEN_DIGEST_LEN) == 0;
}
