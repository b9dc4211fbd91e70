/* metrics.c - Prometheus text format (version 0.0.4) for a node: every
 * sample has a HELP and TYPE line, counters end in _total, units are in
 * the names. */
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "control.h"
#include "journal.h"
#include "node.h"
#include "shadow.h"
#include "signer.h"
#include "spool.h"

const char *const metrics_config_keys[] = {"metrics_listen", NULL};

/* Every request has a ceiling: a scrape is one short GET line and a few
 * headers.  Over the size, libevent answers 413 and closes; a connection
 * that sends nothing for the timeout is closed (slowloris).  libevent 2.1
 * has no header-count limit: the size bounds the count too. */
#define METRICS_HEADERS_MAX 8192
#define METRICS_BODY_MAX    1024
#define METRICS_TIMEOUT_S   5

struct metrics {
	struct evhttp *http;
};

static void
metric(struct evbuffer *b, const char *name, const char *type, const char *help,
    uint64_t v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n",
	    name, help, name, type, name, v);
}

/* Per-hop health from the delivery engine (issue 5).  Hop names come from
 * policy (letters, digits, ._-), so they need no label escaping. */
static void
metrics_hops(const struct node_report *r, struct evbuffer *b)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
	    {"sluice_hop_circuit_open", "gauge",
	        "1 when the hop is out of rotation (circuit open)."},
	    {"sluice_hop_connections", "gauge", "Open connections to the hop."},
	    {"sluice_hop_recent_failures", "gauge",
	        "Consecutive recent failures of the hop."},
	    {"sluice_hop_deliveries_total", "counter",
	        "Transactions in which the hop accepted mail."},
	    {"sluice_hop_failures_total", "counter",
	        "Failed sessions or transactions through the hop."},
	    {"sluice_hop_half_open", "gauge",
	        "1 when the cool-down is over and a probe decides."},
	    {"sluice_hop_throttled", "gauge",
	        "1 while the hop is paused behind the others (throttling)."},
	    {"sluice_hop_throttled_seconds", "gauge",
	        "Seconds left of the hop's throttle pause."},
	    {"sluice_hop_throttle_window_seconds", "gauge",
	        "The provider's throttle window (0: doubling back-off)."},
	};
	const struct delivery_hop_metric *hm = r->hops;
	size_t i, k, nh = r->nhops;
	uint64_t v;

	for (k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n",
		    fam[k].name, fam[k].help, fam[k].name, fam[k].type);
		for (i = 0; i < nh; i++) {
			v = k == 0   ? hm[i].circuit_open
			    : k == 1 ? hm[i].connections
			    : k == 2 ? hm[i].recent_failures
			    : k == 3 ? hm[i].delivered
			    : k == 4 ? hm[i].failed
			    : k == 5 ? hm[i].half_open
			    : k == 6 ? hm[i].throttled
			    : k == 7 ? hm[i].throttled_for_s
			             : hm[i].throttle_window_s;
			evbuffer_add_printf(b, "%s{hop=\"%s\"} %" PRIu64 "\n",
			    fam[k].name, hm[i].name, v);
		}
	}
	/* Issue 10: credentials/config or account trouble, by scope (a
	 * fixed word), while it lasts. */
	evbuffer_add_printf(b,
	    "# HELP sluice_hop_alert 1 while a reply says the hop needs its "
	    "operator (scope hop-config or account).\n"
	    "# TYPE sluice_hop_alert gauge\n");
	for (i = 0; i < nh; i++) {
		if (hm[i].alert_scope[0] != '\0')
			evbuffer_add_printf(b,
			    "sluice_hop_alert{hop=\"%s\",scope=\"%s\"} 1\n",
			    hm[i].name, hm[i].alert_scope);
	}
}

static void
metrics_dkim_signed(
    const char *domain, uint64_t nsigned, uint64_t nfailed, void *arg)
{
	(void)nfailed;
	evbuffer_add_printf(arg,
	    "sluice_dkim_signed_total{domain=\"%s\"} %" PRIu64 "\n", domain,
	    nsigned);
}

static void
metrics_dkim_failed(
    const char *domain, uint64_t nsigned, uint64_t nfailed, void *arg)
{
	(void)nsigned;
	evbuffer_add_printf(arg,
	    "sluice_dkim_failures_total{domain=\"%s\"} %" PRIu64 "\n", domain,
	    nfailed);
}

/* Messages signed and signing failures per signing domain. */
static void
metrics_dkim(const struct node *n, struct evbuffer *b)
{
	evbuffer_add_printf(b,
	    "# HELP sluice_dkim_signed_total Messages DKIM-signed, per "
	    "signing domain.\n# TYPE sluice_dkim_signed_total counter\n");
	signer_counts(n->signer, metrics_dkim_signed, b);
	evbuffer_add_printf(b,
	    "# HELP sluice_dkim_failures_total DKIM signing failures (sent "
	    "unsigned or deferred), per signing domain.\n"
	    "# TYPE sluice_dkim_failures_total counter\n");
	signer_counts(n->signer, metrics_dkim_failed, b);
}

/* Group-commit latency as a Prometheus histogram (cumulative buckets). */
static void
metrics_spool(const struct node *n, struct evbuffer *b)
{
	struct spool_counters c;
	uint64_t cum = 0;
	size_t i;

	memset(&c, 0, sizeof(c));
	if (n->spool != NULL)
		spool_counters(n->spool, &c);
	evbuffer_add_printf(b,
	    "# HELP sluice_spool_commit_seconds Time to make a batch of "
	    "messages durable (fdatasync, group commit).\n"
	    "# TYPE sluice_spool_commit_seconds histogram\n");
	for (i = 0; i < SPOOL_SYNC_BUCKETS - 1; i++) {
		cum += c.sync_buckets[i];
		evbuffer_add_printf(b,
		    "sluice_spool_commit_seconds_bucket{le=\"%g\"} %" PRIu64
		    "\n",
		    (double)spool_sync_bounds_us[i] / 1e6, cum);
	}
	cum += c.sync_buckets[i];
	evbuffer_add_printf(b,
	    "sluice_spool_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	    "sluice_spool_commit_seconds_sum %.6f\n"
	    "sluice_spool_commit_seconds_count %" PRIu64 "\n",
	    cum, (double)c.sync_us / 1e6, cum);
	evbuffer_add_printf(b,
	    "# HELP sluice_spool_segments Segment files in the spool.\n"
	    "# TYPE sluice_spool_segments gauge\n"
	    "sluice_spool_segments %" PRIu64 "\n"
	    "# HELP sluice_spool_segments_recycled_total Reclaimed segments "
	    "reused as new ones.\n"
	    "# TYPE sluice_spool_segments_recycled_total counter\n"
	    "sluice_spool_segments_recycled_total %" PRIu64 "\n",
	    c.segments, c.segments_recycled);
}

/* Accept latency as the node sees it: final "." read -> 250 queued. */
static void
metrics_accept(const struct node *n, struct evbuffer *b)
{
	uint64_t cum = 0, v;
	size_t i;

	evbuffer_add_printf(b,
	    "# HELP sluice_smtp_accept_seconds Time from a message's final "
	    "\".\" read to its 250 queued on the connection (group commit, "
	    "and the peer copy with redundancy).\n"
	    "# TYPE sluice_smtp_accept_seconds histogram\n");
	for (i = 0; i < NODE_ACCEPT_BUCKETS; i++) {
		cum += atomic_load(&n->stats.accept_buckets[i]);
		if (i < NODE_ACCEPT_BUCKETS - 1)
			evbuffer_add_printf(b,
			    "sluice_smtp_accept_seconds_bucket{le=\"%g\"} "
			    "%" PRIu64 "\n",
			    (double)node_accept_bound_us(i) / 1e6, cum);
	}
	v = atomic_load(&n->stats.accept_us);
	evbuffer_add_printf(b,
	    "sluice_smtp_accept_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	    "sluice_smtp_accept_seconds_sum %.6f\n"
	    "sluice_smtp_accept_seconds_count %" PRIu64 "\n",
	    cum, (double)v / 1e6, cum);
}

/* Shadow redundancy (issue 13, docs/redundancy.md). */
static void
metrics_shadow(const struct node *n, struct evbuffer *b)
{
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	char why[256];

	shadow_metrics(n->shadow, &m, why, sizeof(why));
	metric(b, "sluice_shadow_held_messages", "gauge",
	    "Shadow copies of peers' messages held here.", m.shadow_held);
	metric(b, "sluice_shadow_held_bytes", "gauge",
	    "Bytes of the shadow copies held here.", m.shadow_bytes);
	metric(b, "sluice_shadow_copied_total", "counter",
	    "Messages of ours a peer acknowledged a copy of.", m.shadow_copied);
	metric(b, "sluice_shadow_unprotected_total", "counter",
	    "Messages accepted without a peer copy (no_peer = accept).",
	    m.shadow_unprotected);
	metric(b, "sluice_shadow_refused_total", "counter",
	    "Messages refused for want of a peer copy (no_peer = defer).",
	    m.shadow_refused);
	metric(b, "sluice_shadow_promoted_total", "counter",
	    "Lost peers' copies taken into our queue.", m.shadow_promoted);
	metric(b, "sluice_shadow_pending_releases", "gauge",
	    "Releases not yet acknowledged by the holders.",
	    m.shadow_pending_release);
}

/* From the report the heartbeat carries too (control.h), built now. */
void
metrics_render(const struct node *n, struct evbuffer *b)
{
	const struct node_report *r = control_report(n->control);

	metric(b, "sluice_connections_total", "counter",
	    "SMTP connections accepted.", r->connections);
	metric(b, "sluice_messages_accepted_total", "counter",
	    "Messages accepted and queued (250 after fsync).", r->accepted);
	metric(b, "sluice_transactions_refused_total", "counter",
	    "SMTP transactions or commands refused by policy or limits.",
	    r->refused);
	metric(b, "sluice_deliveries_total", "counter", "Recipients delivered.",
	    r->delivered);
	metric(b, "sluice_delivery_deferrals_total", "counter",
	    "Delivery attempts deferred.", r->deferred_attempts);
	metric(b, "sluice_bounces_total", "counter", "Recipients bounced.",
	    r->bounced);
	metric(b, "sluice_auth_failures_total", "counter",
	    "Failed SMTP AUTH attempts.", r->auth_failures);
	metric(b, "sluice_quota_refusals_total", "counter",
	    "MAIL or RCPT refused with 451 4.7.1: a user's quota is reached.",
	    r->quota_refused);
	metric(b, "sluice_queue_messages", "gauge", "Messages in the spool.",
	    r->queue_messages);
	metric(b, "sluice_queue_bytes", "gauge",
	    "Bytes of message data in the spool.", r->queue_bytes);
	evbuffer_add_printf(b,
	    "# HELP sluice_queue_state_messages Messages in the spool by "
	    "state.\n# TYPE sluice_queue_state_messages gauge\n"
	    "sluice_queue_state_messages{state=\"active\"} %" PRIu64 "\n"
	    "sluice_queue_state_messages{state=\"deferred\"} %" PRIu64 "\n"
	    "sluice_queue_state_messages{state=\"held\"} %" PRIu64 "\n",
	    r->queue_active, r->queue_deferred, r->queue_held);
	metric(b, "sluice_queue_oldest_age_seconds", "gauge",
	    "Age of the oldest message in the spool.", r->oldest_age_s);
	metric(b, "sluice_policy_version", "gauge",
	    "Policy version the node runs.", r->policy_version);
	metric(b, "sluice_events_unacked", "gauge",
	    "Delivery-record events not yet acknowledged by a controller.",
	    n->journal != NULL ? journal_unacked(n->journal) : 0);
	metric(b, "sluice_draining", "gauge",
	    "1 while the node drains (listeners closed, delivery goes on).",
	    r->draining);
	metrics_spool(n, b);
	metrics_accept(n, b);
	metrics_hops(r, b);
	metrics_dkim(n, b);
	metrics_shadow(n, b);
}

static void
metrics_on_request(struct evhttp_request *req, void *arg)
{
	struct node *n = arg;
	struct evbuffer *b;

	if (strcmp(evhttp_request_get_uri(req), "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	metrics_render(n, b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

struct metrics *
metrics_open(struct node *n, char *err, size_t errlen)
{
	const char *v = config_get(n->conf, "metrics_listen");
	struct metrics *m;
	char host[256], *colon;
	long port;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (v == NULL)
		return m;
	snprintf(host, sizeof(host), "%s", v);
	if ((colon = strrchr(host, ':')) == NULL ||
	    (port = strtol(colon + 1, NULL, 10)) <= 0 || port > 65535) {
		snprintf(err, errlen, "metrics_listen '%s': want ADDR:PORT", v);
		free(m);
		return NULL;
	}
	*colon = '\0';
	if (host[0] == '[' && colon > host && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if ((m->http = evhttp_new(n->base)) == NULL ||
	    evhttp_bind_socket(m->http, host, (uint16_t)port) != 0) {
		snprintf(err, errlen, "metrics_listen %s: cannot bind", v);
		if (m->http != NULL)
			evhttp_free(m->http);
		free(m);
		return NULL;
	}
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET);
	evhttp_set_max_headers_size(m->http, METRICS_HEADERS_MAX);
	evhttp_set_max_body_size(m->http, METRICS_BODY_MAX);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_gencb(m->http, metrics_on_request, n);
	return m;
}

void
metrics_close(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m->http != NULL)
		evhttp_free(m->http);
	free(m);
}
