/* tls_client.h - OpenSSL for outbound SMTP: one client context per node
 * (CA bundle from the node config), one SSL per connection with SNI and,
 * when verification is asked, certificate and host-name checks.  The only
 * file of the delivery engine that includes OpenSSL; smtp_client.c sees
 * struct ssl_st through libevent's bufferevent_ssl.h only. */
#ifndef SLUICE_TLS_CLIENT_H
#define SLUICE_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct ssl_st;
struct ssl_ctx_st;
struct bufferevent;

/* ca_file NULL: the system's default trust store.  NULL with err. */
struct ssl_ctx_st *tls_client_ctx_new(
    const char *ca_file, char *err, size_t errlen);
void tls_client_ctx_free(struct ssl_ctx_st *);
/* A client SSL for host (a DNS name or an IP literal): SNI for names,
 * and with verify the chain must reach the CA bundle and name host.
 * NULL on error, logged. */
struct ssl_st *tls_client_ssl_new(
    struct ssl_ctx_st *, const char *host, bool verify);
/* Why the TLS layer of bev failed, for a reply text. */
void tls_client_describe(struct bufferevent *, char *buf, size_t len);
/* "TLSv1.3" or "" when bev has no TLS. */
const char *tls_client_version(struct bufferevent *);

#endif
