/* tls_server.h - the node's inbound TLS: one server context built from
 * tls_cert / tls_key (TLS 1.2 and later, forward-secret AEAD ciphers),
 * and the bufferevents that carry it (implicit TLS for smtps, a filter
 * over the plain connection for STARTTLS).  The only node file besides
 * auth.c that includes OpenSSL. */
#ifndef SLUICE_TLS_SERVER_H
#define SLUICE_TLS_SERVER_H

#include <stddef.h>

#include <event2/util.h>

struct bufferevent;
struct event_base;
struct tls_server;

/* NULL with err when the certificate or key cannot be loaded. */
struct tls_server *tls_server_new(
    const char *cert, const char *key, char *err, size_t errlen);
void tls_server_free(struct tls_server *);

/* A TLS bufferevent accepting on fd (smtps); owns fd.  NULL on error. */
struct bufferevent *tls_server_socket(
    struct tls_server *, struct event_base *, evutil_socket_t fd);
/* A TLS filter over an existing bufferevent (STARTTLS); owns under.
 * NULL on error (under is then still the caller's). */
struct bufferevent *tls_server_filter(
    struct tls_server *, struct event_base *, struct bufferevent *under);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for a TLS bufferevent, or "". */
void tls_server_describe(struct bufferevent *, char *buf, size_t len);
/* The last OpenSSL error of a TLS bufferevent, for logs. */
void tls_server_error(struct bufferevent *, char *buf, size_t len);
/* Before freeing a failed STARTTLS filter: send the TLS alert it left in
 * the plain connection's output (one non-blocking write). */
void tls_server_flush_alert(struct bufferevent *);

#endif
