/* shadow_tls.c - OpenSSL contexts of the shadow channel (shadow_tls.h).
 * Built once at start, before the first connection; OpenSSL errors become
 * strings here and nowhere else.  Peer names are not checked: membership
 * of the fleet CA is the authentication (keep that CA dedicated to sluice,
 * docs/security.md), as on the control plane. */
#include "shadow_tls.h"

#include <stdio.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static void
shadow_tls_err(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s %s: %s", what, path, e ? buf : "error");
	ERR_clear_error();
}

SSL_CTX *
shadow_tls_ctx(bool server, const char *ca_file, const char *cert,
    const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(
	         server ? TLS_server_method() : TLS_client_method())) == NULL) {
		shadow_tls_err(err, errlen, "SSL_CTX_new", "");
		return NULL;
	}
	/* Both ends are sluice: TLS 1.3 only, no compression, no
	 * renegotiation. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		shadow_tls_err(err, errlen, "shadow certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		shadow_tls_err(err, errlen, "shadow key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		shadow_tls_err(err, errlen, "shadow key does not match", cert);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		shadow_tls_err(err, errlen, "shadow CA", ca_file);
		goto fail;
	}
	SSL_CTX_set_verify(
	    ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
shadow_tls_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

SSL *
shadow_tls_ssl(SSL_CTX *ctx)
{
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL) {
		ERR_clear_error();
		return NULL;
	}
	return ssl;
}

void
shadow_tls_describe(
    struct bufferevent *bev, char *cn, size_t cnlen, char *why, size_t whylen)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long e;
	X509 *x;

	cn[0] = why[0] = '\0';
	if (ssl == NULL)
		return;
	if ((x = SSL_get1_peer_certificate(ssl)) != NULL) {
		X509_NAME_get_text_by_NID(
		    X509_get_subject_name(x), NID_commonName, cn, (int)cnlen);
		X509_free(x);
	}
	if ((e = bufferevent_get_openssl_error(bev)) != 0)
		ERR_error_string_n(e, why, whylen);
	else if (SSL_get_verify_result(ssl) != X509_V_OK)
		snprintf(why, whylen, "%s",
		    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
}
