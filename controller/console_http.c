/* console_http.c - the web console's HTTPS listener (console.h): config,
 * TLS (OpenSSL context, one bufferevent_openssl per connection), limits,
 * security headers, static files embedded at build time, and routing of
 * /api/ requests to console_auth.c and console_api.c.  Runs its own
 * event loop on its own thread; every store call is made from it. */
#include "console_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "config.h"
#include "log.h"
#include "store_console.h"

/* Ceilings for every request (as on /metrics, docs/security.md): a
 * login or queue form is a few hundred bytes. */
#define CONSOLE_HEADERS_MAX 8192
#define CONSOLE_BODY_MAX    8192
#define CONSOLE_TIMEOUT_S   10

#define CONSOLE_CSP                                                            \
	"default-src 'none'; script-src 'self'; style-src 'self';"             \
	" img-src 'self' data:; connect-src 'self'; frame-ancestors 'none';"   \
	" base-uri 'none'; form-action 'self'"

int
console_config_read(const struct config *cf, struct console_config *cc,
    char *err, size_t errlen)
{
	memset(cc, 0, sizeof(*cc));
	cc->listen = config_get(cf, "console_listen");
	cc->cert = config_get(cf, "console_cert");
	cc->key = config_get(cf, "console_key");
	cc->ca = config_get(cf, "console_ca");
	if (config_get_int(cf, "console_session_idle_s", 1800,
	        &cc->session_idle_s, err, errlen) == -1 ||
	    config_get_int(cf, "console_session_max_s", 12 * 3600,
	        &cc->session_max_s, err, errlen) == -1 ||
	    config_get_int(cf, "console_lockout_failures", 5,
	        &cc->lockout_failures, err, errlen) == -1 ||
	    config_get_int(cf, "console_lockout_s", 900, &cc->lockout_s, err,
	        errlen) == -1 ||
	    config_get_int(
	        cf, "console_poll_ms", 5000, &cc->poll_ms, err, errlen) == -1)
		return -1;
	if (cc->session_idle_s < 60 || cc->session_idle_s > 7 * 86400 ||
	    cc->session_max_s < cc->session_idle_s ||
	    cc->session_max_s > 30 * 86400 || cc->lockout_failures < 1 ||
	    cc->lockout_failures > 1000 || cc->lockout_s < 1 ||
	    cc->lockout_s > 30 * 86400 || cc->poll_ms < 250 ||
	    cc->poll_ms > 600000) {
		snprintf(err, errlen,
		    "console_session_idle_s (60..), console_session_max_s (>= "
		    "idle), console_lockout_failures (1..1000), "
		    "console_lockout_s (1..) or console_poll_ms (250..600000) "
		    "out of range");
		return -1;
	}
	if (cc->listen != NULL && (cc->cert == NULL || cc->key == NULL)) {
		snprintf(err, errlen,
		    "console_listen needs console_cert and console_key (the "
		    "console is HTTPS only)");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ replies */

static void
console_headers(struct console_req *r, const char *type, bool is_static)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Content-Security-Policy", CONSOLE_CSP);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	evhttp_add_header(
	    h, "Cache-Control", is_static ? "no-cache" : "no-store");
}

int
console_status_of(const char *code)
{
	if (strcmp(code, "not_found") == 0)
		return 404;
	if (strcmp(code, "bad_request") == 0 || strcmp(code, "invalid") == 0)
		return 400;
	if (strcmp(code, "exists") == 0 || strcmp(code, "conflict") == 0)
		return 409;
	if (strcmp(code, "unavailable") == 0)
		return 503;
	if (strcmp(code, "denied") == 0)
		return 403;
	return 500;
}

static const char *
console_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

void
console_reply_json(struct console_req *r, int status, struct console_buf *b)
{
	struct evbuffer *out;

	if (b->is_oom || (out = evbuffer_new()) == NULL) {
		evhttp_send_error(r->req, 500, "out of memory");
		return;
	}
	console_headers(r, "application/json; charset=utf-8", false);
	evbuffer_add(out, b->p, b->len);
	evhttp_send_reply(r->req, status, console_reason(status), out);
	evbuffer_free(out);
}

void
console_reply_error(
    struct console_req *r, int status, const char *code, const char *msg)
{
	struct console_buf b = {0};

	console_buf_add(&b, "{\"error\":{\"code\":", 17);
	console_json_str(&b, code);
	console_buf_add(&b, ",\"message\":", 11);
	console_json_str(&b, msg);
	console_buf_add(&b, "}}", 2);
	console_reply_json(r, status, &b);
	console_buf_free(&b);
}

void
console_identity(const struct console_req *r, char *out, size_t len)
{
	snprintf(out, len, "%s (console %s)", r->has_session ? r->name : "-",
	    r->peer);
}

void
console_audit(struct console_req *r, const char *action, const char *detail)
{
	char who[160];

	console_identity(r, who, sizeof(who));
	if (store_console_audit_add(r->c->api.store, who, action, detail) !=
	    STORE_OK)
		log_warnx("console: audit not written action=\"%s\" by=\"%s\"",
		    action, who);
	log_info("console: %s by=\"%s\" %s", action, who, detail);
}

/* ------------------------------------------------------------ routing */

static void
console_static(struct console_req *r)
{
	const char *path = strcmp(r->path, "/") == 0 ? "/index.html" : r->path;
	struct evbuffer *out;
	size_t i;

	if (evhttp_request_get_command(r->req) != EVHTTP_REQ_GET) {
		evhttp_send_error(r->req, 405, "GET only");
		return;
	}
	for (i = 0; i < console_assets_count; i++)
		if (strcmp(console_assets[i].path, path) == 0)
			break;
	if (i == console_assets_count || (out = evbuffer_new()) == NULL) {
		evhttp_send_error(r->req, HTTP_NOTFOUND, "not found");
		return;
	}
	console_headers(r, console_assets[i].type, true);
	evbuffer_add_reference(
	    out, console_assets[i].data, console_assets[i].len, NULL, NULL);
	evhttp_send_reply(r->req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

/* A POST body (x-www-form-urlencoded) into r->form; -1 if unreadable. */
static int
console_form(struct console_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	char *body;
	int rv;

	if (len > CONSOLE_BODY_MAX || (body = malloc(len + 1)) == NULL)
		return -1;
	evbuffer_copyout(in, body, len);
	body[len] = '\0';
	rv = memchr(body, '\0', len) != NULL
	         ? -1
	         : evhttp_parse_query_str(body, &r->form);
	explicit_bzero(body, len); /* a login carries a password */
	free(body);
	return rv;
}

/* Login CSRF: a cross-site form cannot set a custom header. */
static bool
console_is_scripted(struct console_req *r)
{
	const char *x = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "X-Requested-With");

	return x != NULL && strcmp(x, "sluice-console") == 0;
}

static bool
console_csrf_ok(struct console_req *r)
{
	const char *t = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "X-CSRF-Token");
	size_t n = strlen(r->csrf);

	return t != NULL && n > 0 && strlen(t) == n &&
	       CRYPTO_memcmp(t, r->csrf, n) == 0;
}

static void
console_api(struct console_req *r)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(r->req);
	struct api_error e;

	if (!api_ready(&r->c->api, &e)) {
		console_reply_error(r, 503, e.code, e.msg);
		return;
	}
	if (m == EVHTTP_REQ_POST && console_form(r) == -1) {
		console_reply_error(r, 400, "bad_request",
		    "The request body is not a form of at most 8 KiB.");
		return;
	}
	if (strcmp(r->path, "/api/login") == 0) {
		if (m != EVHTTP_REQ_POST || !console_is_scripted(r))
			console_reply_error(r, 400, "bad_request",
			    "Log in with POST from the console page.");
		else
			console_auth_login(r);
		return;
	}
	console_auth_session(r);
	if (!r->has_session) {
		console_reply_error(
		    r, 401, "login", "Log in to use the console.");
		return;
	}
	/* Every state-changing request echoes the session's CSRF token. */
	if (m == EVHTTP_REQ_POST && !console_csrf_ok(r)) {
		console_reply_error(r, 403, "csrf",
		    "The request lacks the session's CSRF token; reload the "
		    "page.");
		return;
	}
	if (strcmp(r->path, "/api/logout") == 0 && m == EVHTTP_REQ_POST)
		console_auth_logout(r);
	else if (strcmp(r->path, "/api/me") == 0)
		console_auth_me(r);
	else
		console_api_dispatch(r);
}

static void
console_on_request(struct evhttp_request *req, void *arg)
{
	struct console_req r;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	char *host = NULL;
	ev_uint16_t port = 0;

	memset(&r, 0, sizeof(r));
	r.c = arg;
	r.req = req;
	TAILQ_INIT(&r.query);
	TAILQ_INIT(&r.form);
	if (conn != NULL)
		evhttp_connection_get_peer(conn, &host, &port);
	snprintf(r.peer, sizeof(r.peer), "%s", host ? host : "unknown");
	if (u == NULL || (r.path = evhttp_uri_get_path(u)) == NULL ||
	    r.path[0] != '/') {
		evhttp_send_error(req, 400, "bad request");
		return;
	}
	if (evhttp_uri_get_query(u) != NULL &&
	    evhttp_parse_query_str(evhttp_uri_get_query(u), &r.query) != 0) {
		evhttp_send_error(req, 400, "bad query");
		return;
	}
	if (strncmp(r.path, "/api/", 5) == 0)
		console_api(&r);
	else
		console_static(&r);
	evhttp_clear_headers(&r.query);
	evhttp_clear_headers(&r.form);
	explicit_bzero(r.csrf, sizeof(r.csrf));
}

/* ---------------------------------------------------------------- TLS */

static struct bufferevent *
console_on_connect(struct event_base *base, void *arg)
{
	struct console *c = arg;
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(c->ssl)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static SSL_CTX *
console_tls(const struct console_config *cf, char *err, size_t errlen)
{
	unsigned long e;
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cf->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, cf->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	if (cf->ca != NULL) {
		/* Behind the fleet's mutual TLS: no certificate, no page. */
		if (SSL_CTX_load_verify_locations(ctx, cf->ca, NULL) != 1)
			goto fail;
		SSL_CTX_set_verify(ctx,
		    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
fail:
	e = ERR_get_error();
	snprintf(err, errlen, "console TLS (%s, %s%s%s): %s", cf->cert, cf->key,
	    cf->ca ? ", " : "", cf->ca ? cf->ca : "",
	    e ? ERR_reason_error_string(e) : "cannot create a TLS context");
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* ------------------------------------------------------------- thread */

static void
console_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct console *c = arg;

	(void)fd;
	(void)what;
	if (*c->stop) {
		event_base_loopbreak(c->base);
		return;
	}
	console_auth_expire(c);
}

static void *
console_main(void *arg)
{
	struct console *c = arg;

	event_base_dispatch(c->base);
	return NULL;
}

static void
console_free(struct console *c)
{
	if (c->tick != NULL)
		event_free(c->tick);
	if (c->http != NULL)
		evhttp_free(c->http);
	if (c->base != NULL)
		event_base_free(c->base);
	SSL_CTX_free(c->ssl);
	store_free(c->api.store);
	free(c);
}

struct console *
console_start(const struct console_config *cf, const char *database,
    int64_t silent_after_ms, const atomic_bool *is_ready,
    volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	struct timeval tv = {0, 200000};
	struct console *c;
	char host[256], *colon;
	long port;

	snprintf(host, sizeof(host), "%s", cf->listen);
	if ((colon = strrchr(host, ':')) == NULL ||
	    (port = strtol(colon + 1, NULL, 10)) <= 0 || port > 65535) {
		snprintf(err, errlen, "console_listen '%s': want ADDR:PORT",
		    cf->listen);
		return NULL;
	}
	*colon = '\0';
	if (host[0] == '[' && colon > host && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->cf = *cf;
	c->stop = stop;
	c->api.endpoint = "console";
	c->api.silent_after_ms = silent_after_ms;
	c->api.is_ready = is_ready;
	if ((c->ssl = console_tls(cf, err, errlen)) == NULL) {
		console_free(c);
		return NULL;
	}
	if ((c->api.store = store_new(database, "console")) == NULL ||
	    (c->base = event_base_new()) == NULL ||
	    (c->http = evhttp_new(c->base)) == NULL) {
		snprintf(err, errlen, "console: out of memory");
		console_free(c);
		return NULL;
	}
	if (evhttp_bind_socket(c->http, host, (uint16_t)port) != 0) {
		snprintf(
		    err, errlen, "console_listen %s: cannot bind", cf->listen);
		console_free(c);
		return NULL;
	}
	evhttp_set_bevcb(c->http, console_on_connect, c);
	evhttp_set_allowed_methods(c->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_max_headers_size(c->http, CONSOLE_HEADERS_MAX);
	evhttp_set_max_body_size(c->http, CONSOLE_BODY_MAX);
	evhttp_set_timeout(c->http, CONSOLE_TIMEOUT_S);
	evhttp_set_gencb(c->http, console_on_request, c);
	if ((c->tick = event_new(
	         c->base, -1, EV_PERSIST, console_on_tick, c)) == NULL ||
	    event_add(c->tick, &tv) == -1 ||
	    pthread_create(&c->thread, NULL, console_main, c) != 0) {
		snprintf(
		    err, errlen, "console_listen %s: cannot start", cf->listen);
		console_free(c);
		return NULL;
	}
	log_info("console listening on https://%s%s", cf->listen,
	    cf->ca != NULL ? " (client certificates required)" : "");
	return c;
}

void
console_stop(struct console *c)
{
	if (c == NULL)
		return;
	pthread_join(c->thread, NULL);
	api_cache_free(&c->api);
	console_free(c);
}
