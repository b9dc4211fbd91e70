/* control.c - the loop side of the cluster link (control.h).
 *
 * Every heartbeat period the loop builds one report and hands it, packed,
 * to the uplink thread (uplink.h); the thread's answers come back through
 * the mailbox and are applied here.  The drain and handoff state, the
 * command results, the running policy's identity: plain fields, loop
 * thread only. */
#include "control.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authwatch.h"
#include "handoff.h"
#include "handoff_held.h"
#include "journal.h"
#include "log.h"
#include "node.h"
#include "policy.h"
#include "proto.h"
#include "qshape.h"
#include "queue_cmd.h"
#include "quota.h"
#include "rpc.h"
#include "shadow.h"
#include "signer.h"
#include "smtp_server.h"
#include "spool.h"
#include "uplink.h"

#define CONTROL_RING      64   /* remembered results */
#define CONTROL_AUTH_TOP  20   /* AUTH offenders reported */
#define CONTROL_QUOTA_MAX 4096 /* quota counts per heartbeat */

struct control_rec {
	uint64_t id;
	bool used;
	bool sent;        /* a heartbeat reply acknowledged it */
	uint64_t sent_in; /* the last report that carried it */
	uint8_t *packed;  /* CommandResult */
	size_t len;
};

struct control {
	struct node *n;
	struct uplink *uplink;
	struct event *ev_tick;
	uint64_t seq; /* reports built */
	/* the running policy's identity */
	uint64_t running_version;
	char running_hash[65];
	bool from_cache;
	/* command results */
	struct control_rec ring[CONTROL_RING];
	size_t next;
	/* the controller's hop budget shares and pauses, as last applied */
	struct delivery_share shares[DELIVERY_SHARES_MAX];
	size_t nshares;
	size_t npauses;
	/* drain, drain --handoff */
	bool draining, drained, handoff;
	struct policy *orig; /* the controller's policy, while handing off */
	/* strings owned here; shadow "" when the mail goes over SMTP */
	struct handoff_peer peers[HANDOFF_PEERS_MAX];
	size_t npeers;
	bool warned_no_peers;
	struct handoff_held *held; /* held messages to hand off */
	struct node_report report;
};

/* ------------------------------------------------------ the policy */

/* The handoff variant of p: every route to the peers.  NULL if it
 * cannot be built (logged). */
static struct policy *
control_handoff_policy(struct control *c, const struct policy *p)
{
	Sluice__Policy *snap;
	struct policy *h;
	char err[256];

	if ((snap = handoff_snapshot(
	         policy_snapshot(p), c->peers, c->npeers)) == NULL)
		return NULL;
	if ((h = policy_new(snap, err, sizeof(err))) == NULL) {
		log_warnx(
		    "node %s: handoff policy invalid: %s", c->n->name, err);
		sluice__policy__free_unpacked(snap, NULL);
	}
	return h;
}

/* Runs p now: the policy slot, the DKIM keys, the identity reported. */
static void
control_swap(struct control *c, struct policy *p)
{
	struct node *n = c->n;
	uint64_t from = policy_version(n->policy);
	struct signer *sg;

	policy_unref(n->policy);
	n->policy = p;
	c->running_version = policy_version(p);
	snprintf(c->running_hash, sizeof(c->running_hash), "%s",
	    policy_snapshot(p) != NULL ? policy_snapshot(p)->content_hash : "");
	if ((sg = signer_new(policy_snapshot(p), n->signer)) != NULL) {
		signer_free(n->signer);
		n->signer = sg;
	} else
		log_warn("node %s: out of memory loading DKIM keys; the "
		         "previous ones stay",
		    n->name);
	if (from != policy_version(p))
		log_info("node %s: running policy version %" PRIu64
		         " (was %" PRIu64 ")%s",
		    n->name, policy_version(p), from,
		    c->from_cache ? " from cache" : "");
}

void
control_install(struct control *c, struct policy *p, bool from_cache)
{
	struct policy *h;

	c->from_cache = from_cache;
	/* A new controller policy while handing off: keep it for resume,
	 * run its handoff variant. */
	if (c->handoff && (h = control_handoff_policy(c, p)) != NULL) {
		policy_unref(c->orig);
		c->orig = p;
		p = h;
	}
	control_swap(c, p);
}

/* ------------------------------------------------- drain, handoff */

static void
control_peer_free(struct handoff_peer *p)
{
	free((char *)(uintptr_t)p->addr);
	free((char *)(uintptr_t)p->name);
	free((char *)(uintptr_t)p->shadow);
	memset(p, 0, sizeof(*p));
}

static void
control_peers_free(struct control *c)
{
	size_t i;

	for (i = 0; i < c->npeers; i++)
		control_peer_free(&c->peers[i]);
	c->npeers = 0;
}

/* Peer i of cmd, kept; its mail goes over the shadow channel when it has
 * one this node can dial (the whole envelope travels), else over SMTP,
 * said once per handoff: the peer then sees a plain relay client. */
static void
control_peer_add(struct control *c, const Sluice__Command *cmd, size_t i)
{
	const char *name = i < cmd->n_peer_names ? cmd->peer_names[i] : "";
	const char *sh = i < cmd->n_peer_shadow ? cmd->peer_shadow[i] : "";
	struct handoff_peer *p = &c->peers[c->npeers];

	if (sh[0] == '\0' || !shadow_can_dial(c->n->shadow, sh)) {
		log_warnx("node %s: handoff to %s (%s) over SMTP: %s; the "
		          "mail arrives there as from a relay client, and "
		          "route conditions on user, client and listener, "
		          "user holds and quotas do not apply to it",
		    c->n->name, name[0] ? name : "a peer", cmd->peers[i],
		    sh[0] == '\0' ? "it has no shadow channel (shadow_listen)"
		                  : "no TLS for the shadow channel here "
		                    "(shadow_ca/cert/key) and the peer is "
		                    "not on loopback");
		sh = "";
	}
	p->addr = strdup(cmd->peers[i]);
	p->name = strdup(name);
	p->shadow = strdup(sh);
	if (p->addr == NULL || p->name == NULL || p->shadow == NULL) {
		control_peer_free(p);
		return;
	}
	c->npeers++;
}

/* Hand the queue to the peers: routes to them, deferred mail due now. */
static void
control_handoff_start(struct control *c, const Sluice__Command *cmd)
{
	char host[256];
	struct policy *h;
	uint32_t port;
	size_t i;

	control_peers_free(c);
	for (i = 0; i < cmd->n_peers && c->npeers < HANDOFF_PEERS_MAX; i++) {
		if (handoff_peer_split(
		        cmd->peers[i], host, sizeof(host), &port) == -1) {
			log_warnx("node %s: handoff peer '%s' is not host:port",
			    c->n->name, cmd->peers[i]);
			continue;
		}
		control_peer_add(c, cmd, i);
	}
	if (c->npeers == 0) {
		if (!c->warned_no_peers)
			log_warnx("node %s: handoff: no live peer; delivering "
			          "the queue itself",
			    c->n->name);
		c->warned_no_peers = true;
		return;
	}
	if ((h = control_handoff_policy(c, c->n->policy)) == NULL)
		return;
	c->orig = policy_ref(c->n->policy);
	control_swap(c, h); /* before the flag: not filtered again */
	c->handoff = true;
	(void)queue_cmd_due_now(c->n->spool);
	delivery_kick(c->n->delivery);
	handoff_held_run(c->held, c->peers, c->npeers);
	log_info("node %s: handing off %" PRIu64 " queued messages to %zu "
	         "peer%s (first %s%s%s)",
	    c->n->name, (uint64_t)atomic_load(&c->n->stats.queue_messages),
	    c->npeers, c->npeers == 1 ? "" : "s", c->peers[0].addr,
	    c->peers[0].shadow[0] ? ", shadow channel " : ", SMTP",
	    c->peers[0].shadow);
}

static void
control_handoff_stop(struct control *c)
{
	struct policy *orig = c->orig;

	if (!c->handoff)
		return;
	c->handoff = false;
	c->orig = NULL;
	if (orig != NULL)
		control_swap(c, orig);
	log_info("node %s: handoff ended; the controller's routes again",
	    c->n->name);
}

static void
control_drain(struct control *c, const Sluice__Command *cmd, bool on)
{
	if (on && cmd->handoff && !c->handoff)
		control_handoff_start(c, cmd);
	if (!on)
		control_handoff_stop(c);
	if (c->draining == on)
		return;
	if (on) {
		smtp_server_pause(c->n->smtp);
		log_info("node %s: draining: listeners closed, delivery goes "
		         "on",
		    c->n->name);
	} else {
		smtp_server_resume(c->n->smtp);
		log_info("node %s: resumed: listening again", c->n->name);
	}
	c->draining = on;
	c->drained = false;
}

/* ------------------------------------------------------- commands */

static struct control_rec *
control_rec_find(struct control *c, uint64_t id)
{
	size_t i;

	for (i = 0; i < CONTROL_RING; i++)
		if (c->ring[i].used && c->ring[i].id == id)
			return &c->ring[i];
	return NULL;
}

static void
control_run(struct control *c, const Sluice__Command *cmd)
{
	Sluice__CommandResult res = SLUICE__COMMAND_RESULT__INIT;
	struct queue_cmd_deps d;
	struct control_rec *r;
	uint8_t *buf;
	size_t len, i;

	switch (cmd->kind) {
	case SLUICE__COMMAND_KIND__CMD_DRAIN:
		control_drain(c, cmd, true);
		return;
	case SLUICE__COMMAND_KIND__CMD_RESUME:
		control_drain(c, cmd, false);
		return;
	default:
		break;
	}
	if ((r = control_rec_find(c, cmd->id)) != NULL) {
		/* Seen: the controller did not get the result; say it again. */
		r->sent = false;
		return;
	}
	res.id = cmd->id;
	d.name = c->n->name;
	d.spool = c->n->spool;
	d.journal = c->n->journal;
	d.delivery = c->n->delivery;
	queue_cmd_run(&d, cmd, &res);
	buf = rpc_pack(&res.base, &len);
	for (i = 0; i < res.n_messages; i++)
		sluice__queued_message__free_unpacked(res.messages[i], NULL);
	free(res.messages);
	if (res.text != protobuf_c_empty_string)
		free(res.text);
	if (buf == NULL)
		return;
	r = &c->ring[c->next];
	c->next = (c->next + 1) % CONTROL_RING;
	free(r->packed);
	memset(r, 0, sizeof(*r));
	r->id = cmd->id;
	r->used = true;
	r->packed = buf;
	r->len = len;
}

/* The controller's hop budget shares: applied when they changed. */
static void
control_shares(struct control *c, Sluice__HopShare *const *v, size_t n)
{
	struct delivery_share s[DELIVERY_SHARES_MAX];
	size_t i;

	memset(s, 0, sizeof(s));
	if (n > DELIVERY_SHARES_MAX)
		n = DELIVERY_SHARES_MAX;
	for (i = 0; i < n; i++) {
		snprintf(s[i].hop, sizeof(s[i].hop), "%s", v[i]->hop);
		s[i].max_conn = v[i]->max_conn;
		s[i].rate = v[i]->rate_per_minute;
	}
	if (n == c->nshares && memcmp(s, c->shares, sizeof(s)) == 0)
		return;
	memcpy(c->shares, s, sizeof(s));
	c->nshares = n;
	delivery_set_shares(c->n->delivery, s, n);
	for (i = 0; i < n; i++)
		log_info("node %s: hop %s share max_conn=%u rate=%u/min",
		    c->n->name, s[i].hop, (unsigned)s[i].max_conn,
		    (unsigned)s[i].rate);
}

/* Fleet-wide hop pauses: the times move on every heartbeat, so applied
 * unless there are none then and now. */
static void
control_pauses(struct control *c, Sluice__HopPause *const *v, size_t n)
{
	struct delivery_pause p[DELIVERY_PAUSES_MAX];
	size_t i;

	memset(p, 0, sizeof(p));
	if (n > DELIVERY_PAUSES_MAX)
		n = DELIVERY_PAUSES_MAX;
	for (i = 0; i < n; i++) {
		snprintf(p[i].hop, sizeof(p[i].hop), "%s", v[i]->hop);
		snprintf(p[i].node, sizeof(p[i].node), "%s", v[i]->node);
		p[i].for_ms = v[i]->for_ms;
		p[i].window_s = v[i]->window_s;
	}
	if (n == 0 && c->npauses == 0)
		return;
	c->npauses = n;
	delivery_set_pauses(c->n->delivery, p, n);
}

/* The controller's quota allowances for this node (quota.h). */
static void
control_quota_grants(struct control *c, const Sluice__HeartbeatReply *hb)
{
	struct quota_grant *g;
	size_t i, k = 0;
	int d;

	if ((g = calloc(hb->n_quota_grants + 1, sizeof(*g))) == NULL)
		return;
	for (i = 0; i < hb->n_quota_grants; i++) {
		const Sluice__QuotaGrant *qg = hb->quota_grants[i];

		if ((d = quota_dim_parse(qg->dim)) == -1 ||
		    strlen(qg->user) >= sizeof(g[k].user))
			continue;
		memcpy(g[k].user, qg->user, strlen(qg->user) + 1);
		g[k].dim = (enum quota_dim)d;
		g[k].window_start = qg->window_start;
		g[k].limit = qg->limit;
		k++;
	}
	quota_grants(c->n->quota, g, k, hb->live_nodes, (int64_t)time(NULL));
	free(g);
}

/* ------------------------------------------ what the uplink posts */

static void
control_on_reply(void *arg, uint64_t seq, Sluice__HeartbeatReply *hb)
{
	struct control *c = arg;
	size_t i;

	/* The results that report carried reached the controller. */
	for (i = 0; i < CONTROL_RING; i++)
		if (c->ring[i].used && c->ring[i].sent_in == seq)
			c->ring[i].sent = true;
	/* The controller answers and runs what we run: the cached copy is
	 * the current policy now, not a fallback (`node list` stops saying
	 * "cached"). */
	if (hb->policy_version != 0 &&
	    hb->policy_version == c->running_version &&
	    (hb->policy_hash[0] == '\0' ||
	        strcmp(hb->policy_hash, c->running_hash) == 0))
		c->from_cache = false;
	for (i = 0; i < hb->n_commands; i++)
		control_run(c, hb->commands[i]);
	control_shares(c, hb->hop_shares, hb->n_hop_shares);
	control_pauses(c, hb->hop_pauses, hb->n_hop_pauses);
	shadow_post(c->n->shadow, hb->shadow_peer, hb->shadow_peer_address,
	    hb->shadow_promote, hb->n_shadow_promote);
	control_quota_grants(c, hb);
	/* events_rewind: done by the uplink thread, in order with its event
	 * reports (uplink.c) */
	sluice__heartbeat_reply__free_unpacked(hb, NULL);
}

static void
control_on_policy(void *arg, struct policy *p)
{
	control_install(arg, p, false);
}

static void
control_on_refused(void *arg, const char *why)
{
	struct control *c = arg;

	log_warnx("node %s: controller refused this node: %s; stopping",
	    c->n->name, why);
	event_base_loopbreak(c->n->base);
}

/* ------------------------------------------------------ the report */

const struct node_report *
control_report(struct control *c)
{
	const struct node_stats *s = &c->n->stats;
	struct node_report *r = &c->report;
	int64_t oldest = atomic_load(&s->queue_oldest_at);
	size_t i;

	r->at = (int64_t)time(NULL);
	r->connections = atomic_load(&s->connections);
	r->accepted = atomic_load(&s->accepted);
	r->refused = atomic_load(&s->refused);
	r->delivered = atomic_load(&s->delivered);
	r->deferred_attempts = atomic_load(&s->deferred_attempts);
	r->bounced = atomic_load(&s->bounced);
	r->auth_failures = atomic_load(&s->auth_failures);
	r->quota_refused = atomic_load(&s->quota_refused);
	r->queue_messages = atomic_load(&s->queue_messages);
	r->queue_bytes = atomic_load(&s->queue_bytes);
	r->queue_active = atomic_load(&s->queue_active);
	r->queue_deferred = atomic_load(&s->queue_deferred);
	r->queue_held = atomic_load(&s->queue_held);
	r->oldest_age_s =
	    oldest > 0 && oldest < r->at ? (uint64_t)(r->at - oldest) : 0;
	r->policy_version = c->running_version;
	r->policy_from_cache = c->from_cache;
	/* Drained: draining with an empty queue and no SMTP session open. */
	c->drained = c->draining && r->queue_messages == 0 &&
	             smtp_server_sessions(c->n->smtp) == 0;
	r->draining = c->draining;
	r->drained = c->drained;
	r->handoff = c->handoff;
	r->nhops =
	    delivery_hop_metrics(c->n->delivery, r->hops, CONTROL_HOPS_MAX);
	for (i = 0; i < r->nhops; i++) {
		r->hops[i].name[sizeof(r->hops[i].name) - 1] = '\0';
		r->hops[i]
		    .fleet_paused_by[sizeof(r->hops[i].fleet_paused_by) - 1] =
		    '\0';
		r->hops[i].alert_scope[sizeof(r->hops[i].alert_scope) - 1] =
		    '\0';
		r->hops[i].alert[sizeof(r->hops[i].alert) - 1] = '\0';
	}
	return r;
}

/* The report's counters and hop health as the heartbeat carries them;
 * hv/hp have CONTROL_HOPS_MAX entries. */
static void
control_fill_metrics(const struct node_report *r, Sluice__QueueMetrics *m,
    Sluice__HopMetrics *hv, Sluice__HopMetrics **hp)
{
	size_t i;

	m->messages = r->queue_messages;
	m->bytes = r->queue_bytes;
	m->active = r->queue_active;
	m->deferred = r->queue_deferred;
	m->held = r->queue_held;
	m->oldest_age_s = r->oldest_age_s;
	m->connections = r->connections;
	m->accepted = r->accepted;
	m->refused = r->refused;
	m->delivered = r->delivered;
	m->deferred_attempts = r->deferred_attempts;
	m->bounced = r->bounced;
	m->auth_failures = r->auth_failures;
	m->draining = r->draining;
	m->drained = r->drained;
	m->handoff = r->handoff;
	for (i = 0; i < r->nhops; i++) {
		const struct delivery_hop_metric *h = &r->hops[i];

		sluice__hop_metrics__init(&hv[i]);
		hv[i].name = (char *)(uintptr_t)h->name;
		hv[i].circuit_open = h->circuit_open;
		hv[i].connections = h->connections;
		hv[i].recent_failures = h->recent_failures;
		hv[i].delivered = h->delivered;
		hv[i].failed = h->failed;
		hv[i].throttled = h->throttled;
		hv[i].throttled_for_s = h->throttled_for_s;
		hv[i].throttle_window_s = h->throttle_window_s;
		hv[i].half_open = h->half_open;
		hv[i].fleet_paused = h->fleet_paused;
		hv[i].own_throttled_for_s = h->own_throttled_for_s;
		hv[i].fleet_paused_by = (char *)(uintptr_t)h->fleet_paused_by;
		hv[i].alert_scope = (char *)(uintptr_t)h->alert_scope;
		hv[i].alert_reply = (char *)(uintptr_t)h->alert;
		hp[i] = &hv[i];
	}
	m->hops = hp;
	m->n_hops = r->nhops;
}

static int
control_shape_cb(const struct spool_info *si, void *arg)
{
	return qshape_add(arg, si) == -1 ? 1 : 0;
}

/* The queue by domain, the largest groups (NULL: empty queue or ENOMEM;
 * the heartbeat then goes without). */
static struct qshape *
control_shape(
    struct control *c, const struct node_report *r, Sluice__QueueMetrics *m)
{
	struct qshape *q;
	bool oom = false;

	if (r->queue_messages == 0 || (q = qshape_new(r->at)) == NULL)
		return NULL;
	/* spool_foreach stops when the callback says so */
	if (spool_foreach(c->n->spool, control_shape_cb, q) != 0)
		oom = true;
	if (oom) {
		qshape_free(q);
		return NULL;
	}
	m->n_shape = qshape_top(q, &m->shape);
	return q;
}

/* The command results not yet acknowledged, unpacked, marked as carried
 * by report seq. */
static size_t
control_results(struct control *c, uint64_t seq, Sluice__CommandResult ***out)
{
	Sluice__CommandResult **v;
	size_t i, n = 0;

	*out = NULL;
	if ((v = calloc(CONTROL_RING, sizeof(*v))) == NULL)
		return 0;
	for (i = 0; i < CONTROL_RING; i++) {
		struct control_rec *r = &c->ring[i];

		if (!r->used || r->sent || r->packed == NULL)
			continue;
		if ((v[n] = sluice__command_result__unpack(
		         NULL, r->len, r->packed)) != NULL) {
			r->sent_in = seq;
			n++;
		}
	}
	*out = v;
	return n;
}

/* Per-user quota counts of the current windows (quota.h), as the
 * heartbeat carries them; the arrays are malloc'd for the caller. */
static size_t
control_quota(struct control *c, int64_t now, struct quota_usage **usage,
    Sluice__QuotaUsage **qv, Sluice__QuotaUsage ***qp)
{
	size_t i, n;

	*qv = NULL;
	*qp = NULL;
	if ((*usage = calloc(CONTROL_QUOTA_MAX, sizeof(**usage))) == NULL)
		return 0;
	n = quota_usage(c->n->quota, now, *usage, CONTROL_QUOTA_MAX);
	if (n == 0 || (*qv = calloc(n, sizeof(**qv))) == NULL ||
	    (*qp = calloc(n, sizeof(**qp))) == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		sluice__quota_usage__init(&(*qv)[i]);
		(*qv)[i].user = (*usage)[i].user;
		(*qv)[i].dim = (*usage)[i].dim_name;
		(*qv)[i].window_start = (*usage)[i].window_start;
		(*qv)[i].used = (*usage)[i].used;
		(*qv)[i].refused = (*usage)[i].refused;
		(*qp)[i] = &(*qv)[i];
	}
	return n;
}

/* One heartbeat: the report, built here, packed, handed to the uplink. */
static void
control_heartbeat(struct control *c)
{
	Sluice__HeartbeatRequest hb = SLUICE__HEARTBEAT_REQUEST__INIT;
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	Sluice__HopMetrics hv[CONTROL_HOPS_MAX], *hp[CONTROL_HOPS_MAX];
	struct authwatch_top at[CONTROL_AUTH_TOP];
	Sluice__AuthFailures av[CONTROL_AUTH_TOP], *ap[CONTROL_AUTH_TOP];
	Sluice__CommandResult **results;
	Sluice__QuotaUsage *qv, **qp;
	struct quota_usage *qu;
	struct uplink_report *rep;
	const struct node_report *r;
	struct qshape *shape;
	char degraded[256];
	size_t i, nresults;

	if (c->uplink == NULL || (rep = calloc(1, sizeof(*rep))) == NULL)
		return;
	rep->seq = ++c->seq;
	r = control_report(c);
	control_fill_metrics(r, &m, hv, hp);
	m.n_auth_failures_by =
	    authwatch_top(c->n->authwatch, r->at, at, CONTROL_AUTH_TOP);
	for (i = 0; i < m.n_auth_failures_by; i++) {
		sluice__auth_failures__init(&av[i]);
		av[i].kind = at[i].kind;
		av[i].subject = at[i].subject;
		av[i].failures = at[i].failures;
		ap[i] = &av[i];
	}
	m.auth_failures_by = ap;
	shadow_metrics(c->n->shadow, &m, degraded, sizeof(degraded));
	shape = control_shape(c, r, &m);
	nresults = control_results(c, rep->seq, &results);
	hb.results = results;
	hb.n_results = nresults;
	hb.policy_version = c->running_version;
	hb.policy_hash = c->running_hash;
	hb.metrics = &m;
	hb.policy_from_cache = c->from_cache;
	hb.heartbeat_ms = (uint32_t)c->n->heartbeat_ms;
	hb.shadow_address = (char *)(uintptr_t)shadow_address(c->n->shadow);
	hb.n_quota_usage = control_quota(c, r->at, &qu, &qv, &qp);
	hb.quota_usage = qp;
	rep->hb = rpc_pack(&hb.base, &rep->len);
	rep->running_version = c->running_version;
	memcpy(rep->running_hash, c->running_hash, sizeof(rep->running_hash));
	rep->from_cache = c->from_cache;
	qshape_free(shape);
	for (i = 0; i < nresults; i++)
		sluice__command_result__free_unpacked(results[i], NULL);
	free(results);
	free(qp);
	free(qv);
	free(qu);
	if (rep->hb == NULL) {
		uplink_report_free(rep);
		return;
	}
	uplink_send(c->uplink, rep);
}

static void
control_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;

	(void)fd;
	(void)what;
	/* held messages are not the delivery engine's: handed off here,
	 * again each period for those that failed or were held since */
	if (c->handoff)
		handoff_held_run(c->held, c->peers, c->npeers);
	control_heartbeat(c);
}

/* --------------------------------------------------- open / close */

struct control *
control_open(struct node *n)
{
	struct control *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->held = handoff_held_new(n)) == NULL) {
		free(c);
		return NULL;
	}
	c->n = n;
	c->running_version = policy_version(n->policy);
	return c;
}

int
control_start(struct control *c, char *err, size_t errlen)
{
	struct uplink_conf uc;
	struct timeval tv;

	memset(&uc, 0, sizeof(uc));
	uc.conf = c->n->conf;
	uc.name = c->n->name;
	uc.hostname = c->n->hostname;
	uc.spool_dir = c->n->spool_dir;
	uc.shadow_address = shadow_address(c->n->shadow);
	uc.heartbeat_ms = c->n->heartbeat_ms;
	uc.journal = c->n->journal;
	uc.mailbox = c->n->mailbox;
	uc.hooks.on_reply = control_on_reply;
	uc.hooks.on_policy = control_on_policy;
	uc.hooks.on_refused = control_on_refused;
	uc.hooks.arg = c;
	tv.tv_sec = c->n->heartbeat_ms / 1000;
	tv.tv_usec = (c->n->heartbeat_ms % 1000) * 1000;
	if ((c->ev_tick = event_new(
	         c->n->base, -1, EV_PERSIST, control_on_tick, c)) == NULL ||
	    event_add(c->ev_tick, &tv) == -1) {
		snprintf(err, errlen, "cannot add the heartbeat timer");
		return -1;
	}
	if ((c->uplink = uplink_start(&uc, err, errlen)) == NULL)
		return -1;
	control_heartbeat(c); /* the first one now: Hello, then this */
	return 0;
}

void
control_stop(struct control *c)
{
	if (c == NULL)
		return;
	if (c->ev_tick != NULL)
		event_del(c->ev_tick);
	uplink_stop(c->uplink);
	c->uplink = NULL;
}

int
control_refused(const struct control *c)
{
	return c != NULL && uplink_refused(c->uplink);
}

void
control_close(struct control *c)
{
	size_t i;

	if (c == NULL)
		return;
	control_stop(c);
	if (c->ev_tick != NULL)
		event_free(c->ev_tick);
	for (i = 0; i < CONTROL_RING; i++)
		free(c->ring[i].packed);
	control_peers_free(c);
	handoff_held_free(c->held);
	policy_unref(c->orig);
	free(c);
}
