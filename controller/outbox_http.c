/* outbox_http.c - HTTPS POSTs for the event webhooks (outbox_http.h).
 * Called by outbox.c on an endpoint's worker thread only.  Failures are
 * returned as a status of 0 and one sentence; the caller logs and
 * retries. */
#include "outbox_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define OUTBOX_HTTP_HEADERS_MAX 16384
#define OUTBOX_HTTP_BODY_MAX    65536

struct outbox_http {
	struct event_base *base;
	SSL_CTX *ctx;
	char host[256];
	int port;
	int timeout_s;
	struct evhttp_connection *conn; /* NULL: connect on the next POST */
	struct bufferevent *bev;        /* conn's, for TLS errors */
	bool is_used;                   /* conn carried a POST already */
	bool is_closed;                 /* conn was closed by either side */
};

struct outbox_http *
outbox_http_new(const char *host, int port, const char *ca_file, int timeout_s,
    char *err, size_t errlen)
{
	struct outbox_http *h;

	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->base = event_base_new()) == NULL ||
	    (h->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "out of memory");
		outbox_http_free(h);
		return NULL;
	}
	snprintf(h->host, sizeof(h->host), "%s", host);
	h->port = port;
	h->timeout_s = timeout_s;
	SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, NULL);
	if ((ca_file != NULL && ca_file[0] != '\0')
	        ? SSL_CTX_load_verify_locations(h->ctx, ca_file, NULL) != 1
	        : SSL_CTX_set_default_verify_paths(h->ctx) != 1) {
		snprintf(err, errlen, "cannot load CA certificates from %s: %s",
		    ca_file != NULL && ca_file[0] != '\0' ? ca_file
		                                          : "the system store",
		    ERR_reason_error_string(ERR_get_error()));
		ERR_clear_error();
		outbox_http_free(h);
		return NULL;
	}
	return h;
}

static void
outbox_http_drop(struct outbox_http *h)
{
	if (h->conn != NULL)
		evhttp_connection_free(h->conn); /* frees bev and SSL */
	h->conn = NULL;
	h->bev = NULL;
	h->is_used = false;
	h->is_closed = false;
}

void
outbox_http_free(struct outbox_http *h)
{
	if (h == NULL)
		return;
	outbox_http_drop(h);
	SSL_CTX_free(h->ctx);
	if (h->base != NULL)
		event_base_free(h->base);
	free(h);
}

static void
outbox_http_on_close(struct evhttp_connection *conn, void *arg)
{
	struct outbox_http *h = arg;

	(void)conn;
	h->is_closed = true;
}

static int
outbox_http_connect(struct outbox_http *h, char *err, size_t errlen)
{
	struct in6_addr a6;
	SSL *ssl;
	bool is_ip = inet_pton(AF_INET, h->host, &a6) == 1 ||
	             inet_pton(AF_INET6, h->host, &a6) == 1;

	if ((ssl = SSL_new(h->ctx)) == NULL)
		goto oom;
	/* RFC 6066: no SNI for IP literals; the name (or address) must be
	 * in the certificate. */
	if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(
	                 SSL_get0_param(ssl), h->host) != 1
	           : (SSL_set_tlsext_host_name(ssl, h->host) != 1 ||
	                 SSL_set1_host(ssl, h->host) != 1))) {
		SSL_free(ssl);
		goto oom;
	}
	if ((h->bev = bufferevent_openssl_socket_new(h->base, -1, ssl,
	         BUFFEREVENT_SSL_CONNECTING,
	         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		SSL_free(ssl);
		goto oom;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(h->bev, 1);
	if ((h->conn = evhttp_connection_base_bufferevent_new(h->base, NULL,
	         h->bev, h->host, (unsigned short)h->port)) == NULL) {
		bufferevent_free(h->bev);
		h->bev = NULL;
		goto oom;
	}
	evhttp_connection_set_timeout(h->conn, h->timeout_s);
	evhttp_connection_set_retries(h->conn, 0);
	/* The receiver's answer is read and dropped: a ceiling on it. */
	evhttp_connection_set_max_headers_size(
	    h->conn, OUTBOX_HTTP_HEADERS_MAX);
	evhttp_connection_set_max_body_size(h->conn, OUTBOX_HTTP_BODY_MAX);
	evhttp_connection_set_closecb(h->conn, outbox_http_on_close, h);
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

struct outbox_http_result {
	struct event_base *base;
	int status;
	enum evhttp_request_error error;
	bool has_error;
};

static void
outbox_http_on_done(struct evhttp_request *req, void *arg)
{
	struct outbox_http_result *r = arg;

	r->status = req != NULL ? evhttp_request_get_response_code(req) : 0;
	/* A kept-alive connection leaves a read event (close detection) in
	 * the base: stop here, not when the receiver hangs up. */
	event_base_loopbreak(r->base);
}

static void
outbox_http_on_error(enum evhttp_request_error e, void *arg)
{
	struct outbox_http_result *r = arg;

	r->error = e;
	r->has_error = true;
}

static int
outbox_http_once(struct outbox_http *h, const char *path, const char *hostport,
    const struct outbox_http_header *hd, size_t nh, struct evbuffer *body,
    char *err, size_t errlen)
{
	struct outbox_http_result r = {h->base, 0, EVREQ_HTTP_TIMEOUT, false};
	struct evhttp_request *req;
	struct evkeyvalq *out;
	unsigned long tls_err;
	evutil_socket_t fd;
	int one = 1;
	size_t i;

	if (h->conn == NULL && outbox_http_connect(h, err, errlen) == -1)
		return 0;
	if ((req = evhttp_request_new(outbox_http_on_done, &r)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	evhttp_request_set_error_cb(req, outbox_http_on_error);
	out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Host", hostport);
	for (i = 0; i < nh; i++)
		evhttp_add_header(out, hd[i].name, hd[i].value);
	/* A copy: the caller may need the body again for a retry. */
	evbuffer_add(evhttp_request_get_output_buffer(req),
	    evbuffer_pullup(body, -1), evbuffer_get_length(body));
	h->is_used = true;
	/* evhttp_make_request owns req from here, even on failure */
	if (evhttp_make_request(h->conn, req, EVHTTP_REQ_POST, path) != 0) {
		snprintf(err, errlen, "cannot send the request");
		outbox_http_drop(h);
		return 0;
	}
	/* The connect has started (the socket exists): headers and body go
	 * out in several TLS records, which must not wait for ACKs (Nagle
	 * against delayed ACK: ~40 ms a POST). */
	if ((fd = bufferevent_getfd(h->bev)) != -1)
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	event_base_dispatch(h->base);
	if (r.status != 0)
		return r.status;
	tls_err = h->bev != NULL ? bufferevent_get_openssl_error(h->bev) : 0;
	if (tls_err != 0)
		snprintf(
		    err, errlen, "TLS: %s", ERR_reason_error_string(tls_err));
	else
		snprintf(err, errlen, "%s",
		    !r.has_error ? "no answer"
		    : r.error == EVREQ_HTTP_TIMEOUT
		        ? "timed out or connection refused"
		    : r.error == EVREQ_HTTP_EOF           ? "connection closed"
		    : r.error == EVREQ_HTTP_DATA_TOO_LONG ? "answer over 64 KiB"
		                                          : "bad answer");
	ERR_clear_error();
	outbox_http_drop(h);
	return 0;
}

int
outbox_http_post(struct outbox_http *h, const char *path, const char *hostport,
    const struct outbox_http_header *hd, size_t nh, struct evbuffer *body,
    char *err, size_t errlen)
{
	bool reused;
	int status;

	if (h->conn != NULL) {
		/* a close seen since the last POST (the receiver's keep-alive
		 * timeout): start afresh */
		event_base_loop(h->base, EVLOOP_NONBLOCK);
		if (h->is_closed)
			outbox_http_drop(h);
	}
	reused = h->conn != NULL && h->is_used;
	status = outbox_http_once(h, path, hostport, hd, nh, body, err, errlen);
	/* A kept-alive connection the receiver closed meanwhile fails
	 * without saying anything about the receiver: once more, afresh. */
	if (status == 0 && reused)
		status = outbox_http_once(
		    h, path, hostport, hd, nh, body, err, errlen);
	return status;
}
