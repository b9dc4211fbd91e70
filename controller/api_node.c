/* api_node.c - the node endpoint: one handler per NodeRequest body (hello,
 * heartbeat, get_policy, report_events).  Every request is authenticated
 * by NodeAuth against the stored token digest before anything else; an
 * unauthenticated peer learns only "denied".  Garbage gets "bad_request"
 * and a rate-limited warning; store failures map to "unavailable" or
 * "internal".  Runs on the node thread only (see controller.c). */
#include "api.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allowance.h"
#include "budget.h"
#include "log.h"
#include "token.h"

/* Queue commands per heartbeat reply: the rest wait for the next one. */
#define API_NODE_COMMANDS_MAX 16
#define API_NODE_SHARES_MAX   64   /* budgeted hops per reply */
#define API_NODE_LIVE_MAX     4096 /* nodes sharing a budget */
#define API_NODE_PEERS_MAX    32   /* handoff targets per drain command */

/* Per-credential quotas: allowances per reply, stored rows read. */
#define API_NODE_QUOTA_MAX  4096
#define API_NODE_QUOTA_ROWS 1048576

/* The reply a handler fills in: every pointer in it is owned by the
 * handler's frame or freed by api_node_handle after packing. */
struct api_node_out {
	Sluice__NodeReply reply;
	Sluice__HelloReply hello;
	Sluice__HeartbeatReply heartbeat;
	Sluice__Command cmd;
	char *peers[API_NODE_PEERS_MAX];
	char *peer_names[API_NODE_PEERS_MAX];
	char *peer_shadow[API_NODE_PEERS_MAX];
	Sluice__Command **cmds; /* malloc'd; [0] may be &cmd */
	size_t ncmds;
	Sluice__GetPolicyReply get_policy;
	Sluice__Policy empty;
	Sluice__Policy *policy; /* unpacked snapshot to free */
	Sluice__ReportEventsReply report_events;
	struct budget_share bs[API_NODE_SHARES_MAX];
	Sluice__HopShare shares[API_NODE_SHARES_MAX];
	Sluice__HopShare *sharev[API_NODE_SHARES_MAX];
	Sluice__HopPause pause[HOP_PAUSE_MAX];
	Sluice__HopPause *pausev[HOP_PAUSE_MAX];
	char head_hash[STORE_HASH_LEN];
	/* issue 13: shadow peer and lost nodes (api_node_shadow) */
	char shadow_peer[128], shadow_addr[256];
	char **lost;
	size_t nlost;
	Sluice__QuotaGrant *qg;   /* malloc'd, strings point into the */
	Sluice__QuotaGrant **qgv; /* cached policy and quota_dims */
};

static int
api_node_auth(struct api *a, const struct rpc_peer *peer,
    const Sluice__NodeAuth *auth, uint64_t *id, struct api_error *e)
{
	struct store_node_auth row;
	char digest[TOKEN_DIGEST_LEN + 1], name[80], who[96];
	const char *why;
	int rc;

	api_printable(auth ? auth->node_name : "", name, sizeof(name));
	if (auth == NULL || auth->node_name[0] == '\0') {
		why = "no node name";
		goto denied;
	}
	if (token_digest(auth->token, digest) == -1) {
		api_error_set(e, "internal",
		    "The controller cannot hash the "
		    "token; see its log.");
		return -1;
	}
	rc = store_node_auth(a->store, auth->node_name, &row);
	if (rc == STORE_NOT_FOUND) {
		why = "unknown node";
		goto denied;
	}
	if (rc != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	if (!token_digest_equal(digest, row.digest)) {
		why = "wrong token";
		goto denied;
	}
	if (row.is_lost) {
		/* Its shadows were promoted by its peers: a node that comes
		 * back with its old queue would deliver that mail twice. */
		log_warnx("node: denied name=%s peer=%s reason=\"declared "
		          "lost\"",
		    name, api_peer(peer, who, sizeof(who)));
		api_error_set(e, "denied",
		    "node '%s' was declared lost and its mail taken over; "
		    "enrol it again (node remove, node add) with an empty "
		    "spool",
		    name);
		return -1;
	}
	*id = row.id;
	return 0;
denied:
	/* Not rate limited: refusals are what an operator looks for. */
	log_warnx("node: denied name=%s peer=%s reason=\"%s\"", name,
	    api_peer(peer, who, sizeof(who)), why);
	api_error_set(e, "denied",
	    "node '%s' is not enrolled or its token is wrong", name);
	return -1;
}

static int
api_node_hello(struct api *a, const struct rpc_peer *peer,
    const Sluice__HelloRequest *req, struct api_node_out *o,
    struct api_error *e)
{
	Sluice__HelloReply *hr = &o->hello;
	uint64_t id, head;
	char name[80], who[96];
	int rc;

	if (api_node_auth(a, peer, req->auth, &id, e) == -1)
		return -1;
	if ((rc = store_node_hello(a->store, id, req->software_version,
	         req->address)) != STORE_OK ||
	    (rc = store_shadow_address(a->store, id, req->shadow_address)) !=
	        STORE_OK ||
	    (rc = store_policy_head(a->store, false, &head)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	log_info("node: hello name=%s id=%llu version=%s peer=%s",
	    api_printable(req->auth->node_name, name, sizeof(name)),
	    (unsigned long long)id,
	    api_printable(req->software_version, who, sizeof(who)),
	    peer->addr[0] ? peer->addr : "unknown");
	sluice__hello_reply__init(hr);
	hr->node_id = id;
	hr->policy_version = head;
	o->reply.body_case = SLUICE__NODE_REPLY__BODY_HELLO;
	o->reply.hello = hr;
	return 0;
}

/* Counter increments between two heartbeats; a counter that went down
 * means the node restarted and counts from zero again. */
static uint64_t
api_node_delta(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : now;
}

static void
api_node_history(struct api *a, uint64_t id, const Sluice__QueueMetrics *m,
    const uint8_t *prev, size_t prevlen)
{
	Sluice__QueueMetrics zero = SLUICE__QUEUE_METRICS__INIT, *p = NULL;
	const Sluice__QueueMetrics *b = &zero;
	struct store_minute sm;

	if (prev != NULL &&
	    (p = sluice__queue_metrics__unpack(NULL, prevlen, prev)) != NULL)
		b = p;
	sm.connections = api_node_delta(m->connections, b->connections);
	sm.accepted = api_node_delta(m->accepted, b->accepted);
	sm.refused = api_node_delta(m->refused, b->refused);
	sm.delivered = api_node_delta(m->delivered, b->delivered);
	sm.deferred_attempts =
	    api_node_delta(m->deferred_attempts, b->deferred_attempts);
	sm.bounced = api_node_delta(m->bounced, b->bounced);
	sm.auth_failures = api_node_delta(m->auth_failures, b->auth_failures);
	sm.messages = m->messages;
	sm.oldest_age_s = m->oldest_age_s;
	/* History is best effort: a failure is logged by the store and
	 * must not fail the heartbeat. */
	(void)store_metrics_minute(a->store, id, &sm);
	if (p != NULL)
		sluice__queue_metrics__free_unpacked(p, NULL);
}

/* The node's results of earlier commands. */
static void
api_node_results(
    struct api *a, uint64_t id, const Sluice__HeartbeatRequest *req)
{
	uint8_t *buf;
	size_t i, len;

	for (i = 0; i < req->n_results; i++) {
		if ((buf = rpc_pack(&req->results[i]->base, &len)) == NULL)
			continue;
		(void)store_command_done(
		    a->store, id, req->results[i]->id, buf, len);
		free(buf);
	}
}

static int
api_node_peer_cb(void *arg, const char *name, const char *address,
    const char *shadow_address)
{
	struct api_node_out *o = arg;
	size_t n = o->cmd.n_peers;

	if (n == API_NODE_PEERS_MAX)
		return 1;
	o->peers[n] = strdup(address);
	o->peer_names[n] = strdup(name);
	o->peer_shadow[n] = strdup(shadow_address);
	if (o->peers[n] == NULL || o->peer_names[n] == NULL ||
	    o->peer_shadow[n] == NULL) {
		free(o->peers[n]);
		free(o->peer_names[n]);
		free(o->peer_shadow[n]);
		return 1;
	}
	o->cmd.n_peers = o->cmd.n_peer_names = o->cmd.n_peer_shadow = n + 1;
	o->cmd.peers = o->peers;
	o->cmd.peer_names = o->peer_names;
	o->cmd.peer_shadow = o->peer_shadow;
	return 0;
}

struct api_node_pending {
	struct api_node_out *o;
	size_t cap;
};

static int
api_node_pending_cb(void *arg, const struct store_command_row *r)
{
	struct api_node_pending *p = arg;
	Sluice__Command *c;

	if (p->o->ncmds == p->cap || (c = calloc(1, sizeof(*c))) == NULL)
		return 1;
	sluice__command__init(c);
	c->id = r->id;
	c->kind = (Sluice__CommandKind)r->kind;
	c->queue_id = strdup(r->queue_id);
	c->state = strdup(r->state);
	c->domain = strdup(r->domain);
	c->limit = r->limit;
	p->o->cmds[p->o->ncmds++] = c;
	if (c->queue_id == NULL || c->state == NULL || c->domain == NULL)
		return 1;
	return 0;
}

struct api_node_live {
	struct budget_node *v;
	size_t n;
};

static int
api_node_live_cb(void *arg, uint64_t id, const uint8_t *m, size_t len)
{
	struct api_node_live *l = arg;
	Sluice__QueueMetrics *qm;

	if (l->n == API_NODE_LIVE_MAX)
		return 1;
	l->v[l->n].id = id;
	l->v[l->n].demand = 0;
	if (m != NULL &&
	    (qm = sluice__queue_metrics__unpack(NULL, len, m)) != NULL) {
		l->v[l->n].demand = qm->messages;
		sluice__queue_metrics__free_unpacked(qm, NULL);
	}
	l->n++;
	return 0;
}

/* The head policy, cached by version (hop budgets and quotas); NULL when
 * there is none or it cannot be read. */
static const Sluice__Policy *
api_node_head_policy(struct api *a, uint64_t head)
{
	uint8_t *buf;
	size_t len;

	if (head == 0)
		return NULL;
	if (a->budget_version != head) {
		api_cache_free(a);
		if (store_policy_snapshot(a->store, head, &buf, &len) !=
		    STORE_OK)
			return NULL;
		a->budget_policy = sluice__policy__unpack(NULL, len, buf);
		free(buf);
		if (a->budget_policy == NULL)
			return NULL;
		a->budget_version = head;
	}
	return a->budget_policy;
}

/* This node's share of every hop whose max_conn or rate is a fleet
 * budget (budget.c), re-divided among the live nodes at every heartbeat.
 * Best effort: on a store failure the node keeps its last shares. */
static void
api_node_budget(
    struct api *a, uint64_t id, uint64_t head, struct api_node_out *o)
{
	struct api_node_live l = {NULL, 0};
	size_t i, n;

	if (api_node_head_policy(a, head) == NULL ||
	    !budget_any(a->budget_policy))
		return;
	if ((l.v = calloc(API_NODE_LIVE_MAX, sizeof(*l.v))) == NULL)
		return;
	if (store_node_live(a->store, a->silent_after_ms, api_node_live_cb,
	        &l) == STORE_OK) {
		n = budget_shares(
		    a->budget_policy, l.v, l.n, id, o->bs, API_NODE_SHARES_MAX);
		for (i = 0; i < n; i++) {
			sluice__hop_share__init(&o->shares[i]);
			o->shares[i].hop = o->bs[i].hop;
			o->shares[i].max_conn = o->bs[i].max_conn;
			o->shares[i].rate_per_minute = o->bs[i].rate;
			o->sharev[i] = &o->shares[i];
		}
		o->heartbeat.hop_shares = o->sharev;
		o->heartbeat.n_hop_shares = n;
	}
	free(l.v);
}

static int
api_node_pause_cb(
    void *arg, const char *name, int64_t age_ms, const uint8_t *m, size_t len)
{
	Sluice__QueueMetrics *qm;

	if ((qm = sluice__queue_metrics__unpack(NULL, len, m)) != NULL) {
		hop_pause_add(arg, name, age_ms, qm);
		sluice__queue_metrics__free_unpacked(qm, NULL);
	}
	return 0;
}

static int64_t
api_node_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fleet-wide hop pauses (issue 10): the longest pause any live node met
 * on each hop, sent to every node.  Folded from the stored metrics at
 * most once a second (this node's report of a moment ago is in them);
 * best effort: on a store failure the last fold is sent. */
static void
api_node_pauses(struct api *a, struct api_node_out *o)
{
	int64_t now = api_node_mono_ms(), left;
	size_t i, n = 0;

	if (a->pauses_at_ms == 0 || now - a->pauses_at_ms >= 1000) {
		struct hop_pause_set fresh;

		memset(&fresh, 0, sizeof(fresh));
		if (store_node_live_aged(a->store, a->silent_after_ms,
		        api_node_pause_cb, &fresh) == STORE_OK) {
			a->pauses = fresh;
			a->pauses_at_ms = now;
		}
	}
	for (i = 0; i < a->pauses.n; i++) {
		struct hop_pause *p = &a->pauses.v[i];

		left = p->left_ms - (now - a->pauses_at_ms);
		if (left <= 0)
			continue;
		sluice__hop_pause__init(&o->pause[n]);
		o->pause[n].hop = p->hop;
		o->pause[n].node = p->node;
		o->pause[n].for_ms =
		    left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
		o->pause[n].window_s = p->window_s;
		o->pausev[n] = &o->pause[n];
		n++;
	}
	o->heartbeat.hop_pauses = o->pausev;
	o->heartbeat.n_hop_pauses = n;
}

/* ------------------------------------------------ per-credential quotas */

/* Proto names of the quota dimensions; index = node/quota.h's enum. */
static char api_quota_dims[4][12] = {
    "hour_msgs", "hour_rcpts", "day_msgs", "day_rcpts"};

static int64_t
api_quota_len(int d)
{
	return d < 2 ? 3600 : 86400;
}

static uint32_t
api_quota_of(const Sluice__User *u, int d)
{
	return d == 0   ? u->quota_hour_msgs
	       : d == 1 ? u->quota_hour_rcpts
	       : d == 2 ? u->quota_day_msgs
	                : u->quota_day_rcpts;
}

static int
api_quota_dim(const char *s)
{
	int d;

	for (d = 0; d < 4; d++)
		if (strcmp(s, api_quota_dims[d]) == 0)
			return d;
	return -1;
}

struct api_quota_row {
	uint64_t node_id;
	char user[80];
	int dim;
	uint64_t used, granted;
};

struct api_quota_rows {
	struct api_quota_row *v;
	size_t n, cap;
	int64_t now;
	bool is_oom;
};

/* Keeps the rows of the current windows. */
static int
api_quota_rows_cb(void *arg, const struct store_quota_row *r)
{
	struct api_quota_rows *q = arg;
	struct api_quota_row *nv;
	int d = api_quota_dim(r->dim);
	size_t ncap;

	if (d == -1 || strlen(r->user) >= sizeof(q->v[0].user) ||
	    r->window_start != q->now - q->now % api_quota_len(d))
		return 0;
	if (q->n == q->cap) {
		ncap = q->cap ? q->cap * 2 : 64;
		if (ncap > API_NODE_QUOTA_ROWS ||
		    (nv = reallocarray(q->v, ncap, sizeof(*nv))) == NULL) {
			q->is_oom = true;
			return 1;
		}
		q->v = nv;
		q->cap = ncap;
	}
	q->v[q->n].node_id = r->node_id;
	snprintf(q->v[q->n].user, sizeof(q->v[q->n].user), "%s", r->user);
	q->v[q->n].dim = d;
	q->v[q->n].used = r->used;
	q->v[q->n].granted = r->granted;
	q->n++;
	return 0;
}

struct api_quota_live {
	uint64_t *v;
	size_t n;
};

static int
api_quota_live_cb(void *arg, uint64_t id, const uint8_t *m, size_t len)
{
	struct api_quota_live *l = arg;

	(void)m;
	(void)len;
	if (l->n == API_NODE_LIVE_MAX)
		return 1;
	l->v[l->n++] = id;
	return 0;
}

static bool
api_quota_is_live(const struct api_quota_live *l, uint64_t id)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i] == id)
			return true;
	return false;
}

/* What the node reported for user in d's current window. */
static const Sluice__QuotaUsage *
api_quota_reported(
    const Sluice__HeartbeatRequest *req, const char *user, int d, int64_t ws)
{
	size_t i;

	for (i = 0; i < req->n_quota_usage; i++)
		if (req->quota_usage[i]->window_start == ws &&
		    strcmp(req->quota_usage[i]->dim, api_quota_dims[d]) == 0 &&
		    strcmp(req->quota_usage[i]->user, user) == 0)
			return req->quota_usage[i];
	return NULL;
}

/* One user's quota in one dimension: the node's new allowance, stored
 * with its count and put into the reply. */
static void
api_quota_one(struct api *a, uint64_t id, const Sluice__HeartbeatRequest *req,
    const struct api_quota_rows *rows, const struct api_quota_live *live,
    struct allowance_node *others, Sluice__User *u, int d, int64_t now,
    Sluice__QuotaGrant *g)
{
	const Sluice__QuotaUsage *rep;
	struct store_quota_row sr;
	uint64_t self = 0, rep_used, fleet = 0, share;
	int64_t ws = now - now % api_quota_len(d);
	size_t i, k = 0;

	rep = api_quota_reported(req, u->name, d, ws);
	rep_used = rep != NULL ? rep->used : 0;
	self = rep_used;
	for (i = 0; i < rows->n; i++) {
		const struct api_quota_row *r = &rows->v[i];

		if (r->dim != d || strcmp(r->user, u->name) != 0)
			continue;
		if (r->node_id == id) {
			if (r->used > self)
				self = r->used; /* the node restarted */
			continue;
		}
		others[k].used = r->used;
		others[k].granted = r->granted;
		others[k].is_live = api_quota_is_live(live, r->node_id);
		fleet += r->used;
		k++;
	}
	share = allowance_share(api_quota_of(u, d), self, others, k);
	memset(&sr, 0, sizeof(sr));
	sr.node_id = id;
	sr.user = u->name;
	sr.dim = api_quota_dims[d];
	sr.window_start = ws;
	sr.used = self;
	sr.granted = self + share;
	sr.refused = rep != NULL ? rep->refused : 0;
	/* best effort, like the hop budgets: the node keeps its last */
	(void)store_quota_put(a->store, &sr);
	sluice__quota_grant__init(g);
	g->user = u->name;
	g->dim = api_quota_dims[d];
	g->window_start = ws;
	g->limit = rep_used + share;
	g->fleet_used = fleet + self;
}

/* This node's allowance of every user quota in the current windows
 * (allowance.c), re-divided at every heartbeat from the stored counts of
 * every node.  Best effort: on a store failure the node keeps its last
 * allowances (docs/smtp.md, "Quotas"). */
static void
api_node_quota(struct api *a, uint64_t id, uint64_t head,
    const Sluice__HeartbeatRequest *req, struct api_node_out *o)
{
	const Sluice__Policy *p = api_node_head_policy(a, head);
	struct api_quota_rows rows;
	struct api_quota_live live = {NULL, 0};
	struct allowance_node *others = NULL;
	int64_t now = (int64_t)time(NULL);
	size_t i, n = 0, nlive;
	int d;
	bool any = false;

	for (i = 0; p != NULL && i < p->n_users; i++)
		for (d = 0; d < 4; d++)
			any = any || api_quota_of(p->users[i], d) != 0;
	if (!any)
		return;
	memset(&rows, 0, sizeof(rows));
	rows.now = now;
	if ((live.v = calloc(API_NODE_LIVE_MAX, sizeof(*live.v))) == NULL ||
	    store_node_live(a->store, a->silent_after_ms, api_quota_live_cb,
	        &live) != STORE_OK ||
	    store_quota_rows(a->store, now - now % 86400, api_quota_rows_cb,
	        &rows) != STORE_OK ||
	    rows.is_oom ||
	    (others = calloc(rows.n + 1, sizeof(*others))) == NULL ||
	    (o->qg = calloc(API_NODE_QUOTA_MAX, sizeof(*o->qg))) == NULL ||
	    (o->qgv = calloc(API_NODE_QUOTA_MAX, sizeof(*o->qgv))) == NULL)
		goto out;
	for (i = 0; i < p->n_users && n < API_NODE_QUOTA_MAX; i++)
		for (d = 0; d < 4 && n < API_NODE_QUOTA_MAX; d++) {
			if (api_quota_of(p->users[i], d) == 0)
				continue;
			api_quota_one(a, id, req, &rows, &live, others,
			    p->users[i], d, now, &o->qg[n]);
			o->qgv[n] = &o->qg[n];
			n++;
		}
	nlive = live.n + (api_quota_is_live(&live, id) ? 0 : 1);
	o->heartbeat.quota_grants = o->qgv;
	o->heartbeat.n_quota_grants = n;
	o->heartbeat.live_nodes = (uint32_t)nlive;
out:
	free(others);
	free(rows.v);
	free(live.v);
}

/* A node reports the number and content hash of the policy it runs.  The
 * same number with other content here, or a number this database does not
 * have, means the database lost the version the node runs (a failover to
 * a lagging standby) and may have reused its number.  The node fetches by
 * itself (the hash in the reply differs from its own); this says so once,
 * in the log and as the alert policy_mismatch until the node fetches. */
static void
api_node_policy_check(struct api *a, uint64_t id, const char *name,
    const Sluice__HeartbeatRequest *req, uint64_t head, const char *head_hash)
{
	char have[STORE_HASH_LEN], why[300];
	const char *h = req->policy_hash;
	bool changed;
	size_t len = strlen(h);
	int rc;

	/* older nodes send no hash; a malformed one is not worth a word */
	if (req->policy_version == 0 || len == 0 || len >= STORE_HASH_LEN ||
	    strspn(h, "0123456789abcdef") != len)
		return;
	if (req->policy_version == head)
		snprintf(have, sizeof(have), "%s", head_hash);
	else if ((rc = store_policy_hash(
	              a->store, req->policy_version, have)) == STORE_NOT_FOUND)
		have[0] = '\0';
	else if (rc != STORE_OK)
		return;
	if (strcmp(have, h) == 0)
		return;
	if (have[0] == '\0')
		snprintf(why, sizeof(why),
		    "node %s runs policy version %" PRIu64 " (content %.12s), "
		    "which this database does not have: the database lost it "
		    "(failover to a lagging standby?); the node fetches "
		    "version %" PRIu64,
		    name, req->policy_version, h, head);
	else
		snprintf(why, sizeof(why),
		    "node %s runs policy version %" PRIu64 " with content "
		    "%.12s, but this database's version %" PRIu64 " is %.12s: "
		    "the number was reused after the database lost a version "
		    "(failover to a lagging standby?); the node fetches "
		    "version %" PRIu64,
		    name, req->policy_version, h, req->policy_version, have,
		    head);
	if (store_node_policy_mismatch(a->store, id, why, &changed) !=
	        STORE_OK ||
	    !changed)
		return;
	log_warnx("node: %s", why);
	/* Raised here too: the node fetches at once, and the episode may
	 * be over before the next health tick, which clears it then. */
	if (store_alert_raise(a->store, "policy_mismatch", name, why,
	        "controller node endpoint", &changed) == STORE_OK &&
	    changed)
		log_warnx("alert: raised kind=policy_mismatch subject=%s "
		          "message=\"%s\"",
		    name, why);
}

/* The node acknowledged its events up to acked and still retains those
 * from retained_from on (0: none).  When this database has fewer than were
 * acknowledged (a failover to a standby that had not received the last
 * commits), *rewind is set with what it has: the node sends the retained
 * ones after it again.  One query, and only for nodes that retain
 * something (they acknowledged events in the last window). */
static int
api_node_events_check(struct api *a, uint64_t id, const char *name,
    uint64_t acked, uint64_t retained_from, protobuf_c_boolean *rewind,
    uint64_t *stored)
{
	int rc;

	*rewind = false;
	*stored = 0;
	if (retained_from == 0 || acked == 0 || retained_from > acked)
		return STORE_OK;
	if ((rc = store_event_max_seq(a->store, id, stored)) != STORE_OK)
		return rc;
	if (*stored >= acked)
		return STORE_OK;
	*rewind = true;
	log_warnx("node %s: this database has its events up to seq %" PRIu64
	          " but %" PRIu64 " were acknowledged (lost in a failover?); "
	          "the node sends them again from seq %" PRIu64,
	    name, *stored, acked,
	    *stored + 1 > retained_from ? *stored + 1 : retained_from);
	return STORE_OK;
}

static int
api_node_lost_cb(void *arg, const char *name)
{
	struct api_node_out *o = arg;
	char **v;

	if ((v = realloc(o->lost, (o->nlost + 1) * sizeof(*v))) == NULL)
		return 1;
	o->lost = v;
	if ((v[o->nlost] = strdup(name)) == NULL)
		return 1;
	o->nlost++;
	return 0;
}

/* Issue 13 (docs/redundancy.md): the node's shadow peer, chosen afresh at
 * every heartbeat from the live nodes, and the lost nodes whose copies it
 * must promote. */
static int
api_node_shadow(struct api *a, uint64_t id, const Sluice__HeartbeatRequest *req,
    struct api_node_out *o)
{
	Sluice__HeartbeatReply *hb = &o->heartbeat;
	int rc;

	if ((rc = store_shadow_address(a->store, id, req->shadow_address)) !=
	        STORE_OK ||
	    (rc = store_shadow_peer(a->store, id, a->silent_after_ms,
	         o->shadow_peer, sizeof(o->shadow_peer), o->shadow_addr,
	         sizeof(o->shadow_addr))) != STORE_OK ||
	    (rc = store_shadow_lost(a->store, api_node_lost_cb, o)) != STORE_OK)
		return rc;
	hb->shadow_peer = o->shadow_peer;
	hb->shadow_peer_address = o->shadow_addr;
	hb->shadow_promote = o->lost;
	hb->n_shadow_promote = o->nlost;
	return STORE_OK;
}

static int
api_node_heartbeat(struct api *a, const struct rpc_peer *peer,
    const Sluice__HeartbeatRequest *req, struct api_node_out *o,
    struct api_error *e)
{
	Sluice__HeartbeatReply *hb = &o->heartbeat;
	struct api_node_pending pend;
	uint8_t *metrics = NULL, *prev = NULL;
	size_t mlen = 0, prevlen = 0;
	uint64_t id, head, drain_seq;
	bool is_draining, node_draining, handoff, node_handoff;
	char name[80];
	int rc;

	if (api_node_auth(a, peer, req->auth, &id, e) == -1)
		return -1;
	if (req->metrics != NULL &&
	    (metrics = rpc_pack(&req->metrics->base, &mlen)) == NULL) {
		api_error_set(e, "internal",
		    "The controller ran out of "
		    "memory.");
		return -1;
	}
	rc = store_node_heartbeat(a->store, id, req->policy_version,
	    req->policy_from_cache, req->heartbeat_ms, metrics, mlen,
	    &is_draining, &handoff, &drain_seq, &prev, &prevlen);
	free(metrics);
	if (rc == STORE_OK && req->metrics != NULL)
		api_node_history(a, id, req->metrics, prev, prevlen);
	free(prev);
	if (rc == STORE_OK)
		api_node_results(a, id, req);
	if (rc == STORE_OK)
		rc = store_policy_head(a->store, false, &head);
	if (rc == STORE_OK)
		rc = store_policy_hash(a->store, head, o->head_hash);
	if (rc != STORE_OK) {
		api_error_store(e, rc == STORE_NOT_FOUND ? STORE_ERROR : rc);
		return -1;
	}
	api_node_policy_check(a, id,
	    api_printable(req->auth->node_name, name, sizeof(name)), req, head,
	    o->head_hash);
	sluice__heartbeat_reply__init(hb);
	if ((rc = api_node_events_check(a, id, name, req->events_acked_seq,
	         req->events_retained_from, &hb->events_rewind,
	         &hb->events_stored_seq)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	hb->policy_version = head;
	hb->policy_hash = o->head_hash;
	/* The drain flag is the command: repeat it until the node's metrics
	 * say it follows.  drain_seq changes on every drain/resume. */
	node_draining = req->metrics != NULL && req->metrics->draining;
	node_handoff = req->metrics != NULL && req->metrics->handoff;
	pend.o = o;
	pend.cap = 1 + API_NODE_COMMANDS_MAX;
	if ((o->cmds = calloc(pend.cap, sizeof(*o->cmds))) == NULL) {
		api_error_set(e, "internal",
		    "The controller ran out of "
		    "memory.");
		return -1;
	}
	if (is_draining != node_draining ||
	    (is_draining && handoff != node_handoff)) {
		sluice__command__init(&o->cmd);
		o->cmd.id = drain_seq;
		o->cmd.kind = is_draining ? SLUICE__COMMAND_KIND__CMD_DRAIN
		                          : SLUICE__COMMAND_KIND__CMD_RESUME;
		o->cmd.handoff = is_draining && handoff;
		o->cmds[o->ncmds++] = &o->cmd;
		if (o->cmd.handoff &&
		    (rc = store_node_peers(a->store, id, a->silent_after_ms,
		         api_node_peer_cb, o)) != STORE_OK) {
			api_error_store(e, rc);
			return -1;
		}
	}
	/* Queue commands ride along until the node's result arrives; the
	 * node answers a repeated id from its memory, never runs it twice. */
	if ((rc = store_command_pending(a->store, id, API_NODE_COMMANDS_MAX,
	         api_node_pending_cb, &pend)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	hb->commands = o->cmds;
	hb->n_commands = o->ncmds;
	api_node_budget(a, id, head, o);
	api_node_pauses(a, o);
	if ((rc = api_node_shadow(a, id, req, o)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	api_node_quota(a, id, head, req, o);
	o->reply.body_case = SLUICE__NODE_REPLY__BODY_HEARTBEAT;
	o->reply.heartbeat = hb;
	return 0;
}

static int
api_node_get_policy(struct api *a, const struct rpc_peer *peer,
    const Sluice__GetPolicyRequest *req, struct api_node_out *o,
    struct api_error *e)
{
	Sluice__GetPolicyReply *gp = &o->get_policy;
	uint8_t *buf;
	size_t len;
	uint64_t id, head;
	char name[80];
	bool changed;
	int rc;

	if (api_node_auth(a, peer, req->auth, &id, e) == -1)
		return -1;
	if ((rc = store_policy_head(a->store, false, &head)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	sluice__get_policy_reply__init(gp);
	if (head == 0) {
		/* No policy yet: the empty policy, which relays nothing. */
		sluice__policy__init(&o->empty);
		gp->policy = &o->empty;
	} else {
		if ((rc = store_policy_snapshot(a->store, head, &buf, &len)) !=
		    STORE_OK) {
			api_error_store(e, rc);
			return -1;
		}
		o->policy = sluice__policy__unpack(NULL, len, buf);
		free(buf);
		if (o->policy == NULL) {
			log_warnx("node: policy version %llu does not decode",
			    (unsigned long long)head);
			api_error_set(e, "internal",
			    "The stored policy does not decode; see the "
			    "controller log.");
			return -1;
		}
		gp->policy = o->policy;
		/* the identity of the version: number and content */
		if ((rc = store_policy_hash(a->store, head, o->head_hash)) !=
		        STORE_OK ||
		    (o->policy->content_hash = strdup(o->head_hash)) == NULL) {
			api_error_store(
			    e, rc == STORE_NOT_FOUND ? STORE_ERROR : rc);
			return -1;
		}
	}
	/* The node fetches what this database has: any mismatch it ran
	 * into is over. */
	if (store_node_policy_mismatch(a->store, id, "", &changed) ==
	        STORE_OK &&
	    changed)
		log_info("node: %s fetches policy version %" PRIu64
		         "; policy mismatch resolved",
		    api_printable(req->auth->node_name, name, sizeof(name)),
		    head);
	o->reply.body_case = SLUICE__NODE_REPLY__BODY_GET_POLICY;
	o->reply.get_policy = gp;
	return 0;
}

static int
api_node_report_events(struct api *a, const struct rpc_peer *peer,
    const Sluice__ReportEventsRequest *req, struct api_node_out *o,
    struct api_error *e)
{
	Sluice__ReportEventsReply *re = &o->report_events;
	uint64_t id, max = 0;
	size_t i, quarantined;
	char name[80];
	int rc;

	if (api_node_auth(a, peer, req->auth, &id, e) == -1)
		return -1;
	for (i = 0; i < req->n_events; i++) {
		if (req->events[i]->seq > INT64_MAX ||
		    req->events[i]->kind[0] == '\0') {
			api_warn(a, peer,
			    "event %zu of the batch has a bad seq "
			    "or no kind",
			    i);
			api_error_set(e, "bad_request",
			    "event %zu has a sequence number out of range or "
			    "no kind",
			    i);
			return -1;
		}
		if (req->events[i]->seq > max)
			max = req->events[i]->seq;
	}
	sluice__report_events_reply__init(re);
	/* A batch after a gap the node can fill: the gap first. */
	if ((rc = api_node_events_check(a, id,
	         api_printable(req->auth->node_name, name, sizeof(name)),
	         req->events_acked_seq, req->events_retained_from,
	         &re->events_rewind, &re->events_stored_seq)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	if (re->events_rewind) {
		o->reply.body_case = SLUICE__NODE_REPLY__BODY_REPORT_EVENTS;
		o->reply.report_events = re;
		return 0;
	}
	if ((rc = store_event_insert(a->store, id, req->auth->node_name,
	         req->events, req->n_events, &quarantined)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	if (quarantined > 0)
		log_warnx("node %s: %zu of %zu events quarantined (the "
		          "events_quarantined alert follows)",
		    req->auth->node_name, quarantined, req->n_events);
	re->acked_seq = max;
	o->reply.body_case = SLUICE__NODE_REPLY__BODY_REPORT_EVENTS;
	o->reply.report_events = re;
	return 0;
}

void
api_node_handle(void *arg, const uint8_t *req, size_t len,
    const struct rpc_peer *peer, uint8_t **out, size_t *outlen)
{
	struct api *a = arg;
	struct api_node_out o;
	struct api_error e;
	Sluice__NodeRequest *r;
	Sluice__Error err;
	size_t i;
	int rv = -1;

	memset(&o, 0, sizeof(o));
	sluice__node_reply__init(&o.reply);
	memset(&e, 0, sizeof(e));
	r = sluice__node_request__unpack(NULL, len, req);
	if (r == NULL) {
		api_warn(a, peer, "undecodable request of %zu bytes", len);
		api_error_set(&e, "bad_request",
		    "The request is not a valid NodeRequest.");
	} else if (api_ready(a, &e)) {
		switch (r->body_case) {
		case SLUICE__NODE_REQUEST__BODY_HELLO:
			rv = api_node_hello(a, peer, r->hello, &o, &e);
			break;
		case SLUICE__NODE_REQUEST__BODY_HEARTBEAT:
			rv = api_node_heartbeat(a, peer, r->heartbeat, &o, &e);
			break;
		case SLUICE__NODE_REQUEST__BODY_GET_POLICY:
			rv =
			    api_node_get_policy(a, peer, r->get_policy, &o, &e);
			break;
		case SLUICE__NODE_REQUEST__BODY_REPORT_EVENTS:
			rv = api_node_report_events(
			    a, peer, r->report_events, &o, &e);
			break;
		default:
			api_warn(
			    a, peer, "request without a body (%zu bytes)", len);
			api_error_set(
			    &e, "bad_request", "The request has no body.");
			break;
		}
	}
	if (rv == -1) {
		sluice__error__init(&err);
		err.code = e.code;
		err.message = e.msg;
		o.reply.error = &err;
		o.reply.body_case = SLUICE__NODE_REPLY__BODY__NOT_SET;
	}
	if ((*out = rpc_pack(&o.reply.base, outlen)) == NULL)
		log_warnx("node: out of memory packing a reply");
	if (o.policy != NULL)
		sluice__policy__free_unpacked(o.policy, NULL);
	for (i = 0; i < o.cmd.n_peers; i++) {
		free(o.peers[i]);
		free(o.peer_names[i]);
		free(o.peer_shadow[i]);
	}
	for (i = 0; i < o.ncmds; i++)
		if (o.cmds[i] != &o.cmd)
			sluice__command__free_unpacked(o.cmds[i], NULL);
	free(o.cmds);
	for (i = 0; i < o.nlost; i++)
		free(o.lost[i]);
	free(o.lost);
	free(o.qg);
	free(o.qgv);
	if (r != NULL)
		sluice__node_request__free_unpacked(r, NULL);
}
