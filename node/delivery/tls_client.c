/* tls_client.c - OpenSSL client contexts for the delivery engine.
 * Error policy: a context that cannot be built is a configuration error
 * (the node does not start); a connection whose TLS fails is a hop
 * failure reported as text through tls_client_describe(). */
#include "tls_client.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

SSL_CTX *
tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (ca_file != NULL && *ca_file != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "tls_ca_file %s: %s", ca_file,
			    ERR_reason_error_string(ERR_get_error()));
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else
		SSL_CTX_set_default_verify_paths(ctx);
	return ctx;
}

void
tls_client_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

SSL *
tls_client_ssl_new(SSL_CTX *ctx, const char *host, bool verify)
{
	unsigned char ip[16];
	bool is_ip;
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL) {
		log_warnx("tls client: SSL_new failed");
		return NULL;
	}
	is_ip = inet_pton(AF_INET, host, ip) == 1 ||
	        inet_pton(AF_INET6, host, ip) == 1;
	/* RFC 6066 3: no SNI for address literals. */
	if (!is_ip)
		SSL_set_tlsext_host_name(ssl, host);
	if (verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (is_ip)
			X509_VERIFY_PARAM_set1_ip_asc(vp, host);
		else {
			X509_VERIFY_PARAM_set_hostflags(
			    vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			SSL_set1_host(ssl, host);
		}
	} else
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	return ssl;
}

void
tls_client_describe(struct bufferevent *bev, char *buf, size_t len)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	unsigned long e;
	long vr;

	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		snprintf(buf, len, "certificate verification failed: %s",
		    X509_verify_cert_error_string(vr));
		return;
	}
	if (bev != NULL && (e = bufferevent_get_openssl_error(bev)) != 0) {
		snprintf(buf, len, "TLS handshake failed: %s",
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e)
		                               : "unknown");
		return;
	}
	snprintf(buf, len, "TLS handshake failed");
}

const char *
tls_client_version(struct bufferevent *bev)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

	return ssl != NULL ? SSL_get_version(ssl) : "";
}
