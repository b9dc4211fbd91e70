/* hooks_fetch.h - a blocking HTTPS GET (OpenSSL, TLS 1.2+, the server's
 * certificate verified against the system trust store or ca_file, and its
 * name): the SNS signing certificate and the SubscribeURL of a
 * SubscriptionConfirmation.  Only URLs hooks_sns_cert_url_ok() accepted
 * reach it. */
#ifndef SLUICE_HOOKS_FETCH_H
#define SLUICE_HOOKS_FETCH_H

#include <stddef.h>

/* 0 with *body (malloc'd, NUL-terminated, *len bytes) on a 200 answer of
 * at most max_len bytes; -1 with a one-line reason in err. */
int hooks_fetch(const char *url, const char *ca_file, int timeout_s,
    size_t max_len, char **body, size_t *len, char *err, size_t errlen);

#endif
