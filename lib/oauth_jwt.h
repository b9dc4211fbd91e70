/* oauth_jwt.h - the pure parts of XOAUTH2 hops (issue 15): the JWTs a
 * token request carries (RFC 7519/7515 RS256; Google service account
 * assertion, RFC 7523; Microsoft certificate client assertion), the form
 * body, the token response, when a cached token is refreshed, and the
 * SASL XOAUTH2 initial response.  No I/O; `now` is passed in. */
#ifndef SLUICE_OAUTH_JWT_H
#define SLUICE_OAUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evp_pkey_st;

/* base64url without padding (RFC 7515 2), malloc'd; NULL: no memory. */
char *oauth_b64url(const unsigned char *, size_t);

/* A credential PEM: an RSA private key, and with want_cert also its
 * certificate, whose SHA-1 and SHA-256 thumbprints (base64url) Microsoft
 * finds the key by (x5t, x5t#S256).  0, or -1 with err. */
int oauth_load_key(const char *pem, bool want_cert, struct evp_pkey_st **key,
    char *x5t, size_t x5tlen, char *x5t256, size_t x5t256len, char *err,
    size_t errlen);

/* "header.claims.signature" over the two JSON texts, RS256; malloc'd, or
 * NULL with err. */
char *oauth_jwt_sign(const char *header_json, const char *claims_json,
    struct evp_pkey_st *key, char *err, size_t errlen);

/* Google service account (RFC 7523 2.1): iss the client_email, sub the
 * mailbox impersonated, scope, aud the token endpoint, an hour long. */
char *oauth_jwt_google(const char *client_email, const char *sub,
    const char *scope, const char *aud, int64_t now_s, struct evp_pkey_st *,
    char *err, size_t errlen);

/* Microsoft client assertion: iss = sub = the application id, aud the
 * token endpoint, a unique jti, ten minutes long; the header names the
 * certificate by thumbprint. */
char *oauth_jwt_m365(const char *client_id, const char *aud, const char *x5t,
    const char *x5t256, const char *jti, int64_t now_s, struct evp_pkey_st *,
    char *err, size_t errlen);

/* application/x-www-form-urlencoded of n name/value pairs
 * (kv[0]=kv[1]&...); malloc'd. */
char *oauth_form(const char *const *kv, size_t n);

/* A token endpoint's answer (RFC 6749 5.1/5.2): 0 with *token (malloc'd)
 * and *expires_in_s (3600 when absent), or -1 with err naming what the
 * endpoint said ("HTTP 401 invalid_client: AADSTS7000215 ...").  */
int oauth_parse_response(long http_status, const char *body, size_t len,
    char **token, int64_t *expires_in_s, char *err, size_t errlen);

/* A cached token's state: fresh until 80 % of its lifetime, then still
 * usable while a new one is fetched, expired a margin (a tenth of the
 * lifetime, at most a minute) before the endpoint said. */
enum oauth_freshness {
	OAUTH_FRESH,
	OAUTH_REFRESH, /* use it, fetch the next one meanwhile */
	OAUTH_EXPIRED,
};
enum oauth_freshness oauth_freshness(
    int64_t got_ms, int64_t lifetime_ms, int64_t now_ms);

/* SASL XOAUTH2 initial response, base64:
 * "user=" user ^A "auth=Bearer " token ^A ^A.  malloc'd. */
char *oauth_xoauth2(const char *user, const char *token);

#endif
