/* dkim_key.h - DKIM key material for sluicectl: generating a private key
 * and deriving what is public about one (its algorithm and the p= of the
 * DNS record).  OpenSSL stays in this file.  Signing is the node's
 * (node/dkim.c). */
#ifndef SLUICECTL_DKIM_KEY_H
#define SLUICECTL_DKIM_KEY_H

#include <stddef.h>

#define DKIM_KEY_PEM_MAX 16384 /* longest private key read (RSA-4096 fits) */

/* A new private key, PEM (PKCS#8), malloc'd: alg "rsa" (2048 bits) or
 * "ed25519".  NULL with err. */
char *dkim_key_generate(const char *alg, char *err, size_t errlen);
/* Checks a PEM private key (RSA of 1024+ bits, or Ed25519): 0 and
 * alg ("rsa"/"ed25519") and *pub (malloc'd base64 for p=: the
 * SubjectPublicKeyInfo for RSA, the raw key for Ed25519, RFC 8463 4.2), or
 * -1 with err. */
int dkim_key_inspect(
    const char *pem, char alg[16], char **pub, char *err, size_t errlen);
/* The TXT record value: "v=DKIM1; k=rsa; p=...", malloc'd. */
char *dkim_key_txt(const char *alg, const char *pub);

#endif
