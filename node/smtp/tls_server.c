/* tls_server.c - inbound TLS context and bufferevents (tls_server.h).
 * The context is built once in smtp_server_open(), before privileges are
 * dropped, so the key file may be readable by root only.  OpenSSL errors
 * are turned into strings here and nowhere else. */
#include "tls_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

struct tls_server {
	SSL_CTX *ctx;
};

/* Mozilla "intermediate": forward secrecy, AEAD only for TLS 1.2. */
static const char tls_ciphers12[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

static void
tls_err(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s %s: %s", what, path, e ? buf : "error");
	ERR_clear_error();
}

struct tls_server *
tls_server_new(const char *cert, const char *key, char *err, size_t errlen)
{
	struct tls_server *t;
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_err(err, errlen, "SSL_CTX_new", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, tls_ciphers12) != 1) {
		tls_err(err, errlen, "cipher list", "");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_err(err, errlen, "tls_cert", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_err(err, errlen, "tls_key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, "tls_key does not match", cert);
		goto fail;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	t->ctx = ctx;
	return t;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

struct bufferevent *
tls_server_socket(
    struct tls_server *t, struct event_base *base, evutil_socket_t fd)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(t->ctx)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(
	    base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

struct bufferevent *
tls_server_filter(
    struct tls_server *t, struct event_base *base, struct bufferevent *under)
{
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(t->ctx)) == NULL)
		return NULL;
	bev = bufferevent_openssl_filter_new(
	    base, under, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

void
tls_server_describe(struct bufferevent *bev, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL) {
		snprintf(buf, len, "none");
		return;
	}
	snprintf(
	    buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

void
tls_server_error(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(bev);

	if (e == 0) {
		snprintf(buf, len, "connection closed");
		return;
	}
	ERR_error_string_n(e, buf, len);
	while (bufferevent_get_openssl_error(bev) != 0)
		;
}

/* A handshake that fails (e.g. a client offering only TLS 1.1) makes
 * OpenSSL write an alert (protocol_version) into the filter's output,
 * i.e. the plain connection's buffer, which libevent keeps frozen; the
 * session is freed on the error event before that buffer is written, so
 * the client would see a bare EOF.  On the smtps listener the alert goes
 * straight to the socket.  An alert record is 7 octets (24 encrypted). */
void
tls_server_flush_alert(struct bufferevent *bev)
{
	struct bufferevent *under = bufferevent_get_underlying(bev);
	struct evbuffer_iovec v[2];
	int i, n;

	if (under == NULL)
		return;
	/* peek, not copyout: libevent keeps the buffer frozen for reading */
	n = evbuffer_peek(bufferevent_get_output(under), 64, NULL, v, 2);
	for (i = 0; i < n && i < 2; i++)
		if (send(bufferevent_getfd(under), v[i].iov_base, v[i].iov_len,
		        MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)v[i].iov_len)
			break;
}
