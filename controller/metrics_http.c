/* metrics_http.c - the controller's /metrics (metrics_http.h).  Every
 * family has its HELP and TYPE lines before its samples; names carry
 * units; label values are escaped as the format says (\\, \", \n).  The
 * numbers are the nodes' last heartbeats as stored in PostgreSQL, so every
 * controller of a fleet serves the same view. */
#include "metrics_http.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "hooks_http.h"
#include "log.h"
#include "outbox_metrics.h"
#include "proto.h"
#include "store.h"

/* Ceilings for every request, as on the node's /metrics (node/metrics.c):
 * over the header size libevent answers 413 and closes; a connection
 * silent for the timeout is closed. */
#define MH_HEADERS_MAX 8192
#define MH_BODY_MAX    1024
#define MH_TIMEOUT_S   5

struct metrics_http {
	struct event_base *base;
	struct evhttp *http;
	struct event *tick;
	struct store *store;
	int64_t silent_after_ms;
	volatile sig_atomic_t *stop;
	pthread_t thread;
};

struct mh_node {
	char *name;
	const char *state;
	int64_t heartbeat_age_ms;
	uint64_t policy_version;
	Sluice__QueueMetrics *m;
};

struct mh_fleet {
	struct mh_node *v;
	size_t n, cap;
	int64_t silent_after_ms;
	bool is_oom;
	char kinds[8][24];
	uint64_t kind_open[8];
	size_t nkinds;
};

static int
mh_node_cb(void *arg, const struct store_node_row *r)
{
	struct mh_fleet *f = arg;
	struct mh_node *nv, *n;

	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		if ((nv = realloc(f->v, f->cap * sizeof(*nv))) == NULL) {
			f->is_oom = true;
			return 1;
		}
		f->v = nv;
	}
	n = &f->v[f->n];
	memset(n, 0, sizeof(*n));
	if ((n->name = strdup(r->name)) == NULL) {
		f->is_oom = true;
		return 1;
	}
	f->n++;
	if (r->metrics != NULL)
		n->m = sluice__queue_metrics__unpack(
		    NULL, r->metrics_len, r->metrics);
	n->state = health_state(r->last_heartbeat_at, r->heartbeat_age_ms,
	    health_silent_after(f->silent_after_ms, r->heartbeat_ms),
	    r->is_draining, n->m);
	n->heartbeat_age_ms = r->heartbeat_age_ms;
	n->policy_version = r->policy_version;
	return 0;
}

static int
mh_alert_cb(void *arg, const struct store_alert_row *r)
{
	struct mh_fleet *f = arg;
	size_t i;

	for (i = 0; i < f->nkinds; i++)
		if (strcmp(f->kinds[i], r->kind) == 0)
			break;
	if (i == f->nkinds) {
		if (f->nkinds == 8)
			return 0;
		snprintf(f->kinds[i], sizeof(f->kinds[i]), "%s", r->kind);
		f->nkinds++;
	}
	f->kind_open[i]++;
	return 0;
}

/* A label value as the exposition format wants it. */
static void
mh_label(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void
mh_family(
    struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
mh_sample(struct evbuffer *b, const char *name, const char *node,
    const char *hop, uint64_t v)
{
	evbuffer_add_printf(b, "%s{node=\"", name);
	mh_label(b, node);
	if (hop != NULL) {
		evbuffer_add(b, "\",hop=\"", 7);
		mh_label(b, hop);
	}
	evbuffer_add_printf(b, "\"} %" PRIu64 "\n", v);
}

#define MH_FIELD(fam, type, help, expr)                                        \
	do {                                                                   \
		mh_family(b, fam, type, help);                                 \
		for (i = 0; i < f->n; i++) {                                   \
			const Sluice__QueueMetrics *m =                        \
			    f->v[i].m ? f->v[i].m : &zero;                     \
			(void)m;                                               \
			mh_sample(b, fam, f->v[i].name, NULL, (expr));         \
		}                                                              \
	} while (0)

static void
mh_render(const struct mh_fleet *f, uint64_t head, struct evbuffer *b)
{
	static const char *const states[] = {
	    "new", "up", "silent", "draining", "drained"};
	Sluice__QueueMetrics zero = SLUICE__QUEUE_METRICS__INIT;
	uint64_t c;
	size_t i, k;

	mh_family(b, "sluice_controller_policy_version", "gauge",
	    "Latest policy version in the store.");
	evbuffer_add_printf(
	    b, "sluice_controller_policy_version %" PRIu64 "\n", head);
	mh_family(b, "sluice_fleet_nodes", "gauge", "Enrolled nodes by state.");
	for (k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
		for (c = 0, i = 0; i < f->n; i++)
			c += strcmp(f->v[i].state, states[k]) == 0;
		evbuffer_add_printf(b,
		    "sluice_fleet_nodes{state=\"%s\"} %" PRIu64 "\n", states[k],
		    c);
	}
	mh_family(b, "sluice_alerts_open", "gauge", "Open alerts by kind.");
	for (k = 0; k < f->nkinds; k++)
		evbuffer_add_printf(b,
		    "sluice_alerts_open{kind=\"%s\"} %" PRIu64 "\n",
		    f->kinds[k], f->kind_open[k]);
	MH_FIELD("sluice_node_up", "gauge",
	    "1 when the node is heard from (up, draining or drained).",
	    (uint64_t)(strcmp(f->v[i].state, "up") == 0 ||
	               strncmp(f->v[i].state, "drain", 5) == 0));
	MH_FIELD("sluice_node_heartbeat_age_seconds", "gauge",
	    "Seconds since the node's last heartbeat.",
	    f->v[i].heartbeat_age_ms < 0
	        ? 0
	        : (uint64_t)f->v[i].heartbeat_age_ms / 1000);
	MH_FIELD("sluice_node_policy_version", "gauge",
	    "Policy version the node runs.", f->v[i].policy_version);
	MH_FIELD("sluice_node_queue_messages", "gauge",
	    "Messages in the node's spool.", m->messages);
	MH_FIELD("sluice_node_queue_bytes", "gauge",
	    "Bytes of message data in the node's spool.", m->bytes);
	MH_FIELD("sluice_node_queue_deferred_messages", "gauge",
	    "Deferred messages in the node's spool.", m->deferred);
	MH_FIELD("sluice_node_queue_held_messages", "gauge",
	    "Held messages in the node's spool.", m->held);
	MH_FIELD("sluice_node_queue_oldest_age_seconds", "gauge",
	    "Age of the oldest message in the node's spool.", m->oldest_age_s);
	MH_FIELD("sluice_node_messages_accepted_total", "counter",
	    "Messages the node accepted since it started.", m->accepted);
	MH_FIELD("sluice_node_deliveries_total", "counter",
	    "Recipients the node delivered since it started.", m->delivered);
	MH_FIELD("sluice_node_delivery_deferrals_total", "counter",
	    "Delivery attempts the node deferred since it started.",
	    m->deferred_attempts);
	MH_FIELD("sluice_node_bounces_total", "counter",
	    "Recipients the node bounced since it started.", m->bounced);
	MH_FIELD("sluice_node_auth_failures_total", "counter",
	    "Failed SMTP AUTH attempts on the node since it started.",
	    m->auth_failures);
	mh_family(b, "sluice_node_hop_circuit_open", "gauge",
	    "1 when the node has taken the hop out of rotation.");
	for (i = 0; i < f->n; i++)
		for (k = 0; f->v[i].m != NULL && k < f->v[i].m->n_hops; k++)
			mh_sample(b, "sluice_node_hop_circuit_open",
			    f->v[i].name, f->v[i].m->hops[k]->name,
			    f->v[i].m->hops[k]->circuit_open);
	mh_family(b, "sluice_node_hop_throttled", "gauge",
	    "1 while the node keeps the hop paused behind the others.");
	for (i = 0; i < f->n; i++)
		for (k = 0; f->v[i].m != NULL && k < f->v[i].m->n_hops; k++)
			mh_sample(b, "sluice_node_hop_throttled", f->v[i].name,
			    f->v[i].m->hops[k]->name,
			    f->v[i].m->hops[k]->throttled);
	mh_family(b, "sluice_node_hop_connections", "gauge",
	    "Open connections from the node to the hop.");
	for (i = 0; i < f->n; i++)
		for (k = 0; f->v[i].m != NULL && k < f->v[i].m->n_hops; k++)
			mh_sample(b, "sluice_node_hop_connections",
			    f->v[i].name, f->v[i].m->hops[k]->name,
			    f->v[i].m->hops[k]->connections);
}

static void
mh_fleet_free(struct mh_fleet *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->v[i].name);
		if (f->v[i].m != NULL)
			sluice__queue_metrics__free_unpacked(f->v[i].m, NULL);
	}
	free(f->v);
}

static void
mh_on_request(struct evhttp_request *req, void *arg)
{
	struct metrics_http *mh = arg;
	struct mh_fleet f;
	struct evbuffer *b;
	uint64_t head = 0;

	if (strcmp(evhttp_request_get_uri(req), "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
		return;
	}
	memset(&f, 0, sizeof(f));
	f.silent_after_ms = mh->silent_after_ms;
	if (store_node_list(mh->store, mh_node_cb, &f) != STORE_OK ||
	    store_alert_list(mh->store, true, 0, mh_alert_cb, &f) != STORE_OK ||
	    store_policy_head(mh->store, false, &head) != STORE_OK ||
	    f.is_oom || (b = evbuffer_new()) == NULL) {
		mh_fleet_free(&f);
		evhttp_send_error(req, 503, "database unavailable");
		return;
	}
	mh_render(&f, head, b);
	hooks_http_metrics(b);
	mh_fleet_free(&f);
	if (outbox_metrics(mh->store, b) != STORE_OK) {
		evbuffer_free(b);
		evhttp_send_error(req, 503, "database unavailable");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

static void
mh_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_http *mh = arg;

	(void)fd;
	(void)what;
	if (*mh->stop)
		event_base_loopbreak(mh->base);
}

static void *
mh_main(void *arg)
{
	struct metrics_http *mh = arg;

	event_base_dispatch(mh->base);
	return NULL;
}

static void
mh_free(struct metrics_http *mh)
{
	if (mh->tick != NULL)
		event_free(mh->tick);
	if (mh->http != NULL)
		evhttp_free(mh->http);
	if (mh->base != NULL)
		event_base_free(mh->base);
	free(mh);
}

struct metrics_http *
metrics_http_start(const char *addr, struct store *st, int64_t silent_after_ms,
    volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	struct timeval tv = {0, 200000};
	struct metrics_http *mh;
	char host[256], *colon;
	long port;

	snprintf(host, sizeof(host), "%s", addr);
	if ((colon = strrchr(host, ':')) == NULL ||
	    (port = strtol(colon + 1, NULL, 10)) <= 0 || port > 65535) {
		snprintf(
		    err, errlen, "metrics_listen '%s': want ADDR:PORT", addr);
		return NULL;
	}
	*colon = '\0';
	if (host[0] == '[' && colon > host && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if ((mh = calloc(1, sizeof(*mh))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	mh->store = st;
	mh->silent_after_ms = silent_after_ms;
	mh->stop = stop;
	if ((mh->base = event_base_new()) == NULL ||
	    (mh->http = evhttp_new(mh->base)) == NULL ||
	    evhttp_bind_socket(mh->http, host, (uint16_t)port) != 0) {
		snprintf(err, errlen, "metrics_listen %s: cannot bind", addr);
		mh_free(mh);
		return NULL;
	}
	evhttp_set_allowed_methods(mh->http, EVHTTP_REQ_GET);
	evhttp_set_max_headers_size(mh->http, MH_HEADERS_MAX);
	evhttp_set_max_body_size(mh->http, MH_BODY_MAX);
	evhttp_set_timeout(mh->http, MH_TIMEOUT_S);
	evhttp_set_gencb(mh->http, mh_on_request, mh);
	if ((mh->tick = event_new(mh->base, -1, EV_PERSIST, mh_on_tick, mh)) ==
	        NULL ||
	    event_add(mh->tick, &tv) == -1 ||
	    pthread_create(&mh->thread, NULL, mh_main, mh) != 0) {
		snprintf(err, errlen, "metrics_listen %s: cannot start", addr);
		mh_free(mh);
		return NULL;
	}
	return mh;
}

void
metrics_http_stop(struct metrics_http *mh)
{
	if (mh == NULL)
		return;
	pthread_join(mh->thread, NULL);
	mh_free(mh);
}
