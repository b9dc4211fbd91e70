/* health.c - pure alert conditions (health.h).  Kinds and subjects:
 *   node_silent       NODE            no heartbeat for silent_after_ms
 *   queue_backlog     NODE            messages > alert_queue_backlog_messages
 *   oldest_message    NODE            oldest > alert_oldest_message_seconds
 *   auth_failures     NODE            AUTH failures a minute over the limit
 *   auth_burst_ip     IP              the same, from one client IP, fleet-wide
 *   auth_burst_user   USER            the same, against one user, fleet-wide
 *   hop_circuit_open  NODE/HOP        the node's circuit for HOP is open
 *   hop_config        NODE/HOP        HOP refuses our credentials/config
 *   hop_account       NODE/HOP        HOP's provider paused our account
 *   route_down        NODE/PATTERN    every hop of the route is open there
 *   events_quarantined NODE           events of the node the store refused
 *   shadow_degraded   NODE            mail accepted without a peer copy, or
 *                                     refused for want of one (issue 13)
 *   node_lost         NODE            silent beyond
 *                                     redundancy_lost_after_seconds: declared
 *                                     lost, its copies promoted (alert.c)
 * A silent node's last metrics are stale: only node_silent is said of it.
 * Nothing is said of a node whose heartbeat is older than its silent
 * period while the controller has not watched for that long itself.
 * Called by alert.c once per health tick. */
#include "health.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "limit_table.h"

static void health_say(health_cb cb, void *arg, size_t *n, const char *kind,
    const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
health_say(health_cb cb, void *arg, size_t *n, const char *kind,
    const char *subject, const char *fmt, ...)
{
	struct health_alert a;
	va_list ap;

	memset(&a, 0, sizeof(a));
	snprintf(a.kind, sizeof(a.kind), "%s", kind);
	snprintf(a.subject, sizeof(a.subject), "%s", subject);
	va_start(ap, fmt);
	vsnprintf(a.message, sizeof(a.message), fmt, ap);
	va_end(ap);
	cb(arg, &a);
	(*n)++;
}

static const Sluice__HopMetrics *
health_hop(const Sluice__QueueMetrics *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n_hops; i++)
		if (strcmp(m->hops[i]->name, name) == 0)
			return m->hops[i];
	return NULL;
}

/* Every hop of every group reported with an open circuit.  A hop the node
 * does not report (never used, or "mx", which has no circuit) is not
 * known to be down. */
static bool
health_route_down(const Sluice__Route *r, const Sluice__QueueMetrics *m)
{
	const Sluice__HopMetrics *h;
	size_t g, i, nhops = 0;

	for (g = 0; g < r->n_groups; g++)
		for (i = 0; i < r->groups[g]->n_hops; i++) {
			h = health_hop(m, r->groups[g]->hops[i]);
			if (h == NULL || !h->circuit_open)
				return false;
			nhops++;
		}
	return nhops > 0;
}

static void
health_node(const struct health_input *in, const struct health_node *hn,
    health_cb cb, void *arg, size_t *n)
{
	const Sluice__QueueMetrics *m = hn->metrics;
	int64_t backlog, oldest, authmax, silent, lost;
	char subject[160];
	size_t i;

	if (hn->is_new)
		return;
	if (hn->events_quarantined > 0)
		health_say(cb, arg, n, "events_quarantined", hn->name,
		    "node %s: %" PRIu64 " events the store refused were "
		    "quarantined in the last day (table events_quarantine)",
		    hn->name, hn->events_quarantined);
	silent = health_silent_after(in->silent_after_ms, hn->heartbeat_ms);
	if (hn->heartbeat_age_ms < 0 || hn->heartbeat_age_ms > silent) {
		/* Not watched for a whole period: no verdict yet. */
		if (in->watched_ms <= silent)
			return;
		health_say(cb, arg, n, "node_silent", hn->name,
		    "node %s has not sent a heartbeat for %.1f s", hn->name,
		    (double)hn->heartbeat_age_ms / 1000.0);
		lost = limit_value(
		           in->policy, LIMIT_REDUNDANCY_LOST_AFTER_SECONDS) *
		       1000;
		/* Lost: watched for that long ourselves, and silent. */
		if (lost > 0 && hn->heartbeat_age_ms > lost &&
		    in->watched_ms > lost)
			health_say(cb, arg, n, "node_lost", hn->name,
			    "node %s has been silent for %.0f s: declared "
			    "lost, its peers promote its shadow copies",
			    hn->name, (double)hn->heartbeat_age_ms / 1000.0);
		return;
	}
	if (m == NULL)
		return;
	if (m->shadow_degraded[0] != '\0')
		health_say(cb, arg, n, "shadow_degraded", hn->name,
		    "node %s: mail without a peer copy (%" PRIu64
		    " accepted, %" PRIu64 " refused so far): %s",
		    hn->name, m->shadow_unprotected, m->shadow_refused,
		    m->shadow_degraded);
	backlog = limit_get(in->policy, "alert_queue_backlog_messages");
	oldest = limit_get(in->policy, "alert_oldest_message_seconds");
	authmax = limit_get(in->policy, "alert_auth_failures_per_minute");
	if (backlog > 0 && m->messages > (uint64_t)backlog)
		health_say(cb, arg, n, "queue_backlog", hn->name,
		    "node %s queues %" PRIu64 " messages (alert above %" PRId64
		    ")",
		    hn->name, m->messages, backlog);
	if (oldest > 0 && m->oldest_age_s > (uint64_t)oldest)
		health_say(cb, arg, n, "oldest_message", hn->name,
		    "node %s has a message queued for %" PRIu64
		    " s (alert above %" PRId64 ")",
		    hn->name, m->oldest_age_s, oldest);
	if (authmax > 0 && hn->auth_failures_per_min > (uint64_t)authmax)
		health_say(cb, arg, n, "auth_failures", hn->name,
		    "node %s saw %" PRIu64 " AUTH failures in a minute (alert "
		    "above %" PRId64 ")",
		    hn->name, hn->auth_failures_per_min, authmax);
	for (i = 0; i < m->n_hops; i++) {
		if (!m->hops[i]->circuit_open)
			continue;
		snprintf(subject, sizeof(subject), "%s/%s", hn->name,
		    m->hops[i]->name);
		health_say(cb, arg, n, "hop_circuit_open", subject,
		    "node %s has taken hop %s out of rotation after %" PRIu32
		    " failures",
		    hn->name, m->hops[i]->name, m->hops[i]->recent_failures);
	}
	/* Issue 10: replies about our credentials, configuration or
	 * provider account.  Mail fails over meanwhile; only a person can
	 * fix these.  Cleared when the hop accepts mail again. */
	for (i = 0; i < m->n_hops; i++) {
		const Sluice__HopMetrics *h = m->hops[i];
		bool acct;

		if (h->alert_scope == NULL || h->alert_scope[0] == '\0')
			continue;
		acct = strcmp(h->alert_scope, "account") == 0;
		snprintf(subject, sizeof(subject), "%s/%s", hn->name, h->name);
		health_say(cb, arg, n, acct ? "hop_account" : "hop_config",
		    subject, "node %s: hop %s %s (mail fails over): %.150s",
		    hn->name, h->name,
		    acct ? "says the provider account is paused or over its "
		           "quota"
		         : "refuses our credentials or configuration",
		    h->alert_reply != NULL ? h->alert_reply : "");
	}
	if (in->policy == NULL)
		return;
	for (i = 0; i < in->policy->n_routes; i++) {
		const Sluice__Route *r = in->policy->routes[i];

		if (!health_route_down(r, m))
			continue;
		snprintf(
		    subject, sizeof(subject), "%s/%s", hn->name, r->pattern);
		health_say(cb, arg, n, "route_down", subject,
		    "node %s: every hop of route '%s' is down", hn->name,
		    r->pattern);
	}
}

/* A node whose last metrics count: heard from, not silent. */
static bool
health_fresh(const struct health_input *in, const struct health_node *hn)
{
	return !hn->is_new && hn->heartbeat_age_ms >= 0 &&
	       hn->heartbeat_age_ms <=
	           health_silent_after(in->silent_after_ms, hn->heartbeat_ms) &&
	       hn->metrics != NULL;
}

/* AUTH failure bursts by client IP and by user, summed over the fleet: a
 * guessing attack spread over several nodes behind a load balancer is
 * still one attack.  Nodes report their worst subjects of the last minute
 * (QueueMetrics.auth_failures_by). */
static void
health_auth_bursts(
    const struct health_input *in, health_cb cb, void *arg, size_t *n)
{
	const Sluice__AuthFailures *a, *b;
	int64_t max = limit_get(in->policy, "alert_auth_failures_per_minute");
	char kind[32];
	uint64_t sum;
	size_t i, k, j, l;
	bool seen;

	if (max <= 0)
		return;
	for (i = 0; i < in->nnodes; i++) {
		if (!health_fresh(in, &in->nodes[i]))
			continue;
		for (k = 0; k < in->nodes[i].metrics->n_auth_failures_by; k++) {
			a = in->nodes[i].metrics->auth_failures_by[k];
			/* counted already with an earlier node? */
			seen = false;
			for (j = 0; j < i && !seen; j++) {
				if (!health_fresh(in, &in->nodes[j]))
					continue;
				for (l = 0;
				     l <
				     in->nodes[j].metrics->n_auth_failures_by;
				     l++) {
					b = in->nodes[j]
					        .metrics->auth_failures_by[l];
					if (strcmp(a->kind, b->kind) == 0 &&
					    strcmp(a->subject, b->subject) == 0)
						seen = true;
				}
			}
			if (seen)
				continue;
			sum = 0;
			for (j = i; j < in->nnodes; j++) {
				if (!health_fresh(in, &in->nodes[j]))
					continue;
				for (l = 0;
				     l <
				     in->nodes[j].metrics->n_auth_failures_by;
				     l++) {
					b = in->nodes[j]
					        .metrics->auth_failures_by[l];
					if (strcmp(a->kind, b->kind) == 0 &&
					    strcmp(a->subject, b->subject) == 0)
						sum += b->failures;
				}
			}
			if (sum <= (uint64_t)max)
				continue;
			snprintf(kind, sizeof(kind), "auth_burst_%s",
			    strcmp(a->kind, "user") == 0 ? "user" : "ip");
			health_say(cb, arg, n, kind, a->subject,
			    "%" PRIu64 " AUTH failures in a minute %s %s "
			    "(alert above %" PRId64 ")",
			    sum,
			    strcmp(a->kind, "user") == 0 ? "against user"
			                                 : "from",
			    a->subject, max);
		}
	}
}

size_t
health_evaluate(const struct health_input *in, health_cb cb, void *arg)
{
	size_t i, n = 0;

	for (i = 0; i < in->nnodes; i++)
		health_node(in, &in->nodes[i], cb, arg, &n);
	health_auth_bursts(in, cb, arg, &n);
	return n;
}

int64_t
health_silent_after(int64_t configured_ms, int64_t heartbeat_ms)
{
	int64_t ms;

	if (configured_ms > 0)
		return configured_ms;
	ms = 3 * (heartbeat_ms > 0 ? heartbeat_ms : 2000);
	/* A shorter silence is a busy controller or database more often
	 * than a dead node: never below HEALTH_SILENT_MIN_MS. */
	return ms < HEALTH_SILENT_MIN_MS ? HEALTH_SILENT_MIN_MS : ms;
}

const char *
health_state(int64_t last_heartbeat_at, int64_t heartbeat_age_ms,
    int64_t silent_after_ms, bool is_draining, const Sluice__QueueMetrics *m)
{
	if (last_heartbeat_at == 0)
		return "new";
	if (heartbeat_age_ms < 0 || heartbeat_age_ms > silent_after_ms)
		return "silent";
	if (is_draining)
		return m != NULL && m->draining && m->drained ? "drained"
		                                              : "draining";
	return "up";
}
