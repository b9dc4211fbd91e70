/* outbox_http.h - a blocking HTTPS POST client for the event webhooks
 * (libevent's evhttp over bufferevent_openssl, on the calling thread's own
 * event base).  The receiver's certificate is verified against ca_file
 * (or the system's trust store) and its name; the connection is kept
 * alive between POSTs and made again when it was closed. */
#ifndef SLUICE_OUTBOX_HTTP_H
#define SLUICE_OUTBOX_HTTP_H

#include <stddef.h>

struct evbuffer;
struct outbox_http;

/* NULL with err when the CA file cannot be loaded (or ENOMEM). */
struct outbox_http *outbox_http_new(const char *host, int port,
    const char *ca_file, int timeout_s, char *err, size_t errlen);
void outbox_http_free(struct outbox_http *);

struct outbox_http_header {
	const char *name, *value;
};

/* POSTs body (left as it was) to path with the headers.  The HTTP status
 * (2xx: delivered), or 0 with a one-line reason in err. */
int outbox_http_post(struct outbox_http *, const char *path,
    const char *hostport, const struct outbox_http_header *, size_t nheaders,
    struct evbuffer *body, char *err, size_t errlen);

#endif
