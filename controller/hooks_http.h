/* hooks_http.h - the provider webhook listener (issue 16,
 * docs/providers.md): POST /hooks/<provider>/<name>[/<path token>] over
 * HTTPS (libevent evhttp with bufferevent_openssl), on its own thread with
 * its own store connection.  Each request is checked as its provider
 * signs it (hooks_verify.c), parsed (hooks_parse.c) and stored
 * (store_hook.c); refusals are 401, logged and counted.  Off unless
 * hooks_listen is set; plain HTTP only on a loopback address (a reverse
 * proxy in front). */
#ifndef SLUICE_HOOKS_HTTP_H
#define SLUICE_HOOKS_HTTP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct hooks_http;
struct store;

struct hooks_http_config {
	const char *listen;        /* HOST:PORT */
	const char *cert, *key;    /* PEM files; both or neither */
	int64_t max_age_s;         /* SendGrid, Mailgun timestamps */
	int64_t sns_max_age_s;     /* SNS Timestamp */
	const char *sns_cert_host; /* tests: the one host:port allowed */
	const char *sns_ca;        /* CA file for that fetch, NULL system */
	int64_t rejoin_s;          /* re-join pass of unknown events, 0 off */
};

/* Binds and starts the thread; NULL with err (bad address, a plain
 * listener off loopback, unreadable certificate). */
struct hooks_http *hooks_http_start(const struct hooks_http_config *,
    struct store *, volatile sig_atomic_t *stop, char *err, size_t errlen);
/* Joins the thread (after *stop is set) and frees. */
void hooks_http_stop(struct hooks_http *);

/* This process's webhook counters in Prometheus text (metrics_http.c):
 * sluice_hooks_requests_total{provider,outcome},
 * sluice_hooks_events_total{provider,kind},
 * sluice_hooks_unknown_events_total{provider},
 * sluice_hooks_duplicate_events_total{provider},
 * sluice_hooks_rejoined_events_total. */
void hooks_http_metrics(struct evbuffer *);

#endif
