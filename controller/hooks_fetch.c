/* hooks_fetch.c - one blocking HTTPS GET for the SNS signing certificate
 * and the SubscribeURL of a SubscriptionConfirmation (hooks_fetch.h).
 * OpenSSL BIO over a TCP socket with send/receive timeouts; the server's
 * certificate is verified against the system's trust store (or ca_file)
 * and its name.  Called on the hooks thread only. */
#include "hooks_fetch.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"

/* Connects to host:port with timeouts on every later read and write. */
static int
hf_connect(const char *host, const char *port, int timeout_s)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv = {timeout_s, 0};
	int fd = -1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype, 0)) == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
hooks_fetch(const char *url, const char *ca_file, int timeout_s, size_t max_len,
    char **body, size_t *len, char *err, size_t errlen)
{
	char host[256], port[8] = "443", req[4096], *buf = NULL, *p, *nb;
	const char *h = url + 8, *path, *colon;
	size_t n = 0, cap = 0, hl;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	unsigned char ip[16];
	int fd = -1, k, rc = -1, status, named;

	*body = NULL;
	*len = 0;
	if (strncmp(url, "https://", 8) != 0 ||
	    (path = strchr(h, '/')) == NULL ||
	    (hl = (size_t)(path - h)) >= sizeof(host)) {
		snprintf(err, errlen, "not an https URL");
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if ((colon = strrchr(host, ':')) != NULL) {
		snprintf(port, sizeof(port), "%s", colon + 1);
		host[colon - host] = '\0';
	}
	if ((size_t)snprintf(req, sizeof(req),
	        "GET %s HTTP/1.0\r\nHost: %.*s\r\nUser-Agent: sluice\r\n"
	        "Connection: close\r\n\r\n",
	        path, (int)hl, h) >= sizeof(req)) {
		snprintf(err, errlen, "URL too long");
		return -1;
	}
	if ((fd = hf_connect(host, port, timeout_s)) == -1) {
		snprintf(err, errlen, "cannot connect to %s:%s", host, port);
		return -1;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
	                     : SSL_CTX_set_default_verify_paths(ctx)) != 1 ||
	    (ssl = SSL_new(ctx)) == NULL) {
		snprintf(err, errlen, "TLS setup failed");
		goto out;
	}
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	/* An IP literal (the tests' loopback server) is checked against the
	 * certificate's IP addresses and sent no SNI (RFC 6066 3). */
	if (inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1)
		named = X509_VERIFY_PARAM_set1_ip_asc(
		            SSL_get0_param(ssl), host) == 1;
	else
		named = SSL_set_tlsext_host_name(ssl, host) == 1 &&
		        SSL_set1_host(ssl, host) == 1;
	if (!named || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
		snprintf(err, errlen, "TLS handshake with %s failed: %s", host,
		    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
		goto out;
	}
	if (SSL_write(ssl, req, (int)strlen(req)) <= 0) {
		snprintf(err, errlen, "write to %s failed", host);
		goto out;
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > max_len + 16384) {
				snprintf(err, errlen, "answer over %zu bytes",
				    max_len);
				goto out;
			}
			if ((nb = realloc(buf, cap)) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = nb;
		}
		if ((k = SSL_read(ssl, buf + n, 4096)) <= 0)
			break;
		n += (size_t)k;
	}
	if (buf == NULL) {
		snprintf(err, errlen, "no answer from %s", host);
		goto out;
	}
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
		snprintf(err, errlen, "%s answered: %.60s", host, buf);
		goto out;
	}
	if ((p = strstr(buf, "\r\n\r\n")) == NULL) {
		snprintf(err, errlen, "%s: truncated answer", host);
		goto out;
	}
	p += 4;
	*len = n - (size_t)(p - buf);
	memmove(buf, p, *len + 1);
	*body = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (ssl != NULL)
		SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd != -1)
		close(fd);
	ERR_clear_error();
	return rc;
}
