/* dkim.h - DKIM signing (RFC 6376; Ed25519-SHA256 from RFC 8463): a
 * message's header block and streaming body hash, canonicalisation, and
 * the DKIM-Signature header for one key.  Pure: no I/O, no clock (the
 * caller passes now), no policy; OpenSSL EVP does the hashing and signing.
 * Errors are return values with a one-line reason; nothing here logs.
 *
 * Use: dkim_sign_new(), dkim_sign_update() with the message data as it
 * arrives (CRLF lines, already dot-unstuffed), then dkim_sign_from_domain()
 * to pick the keys and dkim_sign_header() once per key (dual signatures:
 * one call per key, each header prepended to the message). */
#ifndef SLUICE_NODE_DKIM_H
#define SLUICE_NODE_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dkim_alg {
	DKIM_RSA_SHA256 = 0,
	DKIM_ED25519_SHA256 = 1,
};

enum dkim_canon {
	DKIM_RELAXED = 0,
	DKIM_SIMPLE = 1,
};

/* Bit masks for dkim_sign_new: which body canonicalisations to hash. */
#define DKIM_BODY_RELAXED (1U << DKIM_RELAXED)
#define DKIM_BODY_SIMPLE  (1U << DKIM_SIMPLE)

/* Header section ceiling: a longer one is not signed (the message goes
 * per the domain's policy). */
#define DKIM_HEADER_MAX 65536

struct dkim_key;
struct dkim_sign;

/* A private key (PEM, PKCS#8 or traditional; RSA of at least 1024 bits or
 * Ed25519) for selector._domainkey.domain.  NULL with err otherwise. */
struct dkim_key *dkim_key_new(const char *domain, const char *selector,
    const char *pem, char *err, size_t errlen);
void dkim_key_free(struct dkim_key *);
enum dkim_alg dkim_key_alg(const struct dkim_key *);
const char *dkim_key_domain(const struct dkim_key *);
const char *dkim_key_selector(const struct dkim_key *);
const char *dkim_alg_name(enum dkim_alg); /* "rsa-sha256" */

/* What one signature covers.  headers: NULL-terminated field names, NULL
 * for the defaults (dkim_default_headers); each listed field present in
 * the message is signed, every instance, and From is signed once more
 * than it occurs (oversigned) so no From can be added. */
struct dkim_sign_params {
	const struct dkim_key *key;
	enum dkim_canon header_canon;
	enum dkim_canon body_canon; /* must be in dkim_sign_new's mask */
	const char *const *headers;
};
extern const char *const dkim_default_headers[];

/* A message being signed.  body_canons: DKIM_BODY_* bits; header_max:
 * bytes of header section kept (DKIM_HEADER_MAX if 0).  NULL on OOM. */
struct dkim_sign *dkim_sign_new(unsigned body_canons, size_t header_max);
void dkim_sign_free(struct dkim_sign *);
/* Feeds message data: any chunking gives the same result.  No-op after
 * the first dkim_sign_header(). */
void dkim_sign_update(struct dkim_sign *, const void *, size_t);
/* The lowercased domain of the one address in the one From: header, or
 * NULL (absent, several, unparsable, header section over its ceiling). */
const char *dkim_sign_from_domain(struct dkim_sign *);
/* The header "DKIM-Signature: ...\r\n" (folded, malloc'd) for p at now
 * (t=), or NULL with err.  The first call ends the body. */
char *dkim_sign_header(struct dkim_sign *, const struct dkim_sign_params *,
    int64_t now, char *err, size_t errlen);

/* Whether the body was hashed with this canonicalisation (asked of
 * dkim_sign_new). */
bool dkim_sign_has_body(const struct dkim_sign *, enum dkim_canon);
/* "relaxed/simple" style (RFC 6376 3.5 c=; "" is relaxed/relaxed) into
 * header and body canonicalisations; -1 if it is none of relaxed/relaxed,
 * simple/simple, relaxed/simple.  Pure. */
int dkim_canon_parse(const char *, enum dkim_canon *hdr, enum dkim_canon *body);
/* The pure canonicalisations, for tests.  A header field is the whole
 * field as in the message (name, colon, value, folded lines, final
 * CRLF); the result is what is hashed, malloc'd, *outlen set. */
char *dkim_canon_header(
    enum dkim_canon, const char *field, size_t len, size_t *outlen);
/* The canonical body of a whole body (chunked like dkim_sign_update). */
char *dkim_canon_body(enum dkim_canon, const char *body, size_t len,
    size_t chunk, size_t *outlen);

#endif
