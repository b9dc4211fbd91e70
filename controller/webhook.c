/* webhook.c - POST alerts as JSON (webhook.h).  Called by alert.c after
 * the health tick's transaction, never inside it. */
#include "webhook.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define WEBHOOK_TIMEOUT_S 2

struct webhook {
	struct event_base *base;
	char host[256];
	char hostport[300]; /* Host: header */
	char path[1024];
	int port;
	int failures; /* consecutive, for quieter logs */
};

struct webhook *
webhook_new(const char *url, char *err, size_t errlen)
{
	struct evhttp_uri *u;
	struct webhook *w;
	const char *host, *path, *q;

	if ((u = evhttp_uri_parse(url)) == NULL ||
	    evhttp_uri_get_scheme(u) == NULL ||
	    strcmp(evhttp_uri_get_scheme(u), "http") != 0 ||
	    (host = evhttp_uri_get_host(u)) == NULL || host[0] == '\0' ||
	    strlen(host) >= 256) {
		snprintf(err, errlen,
		    "alert_webhook '%s': want http://host[:port]/path", url);
		if (u != NULL)
			evhttp_uri_free(u);
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->base = event_base_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(w);
		evhttp_uri_free(u);
		return NULL;
	}
	snprintf(w->host, sizeof(w->host), "%s", host);
	w->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
	snprintf(w->hostport, sizeof(w->hostport), "%s:%d", w->host, w->port);
	path = evhttp_uri_get_path(u);
	q = evhttp_uri_get_query(u);
	snprintf(w->path, sizeof(w->path), "%s%s%s",
	    path != NULL && path[0] != '\0' ? path : "/", q ? "?" : "",
	    q ? q : "");
	evhttp_uri_free(u);
	return w;
}

void
webhook_free(struct webhook *w)
{
	if (w == NULL)
		return;
	event_base_free(w->base);
	free(w);
}

static void
webhook_json_str(struct evbuffer *b, const char *key, const char *v)
{
	evbuffer_add_printf(b, "\"%s\":\"", key);
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;

		if (c == '"' || c == '\\')
			evbuffer_add_printf(b, "\\%c", c);
		else if (c < 0x20)
			evbuffer_add_printf(b, "\\u%04x", c);
		else
			evbuffer_add(b, v, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static void
webhook_on_done(struct evhttp_request *req, void *arg)
{
	int *status = arg;

	*status = req != NULL ? evhttp_request_get_response_code(req) : 0;
}

int
webhook_post(struct webhook *w, const char *event, const char *kind,
    const char *subject, const char *message, int64_t at)
{
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct evbuffer *body;
	int status = 0;

	if (w == NULL)
		return 0;
	if ((conn = evhttp_connection_base_new(
	         w->base, NULL, w->host, (uint16_t)w->port)) == NULL)
		return -1;
	evhttp_connection_set_timeout(conn, WEBHOOK_TIMEOUT_S);
	evhttp_connection_set_retries(conn, 0);
	if ((req = evhttp_request_new(webhook_on_done, &status)) == NULL) {
		evhttp_connection_free(conn);
		return -1;
	}
	body = evhttp_request_get_output_buffer(req);
	evbuffer_add(body, "{", 1);
	webhook_json_str(body, "event", event);
	evbuffer_add(body, ",", 1);
	webhook_json_str(body, "kind", kind);
	evbuffer_add(body, ",", 1);
	webhook_json_str(body, "subject", subject);
	evbuffer_add(body, ",", 1);
	webhook_json_str(body, "message", message);
	evbuffer_add_printf(body, ",\"at\":%" PRId64 "}\n", at);
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Host", w->hostport);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	/* evhttp_make_request owns req from here, even on failure */
	if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, w->path) == 0)
		event_base_dispatch(w->base);
	evhttp_connection_free(conn);
	if (status >= 200 && status < 300) {
		if (w->failures > 0)
			log_info(
			    "alert webhook %s: delivering again", w->hostport);
		w->failures = 0;
		return 0;
	}
	if (w->failures++ == 0)
		log_warnx("alert webhook %s%s: %s %d; alerts stay in the "
		          "database",
		    w->hostport, w->path, status ? "answered" : "failed",
		    status);
	return -1;
}
