/* cmd_node.c - `sluicectl node ...`: enrol, list, inspect, drain, resume
 * and remove relay nodes.  Node state and metrics come from the
 * controller's last heartbeat of each node. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "output.h"

static char *
one_name(int argc, char **argv, const char *usage)
{
	if (argc != 1 || argv[0][0] == '-')
		ctl_usage(usage);
	return argv[0];
}

int
cmd_node_add(struct ctl *ctl, int argc, char **argv)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__NodeAddRequest add = SLUICE__NODE_ADD_REQUEST__INIT;
	Sluice__AdminReply *r;
	struct json j;

	add.name = one_name(argc, argv, "node add NAME");
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_NODE_ADD;
	req.node_add = &add;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_NODE_ADD)
		ctl_die("controller sent an unexpected reply to node add");
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_str(&j, "name", r->node_add->name);
		json_str(&j, "token", r->node_add->token);
		json_object_end(&j);
	} else
		printf("node %s added; enrollment token: %s (shown once)\n",
		    r->node_add->name, r->node_add->token);
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

Sluice__AdminReply *
admin_node_list(struct ctl *ctl)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__Empty empty = SLUICE__EMPTY__INIT;
	Sluice__AdminReply *r;

	req.body_case = SLUICE__ADMIN_REQUEST__BODY_NODE_LIST;
	req.node_list = &empty;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_NODE_LIST ||
	    r->node_list == NULL)
		ctl_die("controller sent an unexpected reply to node list");
	return r;
}

static bool
drifts(const Sluice__NodeStatus *n, uint64_t latest)
{
	return n->policy_version != latest;
}

void
json_metrics(struct json *j, const Sluice__QueueMetrics *m)
{
	Sluice__QueueMetrics zero = SLUICE__QUEUE_METRICS__INIT;
	size_t i;

	if (m == NULL)
		m = &zero;
	json_object_begin(j, "metrics");
	json_uint(j, "messages", m->messages);
	json_uint(j, "bytes", m->bytes);
	json_uint(j, "active", m->active);
	json_uint(j, "deferred", m->deferred);
	json_uint(j, "held", m->held);
	json_uint(j, "oldest_age_s", m->oldest_age_s);
	json_uint(j, "connections", m->connections);
	json_uint(j, "accepted", m->accepted);
	json_uint(j, "refused", m->refused);
	json_uint(j, "delivered", m->delivered);
	json_uint(j, "deferred_attempts", m->deferred_attempts);
	json_uint(j, "bounced", m->bounced);
	json_uint(j, "auth_failures", m->auth_failures);
	json_bool(j, "draining", m->draining);
	json_bool(j, "drained", m->drained);
	json_bool(j, "handoff", m->handoff);
	/* issue 13, shadow redundancy */
	json_object_begin(j, "shadow");
	json_uint(j, "held", m->shadow_held);
	json_uint(j, "held_bytes", m->shadow_bytes);
	json_uint(j, "copied", m->shadow_copied);
	json_uint(j, "unprotected", m->shadow_unprotected);
	json_uint(j, "refused", m->shadow_refused);
	json_uint(j, "promoted", m->shadow_promoted);
	json_uint(j, "pending_release", m->shadow_pending_release);
	json_str(j, "degraded", m->shadow_degraded);
	json_object_end(j);
	json_array_begin(j, "hops");
	for (i = 0; i < m->n_hops; i++) {
		const Sluice__HopMetrics *h = m->hops[i];
		json_object_begin(j, NULL);
		json_str(j, "name", h->name);
		json_bool(j, "circuit_open", h->circuit_open);
		json_uint(j, "connections", h->connections);
		json_uint(j, "recent_failures", h->recent_failures);
		json_uint(j, "delivered", h->delivered);
		json_uint(j, "failed", h->failed);
		json_bool(j, "half_open", h->half_open);
		json_bool(j, "throttled", h->throttled);
		json_uint(j, "throttled_for_s", h->throttled_for_s);
		json_uint(j, "throttle_window_s", h->throttle_window_s);
		json_bool(j, "fleet_paused", h->fleet_paused);
		json_str(j, "fleet_paused_by", h->fleet_paused_by);
		json_uint(j, "own_throttled_for_s", h->own_throttled_for_s);
		json_str(j, "alert_scope", h->alert_scope);
		json_str(j, "alert_reply", h->alert_reply);
		json_object_end(j);
	}
	json_array_end(j);
	json_array_begin(j, "shape");
	for (i = 0; i < m->n_shape; i++) {
		const Sluice__QueueShape *s = m->shape[i];
		size_t k;
		json_object_begin(j, NULL);
		json_str(j, "domain", s->domain);
		json_uint(j, "messages", s->messages);
		json_uint(j, "deferred", s->deferred);
		json_uint(j, "held", s->held);
		json_array_begin(j, "age_buckets");
		for (k = 0; k < s->n_age_buckets; k++)
			json_uint(j, NULL, s->age_buckets[k]);
		json_array_end(j);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}

void
json_node(struct json *j, const Sluice__NodeStatus *n, uint64_t latest)
{
	json_object_begin(j, NULL);
	json_str(j, "name", n->name);
	json_uint(j, "id", n->id);
	json_str(j, "address", n->address);
	json_str(j, "software_version", n->software_version);
	json_uint(j, "policy_version", n->policy_version);
	json_int(j, "last_heartbeat_at", n->last_heartbeat_at);
	json_int(j, "created_at", n->created_at);
	json_str(j, "state", n->state);
	json_str(j, "shadow_address", n->shadow_address);
	json_bool(j, "policy_from_cache", n->policy_from_cache);
	json_bool(j, "drift", drifts(n, latest));
	json_uint(j, "accepted_per_min", n->accepted_per_min);
	json_uint(j, "delivered_per_min", n->delivered_per_min);
	json_int(j, "heartbeat_age_ms", n->heartbeat_age_ms);
	json_metrics(j, n->metrics);
	json_object_end(j);
}

static void
policy_cell(const Sluice__NodeStatus *n, uint64_t latest, char *buf, size_t len)
{
	if (n->last_heartbeat_at == 0 && n->policy_version == 0)
		snprintf(buf, len, "-");
	else if (drifts(n, latest))
		snprintf(buf, len, "%" PRIu64 " (latest %" PRIu64 ") DRIFT%s",
		    n->policy_version, latest,
		    n->policy_from_cache ? " cached" : "");
	else
		snprintf(buf, len, "%" PRIu64 "%s", n->policy_version,
		    n->policy_from_cache ? " cached" : "");
}

int
cmd_node_list(struct ctl *ctl, int argc, char **argv)
{
	Sluice__AdminReply *r;
	Sluice__NodeListReply *l;
	struct table t;
	struct json j;
	char pol[64], seen[32], q[32];
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("node list");
	r = admin_node_list(ctl);
	l = r->node_list;
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_array_begin(&j, "nodes");
		for (i = 0; i < l->n_nodes; i++)
			json_node(&j, l->nodes[i], l->latest_policy_version);
		json_array_end(&j);
		json_uint(
		    &j, "latest_policy_version", l->latest_policy_version);
		json_object_end(&j);
	} else if (l->n_nodes == 0)
		printf("no nodes (add one with: sluicectl node add NAME)\n");
	else {
		table_init(&t, 7, "NAME", "STATE", "ADDRESS", "VERSION",
		    "POLICY", "LAST-SEEN", "QUEUE");
		for (i = 0; i < l->n_nodes; i++) {
			const Sluice__NodeStatus *n = l->nodes[i];
			policy_cell(
			    n, l->latest_policy_version, pol, sizeof(pol));
			fmt_ago(n->last_heartbeat_at, (int64_t)time(NULL), seen,
			    sizeof(seen));
			snprintf(q, sizeof(q), "%" PRIu64,
			    n->metrics ? n->metrics->messages : 0);
			table_row(&t, n->name, n->state,
			    n->address[0] ? n->address : "-",
			    n->software_version[0] ? n->software_version : "-",
			    pol, seen, q);
		}
		table_print(&t, stdout);
	}
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

int
cmd_node_show(struct ctl *ctl, int argc, char **argv)
{
	const char *name = one_name(argc, argv, "node show NAME");
	const Sluice__NodeStatus *n = NULL;
	const Sluice__QueueMetrics *m;
	Sluice__QueueMetrics zero = SLUICE__QUEUE_METRICS__INIT;
	Sluice__AdminReply *r;
	uint64_t latest;
	struct json j;
	char buf[64], when[32];
	size_t i;

	r = admin_node_list(ctl);
	latest = r->node_list->latest_policy_version;
	for (i = 0; i < r->node_list->n_nodes; i++)
		if (strcmp(r->node_list->nodes[i]->name, name) == 0)
			n = r->node_list->nodes[i];
	if (n == NULL)
		ctl_die("no node named '%s'", name);
	if (ctl->json) {
		json_init(&j, stdout);
		json_node(&j, n, latest);
		sluice__admin_reply__free_unpacked(r, NULL);
		return 0;
	}
	m = n->metrics ? n->metrics : &zero;
	printf("name:              %s\n", n->name);
	printf("id:                %" PRIu64 "\n", n->id);
	printf("state:             %s\n", n->state);
	printf("address:           %s\n", n->address[0] ? n->address : "-");
	printf("software version:  %s\n",
	    n->software_version[0] ? n->software_version : "-");
	policy_cell(n, latest, buf, sizeof(buf));
	printf("policy version:    %s\n", buf);
	fmt_time(n->last_heartbeat_at, when, sizeof(when));
	fmt_ago(n->last_heartbeat_at, (int64_t)time(NULL), buf, sizeof(buf));
	printf("last heartbeat:    %s (%s)\n", when, buf);
	fmt_time(n->created_at, when, sizeof(when));
	printf("enrolled:          %s\n", when);
	printf("queue:             %" PRIu64 " messages, %" PRIu64
	       " bytes (active %" PRIu64 ", deferred %" PRIu64 ", held %" PRIu64
	       ")\n",
	    m->messages, m->bytes, m->active, m->deferred, m->held);
	printf("oldest message:    %" PRIu64 "s\n", m->oldest_age_s);
	printf("since start:       %" PRIu64 " connections, %" PRIu64
	       " accepted, %" PRIu64 " refused, %" PRIu64 " delivered, %" PRIu64
	       " deferred attempts, %" PRIu64 " bounced, %" PRIu64
	       " AUTH failures\n",
	    m->connections, m->accepted, m->refused, m->delivered,
	    m->deferred_attempts, m->bounced, m->auth_failures);
	printf("shadow copies:     %" PRIu64 " held for peers (%" PRIu64
	       " bytes); of ours %" PRIu64 " copied, %" PRIu64
	       " unprotected, %" PRIu64 " refused; %" PRIu64 " promoted%s%s\n",
	    m->shadow_held, m->shadow_bytes, m->shadow_copied,
	    m->shadow_unprotected, m->shadow_refused, m->shadow_promoted,
	    m->shadow_degraded[0] ? "; degraded: " : "", m->shadow_degraded);
	printf("draining:          %s\n", m->drained    ? "drained"
	                                  : m->draining ? "yes"
	                                                : "no");
	if (m->n_hops > 0) {
		struct table t;
		char c[16], f[16], d[24], x[24], th[32];
		printf("\n");
		table_init(&t, 8, "HOP", "CIRCUIT", "THROTTLE", "CONNS",
		    "RECENT-FAIL", "DELIVERED", "FAILED", "ALERT");
		for (i = 0; i < m->n_hops; i++) {
			const Sluice__HopMetrics *h = m->hops[i];
			snprintf(c, sizeof(c), "%" PRIu32, h->connections);
			snprintf(f, sizeof(f), "%" PRIu32, h->recent_failures);
			snprintf(d, sizeof(d), "%" PRIu64, h->delivered);
			snprintf(x, sizeof(x), "%" PRIu64, h->failed);
			if (h->throttled)
				snprintf(th, sizeof(th),
				    "paused %" PRIu32 "s%s", h->throttled_for_s,
				    h->fleet_paused ? " fleet" : "");
			else
				snprintf(th, sizeof(th), "-");
			table_row(&t, h->name,
			    h->circuit_open ? "open"
			    : h->half_open  ? "half-open"
			                    : "closed",
			    th, c, f, d, x,
			    h->alert_scope[0] != '\0' ? h->alert_scope : "-");
		}
		table_print(&t, stdout);
	}
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

static int
node_action(struct ctl *ctl, int argc, char **argv, const char *verb,
    Sluice__AdminRequest__BodyCase which, const char *done)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__NodeNameRequest nn = SLUICE__NODE_NAME_REQUEST__INIT;
	Sluice__AdminReply *r;
	char usage[64];
	struct json j;

	snprintf(usage, sizeof(usage), "node %s NAME%s", verb,
	    which == SLUICE__ADMIN_REQUEST__BODY_NODE_DRAIN ? " [--handoff]"
	                                                    : "");
	if (which == SLUICE__ADMIN_REQUEST__BODY_NODE_DRAIN && argc == 2 &&
	    strcmp(argv[1], "--handoff") == 0) {
		nn.handoff = true;
		argc = 1;
		done = "draining: it stops accepting mail and hands its queue "
		       "to the other nodes";
	}
	nn.name = one_name(argc, argv, usage);
	req.body_case = which;
	switch (which) {
	case SLUICE__ADMIN_REQUEST__BODY_NODE_REMOVE:
		req.node_remove = &nn;
		break;
	case SLUICE__ADMIN_REQUEST__BODY_NODE_DRAIN:
		req.node_drain = &nn;
		break;
	case SLUICE__ADMIN_REQUEST__BODY_NODE_LOST:
		req.node_lost = &nn;
		break;
	default:
		req.node_resume = &nn;
		break;
	}
	r = admin_call(ctl, &req, NULL);
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_str(&j, "name", nn.name);
		json_str(&j, "action", verb);
		if (nn.handoff)
			json_bool(&j, "handoff", true);
		json_bool(&j, "ok", true);
		json_object_end(&j);
	} else
		printf("node %s %s\n", nn.name, done);
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

int
cmd_node_remove(struct ctl *ctl, int argc, char **argv)
{
	return node_action(ctl, argc, argv, "remove",
	    SLUICE__ADMIN_REQUEST__BODY_NODE_REMOVE, "removed");
}

int
cmd_node_drain(struct ctl *ctl, int argc, char **argv)
{
	return node_action(ctl, argc, argv, "drain",
	    SLUICE__ADMIN_REQUEST__BODY_NODE_DRAIN,
	    "draining: it stops accepting mail and delivers its queue");
}

int
cmd_node_resume(struct ctl *ctl, int argc, char **argv)
{
	return node_action(ctl, argc, argv, "resume",
	    SLUICE__ADMIN_REQUEST__BODY_NODE_RESUME,
	    "resumed: it accepts mail again");
}

int
cmd_node_lost(struct ctl *ctl, int argc, char **argv)
{
	return node_action(ctl, argc, argv, "lost",
	    SLUICE__ADMIN_REQUEST__BODY_NODE_LOST,
	    "declared lost: its peers promote the shadow copies of its mail "
	    "at their next heartbeat, and it is refused if it comes back");
}
