/* shadow_tls.h - mutual TLS for the node-to-node shadow channel
 * (docs/redundancy.md): both ends present a certificate of the fleet CA
 * and require one from the other.  The only shadow file that includes
 * OpenSSL; the channel code sees SSL through bufferevent_ssl.h. */
#ifndef SLUICE_SHADOW_TLS_H
#define SLUICE_SHADOW_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;
struct bufferevent;

/* A context for the listener (server) or for dialing peers (client):
 * certificate chain cert and key key (one file may hold both), peers
 * verified against ca_file.  NULL with err. */
struct ssl_ctx_st *shadow_tls_ctx(bool server, const char *ca_file,
    const char *cert, const char *key, char *err, size_t errlen);
void shadow_tls_free(struct ssl_ctx_st *);
/* One connection's SSL; NULL on error, logged. */
struct ssl_st *shadow_tls_ssl(struct ssl_ctx_st *);
/* The peer certificate's subject CN ("" none) and why TLS failed ("" no
 * TLS error), for logs. */
void shadow_tls_describe(
    struct bufferevent *, char *cn, size_t cnlen, char *why, size_t whylen);

#endif
