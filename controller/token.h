/* token.h - node enrollment tokens: 32 random bytes in base64url (no
 * padding), shown once by "node add"; the store keeps only their sha256.
 * A fast hash is right here: the token has 256 bits of entropy, nothing to
 * brute-force.  This file is the controller's OpenSSL boundary. */
#ifndef SLUICE_TOKEN_H
#define SLUICE_TOKEN_H

#include <stdbool.h>

#define TOKEN_LEN        43 /* base64url of 32 bytes, without '=' */
#define TOKEN_DIGEST_LEN 64 /* sha256 hex */

/* 0 with out (TOKEN_LEN + 1 bytes) filled, -1 if the RNG failed. */
int token_new(char *out);
/* sha256 hex of token into out (TOKEN_DIGEST_LEN + 1 bytes). */
int token_digest(const char *token, char *out);
/* Constant time over the digest length. */
bool token_digest_equal(const char *a, const char *b);

#endif
