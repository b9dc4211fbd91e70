/* passwd.h - SMTP AUTH password hashing: scrypt through OpenSSL EVP_KDF,
 * salted, parameters carried in the hash string so they can be raised
 * without invalidating old hashes:
 *   $scrypt$ln=14,r=8,p=1$<salt base64>$<key base64>
 */
#ifndef SLUICE_PASSWD_H
#define SLUICE_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWD_HASH_MAX 160

/* 0 with out filled, -1 on failure (logged). */
int passwd_hash(const char *password, char *out, size_t outlen);
/* Constant-time compare; false on any malformed hash. */
bool passwd_verify(const char *password, const char *hash);

#endif
