/* uplink.c - node <-> controller control plane (uplink.h).
 *
 * One thread, one nng REQ socket dialing every configured controller (nng
 * fails over between them).  Each heartbeat period: Hello until it
 * succeeds, then Heartbeat with metrics; when the controller's policy
 * version differs from the one we run, GetPolicy, validate, write the
 * cache, post to the loop; then report journaled events.  A controller that
 * does not answer is logged once on the way down and once on the way up;
 * meanwhile the node keeps running its current (possibly cached) policy. */
#include "uplink.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "authwatch.h"
#include "quota.h"
#include "config.h"
#include "delivery.h"
#include "journal.h"
#include "log.h"
#include "node.h"
#include "policy.h"
#include "proto.h"
#include "rpc.h"
#include "shadow.h"

#define UPLINK_MAX_CONTROLLERS RPC_MAX_ENDPOINTS
#define UPLINK_AUTH_TOP        20
#define UPLINK_EVENT_BATCH     1000
#define UPLINK_CACHE_MAX       (64 * 1024 * 1024)
#define UPLINK_HOPS_MAX        64   /* hops reported per heartbeat */
#define UPLINK_QUOTA_MAX       4096 /* quota counts per heartbeat */
#define UPLINK_RACE_MS         250

const char *const uplink_config_keys[] = {"name", "token", "controller",
    "heartbeat_ms", "address", "controller_ca", "controller_cert_key",
    "controller_cert", "controller_key", "controller_server_name", "insecure",
    NULL};

struct uplink {
	struct node *node;
	struct rpc_client *rpc;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	atomic_bool aborted; /* rpc aborted by uplink_stop: fail quietly */
	bool started;
	/* Posted to the loop. */
	struct event *ev_post;
	struct policy *pending; /* under mu */
	int refused;            /* under mu */
	char refusal[256];
	/* Thread-private. */
	bool hello_done;
	bool reachable;
	bool warned_down;
	uint64_t failed_version; /* invalid snapshot seen, and its hash */
	char failed_hash[65];
	char cache_path[4096];
	char name[128];
	char token[256];
	char address[256];
};

struct policy *
uplink_load_cache(const char *spool_dir)
{
	char path[4096], err[256];
	Sluice__Policy *snap;
	struct policy *p;
	struct stat st;
	uint8_t *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/policy.cache", spool_dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			log_warn("policy cache %s", path);
		return NULL;
	}
	if (fstat(fd, &st) == -1 || st.st_size <= 0 ||
	    st.st_size > UPLINK_CACHE_MAX ||
	    (buf = malloc((size_t)st.st_size)) == NULL) {
		log_warnx("policy cache %s: unusable, ignored", path);
		close(fd);
		return NULL;
	}
	if (read(fd, buf, (size_t)st.st_size) != st.st_size) {
		log_warn("policy cache %s: read", path);
		free(buf);
		close(fd);
		return NULL;
	}
	close(fd);
	snap = sluice__policy__unpack(NULL, (size_t)st.st_size, buf);
	free(buf);
	if (snap == NULL) {
		log_warnx("policy cache %s: corrupt, ignored", path);
		return NULL;
	}
	if ((p = policy_new(snap, err, sizeof(err))) == NULL) {
		log_warnx("policy cache %s: invalid (%s), ignored", path, err);
		sluice__policy__free_unpacked(snap, NULL);
		return NULL;
	}
	return p;
}

/* tmp + fsync + rename + fsync(dir): the cache is whole or absent. */
static int
uplink_write_cache(struct uplink *u, const Sluice__Policy *snap)
{
	char tmp[4200];
	uint8_t *buf;
	size_t len;
	int fd, dfd;

	if ((buf = rpc_pack(&snap->base, &len)) == NULL)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", u->cache_path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) ==
	    -1) {
		log_warn("policy cache %s", tmp);
		free(buf);
		return -1;
	}
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) == -1) {
		log_warn("policy cache %s: write", tmp);
		close(fd);
		unlink(tmp);
		free(buf);
		return -1;
	}
	close(fd);
	free(buf);
	if (rename(tmp, u->cache_path) == -1) {
		log_warn("policy cache %s: rename", u->cache_path);
		return -1;
	}
	if ((dfd = open(u->node->spool_dir, O_RDONLY | O_DIRECTORY)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* Loop thread: install what the uplink thread posted. */
static void
uplink_on_post(evutil_socket_t fd, short what, void *arg)
{
	struct uplink *u = arg;
	struct policy *p;
	int refused;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&u->mu);
	p = u->pending;
	u->pending = NULL;
	refused = u->refused;
	pthread_mutex_unlock(&u->mu);
	if (refused) {
		log_warnx("node %s: controller refused this node: %s; "
		          "stopping",
		    u->name, u->refusal);
		event_base_loopbreak(u->node->base);
		return;
	}
	if (p != NULL) {
		atomic_store(&u->node->policy_from_cache, false);
		node_policy_swap(u->node, p);
	}
}

static void
uplink_fill_auth(struct uplink *u, Sluice__NodeAuth *a)
{
	a->node_name = u->name;
	a->token = u->token;
}

/* One request/reply.  Returns the reply (caller frees) or NULL; on a
 * controller-side error sets *code to its code. */
static Sluice__NodeReply *
uplink_call(struct uplink *u, Sluice__NodeRequest *req, char *code,
    size_t codelen, char *msg, size_t msglen)
{
	ProtobufCMessage *r;
	Sluice__NodeReply *rep;
	char err[256];

	code[0] = '\0';
	if (rpc_client_call(u->rpc, &req->base, &sluice__node_reply__descriptor,
	        &r, err, sizeof(err)) == -1) {
		if (atomic_load(&u->aborted)) {
			snprintf(code, codelen, "transport");
			return NULL;
		}
		if (u->reachable || !u->warned_down)
			log_warnx("node %s: controller unreachable: %s; "
			          "running policy version %" PRIu64 "%s",
			    u->name, err,
			    (uint64_t)atomic_load(&u->node->running_version),
			    atomic_load(&u->node->policy_from_cache)
			        ? " (from cache)"
			        : "");
		u->reachable = false;
		u->warned_down = true;
		snprintf(msg, msglen, "%s", err);
		snprintf(code, codelen, "transport");
		return NULL;
	}
	if (!u->reachable && u->warned_down)
		log_info("node %s: controller reachable again", u->name);
	u->reachable = true;
	rep = (Sluice__NodeReply *)r;
	if (rep->error != NULL) {
		snprintf(code, codelen, "%s", rep->error->code);
		snprintf(msg, msglen, "%s", rep->error->message);
		sluice__node_reply__free_unpacked(rep, NULL);
		return NULL;
	}
	return rep;
}

static void
uplink_refuse(struct uplink *u, const char *msg)
{
	pthread_mutex_lock(&u->mu);
	u->refused = 1;
	snprintf(u->refusal, sizeof(u->refusal), "%s", msg);
	pthread_mutex_unlock(&u->mu);
	event_active(u->ev_post, EV_READ, 0);
}

static int
uplink_hello(struct uplink *u)
{
	Sluice__NodeRequest req = SLUICE__NODE_REQUEST__INIT;
	Sluice__HelloRequest h = SLUICE__HELLO_REQUEST__INIT;
	Sluice__NodeAuth a = SLUICE__NODE_AUTH__INIT;
	Sluice__NodeReply *rep;
	char code[32], msg[256];

	uplink_fill_auth(u, &a);
	h.auth = &a;
	h.software_version = (char *)(uintptr_t)SLUICE_VERSION;
	h.address = u->address;
	h.shadow_address = (char *)(uintptr_t)shadow_address(u->node->shadow);
	req.body_case = SLUICE__NODE_REQUEST__BODY_HELLO;
	req.hello = &h;
	if ((rep = uplink_call(
	         u, &req, code, sizeof(code), msg, sizeof(msg))) == NULL) {
		if (strcmp(code, "denied") == 0)
			uplink_refuse(u, msg);
		else if (strcmp(code, "transport") != 0)
			log_warnx("node %s: hello: %s: %s", u->name, code, msg);
		return -1;
	}
	if (rep->body_case == SLUICE__NODE_REPLY__BODY_HELLO)
		log_info("node %s: enrolled with controller as id %" PRIu64
		         ", latest policy version %" PRIu64,
		    u->name, rep->hello->node_id, rep->hello->policy_version);
	sluice__node_reply__free_unpacked(rep, NULL);
	u->hello_done = true;
	return 0;
}

static void
uplink_fetch_policy(struct uplink *u)
{
	Sluice__NodeRequest req = SLUICE__NODE_REQUEST__INIT;
	Sluice__GetPolicyRequest g = SLUICE__GET_POLICY_REQUEST__INIT;
	Sluice__NodeAuth a = SLUICE__NODE_AUTH__INIT;
	Sluice__NodeReply *rep;
	Sluice__Policy *snap;
	struct policy *p, *old;
	char code[32], msg[256], err[256];

	uplink_fill_auth(u, &a);
	g.auth = &a;
	req.body_case = SLUICE__NODE_REQUEST__BODY_GET_POLICY;
	req.get_policy = &g;
	if ((rep = uplink_call(
	         u, &req, code, sizeof(code), msg, sizeof(msg))) == NULL) {
		if (strcmp(code, "transport") != 0)
			log_warnx("node %s: get policy: %s", u->name, msg);
		return;
	}
	if (rep->body_case != SLUICE__NODE_REPLY__BODY_GET_POLICY ||
	    rep->get_policy->policy == NULL) {
		log_warnx("node %s: get policy: malformed reply", u->name);
		sluice__node_reply__free_unpacked(rep, NULL);
		return;
	}
	/* Detach the snapshot so it outlives the reply. */
	snap = rep->get_policy->policy;
	rep->get_policy->policy = NULL;
	sluice__node_reply__free_unpacked(rep, NULL);
	/* free_unpacked of a detached submessage: it was allocated with the
	 * default allocator piecewise, so freeing it alone is safe. */
	if ((p = policy_new(snap, err, sizeof(err))) == NULL) {
		if (u->failed_version != snap->version ||
		    strcmp(u->failed_hash, snap->content_hash) != 0)
			log_warnx("node %s: policy version %" PRIu64
			          " is invalid (%s); keeping version %" PRIu64,
			    u->name, snap->version, err,
			    (uint64_t)atomic_load(&u->node->running_version));
		u->failed_version = snap->version;
		snprintf(u->failed_hash, sizeof(u->failed_hash), "%s",
		    snap->content_hash);
		sluice__policy__free_unpacked(snap, NULL);
		return;
	}
	uplink_write_cache(u, snap);
	pthread_mutex_lock(&u->mu);
	old = u->pending;
	u->pending = p;
	pthread_mutex_unlock(&u->mu);
	/* An older pending policy never reached the loop: drop it here;
	 * the loop has not referenced it. */
	policy_unref(old);
	event_active(u->ev_post, EV_READ, 0);
}

static void
uplink_fill_metrics(struct uplink *u, Sluice__QueueMetrics *m)
{
	struct node_stats *s = &u->node->stats;
	int64_t oldest = atomic_load(&s->queue_oldest_at);
	time_t now = time(NULL);

	m->messages = atomic_load(&s->queue_messages);
	m->bytes = atomic_load(&s->queue_bytes);
	m->active = atomic_load(&s->queue_active);
	m->deferred = atomic_load(&s->queue_deferred);
	m->held = atomic_load(&s->queue_held);
	m->oldest_age_s =
	    oldest > 0 && oldest < now ? (uint64_t)(now - oldest) : 0;
	m->connections = atomic_load(&s->connections);
	m->accepted = atomic_load(&s->accepted);
	m->refused = atomic_load(&s->refused);
	m->delivered = atomic_load(&s->delivered);
	m->deferred_attempts = atomic_load(&s->deferred_attempts);
	m->bounced = atomic_load(&s->bounced);
	m->auth_failures = atomic_load(&s->auth_failures);
	m->draining = command_draining(u->node->command);
	m->drained = command_drained(u->node->command);
	m->handoff = command_handoff(u->node->command);
}

/* Per-hop health from the delivery engine (thread-safe copy). */
static size_t
uplink_fill_hops(struct uplink *u, struct delivery_hop_metric *hm,
    Sluice__HopMetrics *hv, Sluice__HopMetrics **hp, size_t max)
{
	size_t i, n = delivery_hop_metrics(u->node->delivery, hm, max);

	for (i = 0; i < n; i++) {
		sluice__hop_metrics__init(&hv[i]);
		hm[i].name[sizeof(hm[i].name) - 1] = '\0';
		hv[i].name = hm[i].name;
		hv[i].circuit_open = hm[i].circuit_open;
		hv[i].connections = hm[i].connections;
		hv[i].recent_failures = hm[i].recent_failures;
		hv[i].delivered = hm[i].delivered;
		hv[i].failed = hm[i].failed;
		hv[i].throttled = hm[i].throttled;
		hv[i].throttled_for_s = hm[i].throttled_for_s;
		hv[i].throttle_window_s = hm[i].throttle_window_s;
		hv[i].half_open = hm[i].half_open;
		hv[i].fleet_paused = hm[i].fleet_paused;
		hv[i].own_throttled_for_s = hm[i].own_throttled_for_s;
		hm[i].fleet_paused_by[sizeof(hm[i].fleet_paused_by) - 1] = '\0';
		hv[i].fleet_paused_by = hm[i].fleet_paused_by;
		hm[i].alert_scope[sizeof(hm[i].alert_scope) - 1] = '\0';
		hm[i].alert[sizeof(hm[i].alert) - 1] = '\0';
		hv[i].alert_scope = hm[i].alert_scope;
		hv[i].alert_reply = hm[i].alert;
		hp[i] = &hv[i];
	}
	return n;
}

/* The worst AUTH offenders of the last minute, by IP and by user. */
static size_t
uplink_fill_auth_failures(struct uplink *u, struct authwatch_top *at,
    Sluice__AuthFailures *av, Sluice__AuthFailures **ap)
{
	size_t i, n;

	n = authwatch_top(
	    u->node->authwatch, (int64_t)time(NULL), at, UPLINK_AUTH_TOP);
	for (i = 0; i < n; i++) {
		sluice__auth_failures__init(&av[i]);
		av[i].kind = at[i].kind;
		av[i].subject = at[i].subject;
		av[i].failures = at[i].failures;
		ap[i] = &av[i];
	}
	return n;
}

/* Per-user quota counts of the current windows (quota.h), as the
 * heartbeat carries them; *usage is malloc'd for the caller to free. */
static size_t
uplink_fill_quota(struct uplink *u, struct quota_usage **usage,
    Sluice__QuotaUsage **qv, Sluice__QuotaUsage ***qp)
{
	size_t i, n;

	*usage = NULL;
	*qv = NULL;
	*qp = NULL;
	if ((*usage = calloc(UPLINK_QUOTA_MAX, sizeof(**usage))) == NULL)
		return 0;
	n = quota_usage(
	    u->node->quota, (int64_t)time(NULL), *usage, UPLINK_QUOTA_MAX);
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

/* The controller's quota allowances for this node (quota.h). */
static void
uplink_quota_grants(struct uplink *u, const Sluice__HeartbeatReply *hb)
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
	quota_grants(u->node->quota, g, k, hb->live_nodes, (int64_t)time(NULL));
	free(g);
}

/* The controller's database has our events only up to stored (a failover
 * lost acknowledged ones): what the journal still retains after it goes
 * out again. */
static int
uplink_rewind(struct uplink *u, uint64_t stored)
{
	uint64_t lost_from;
	int64_t n;

	if (u->node->journal == NULL)
		return 0;
	if ((n = journal_rewind(u->node->journal, stored, &lost_from)) == -1)
		return -1;
	if (n > 0 || lost_from != 0)
		log_warnx("node %s: the controller's database has this node's "
		          "events up to seq %" PRIu64 " only; sending %" PRId64
		          " retained events again%s",
		    u->name, stored, n,
		    lost_from != 0 ? "; older ones are past the retention "
		                     "window and lost"
		                   : "");
	return 0;
}

static void
uplink_heartbeat(struct uplink *u)
{
	Sluice__NodeRequest req = SLUICE__NODE_REQUEST__INIT;
	Sluice__HeartbeatRequest hb = SLUICE__HEARTBEAT_REQUEST__INIT;
	Sluice__NodeAuth a = SLUICE__NODE_AUTH__INIT;
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	Sluice__NodeReply *rep;
	Sluice__QueueMetrics *shape;
	Sluice__CommandResult **results;
	struct delivery_hop_metric hm[UPLINK_HOPS_MAX];
	Sluice__HopMetrics hv[UPLINK_HOPS_MAX], *hp[UPLINK_HOPS_MAX];
	struct authwatch_top at[UPLINK_AUTH_TOP];
	Sluice__AuthFailures av[UPLINK_AUTH_TOP], *ap[UPLINK_AUTH_TOP];
	struct quota_usage *qu;
	Sluice__QuotaUsage *qv, **qp;
	uint64_t running, latest;
	char code[32], msg[256], running_hash[65], latest_hash[65];
	char degraded[256];
	size_t nresults;

	uplink_fill_auth(u, &a);
	uplink_fill_metrics(u, &m);
	m.n_hops = uplink_fill_hops(u, hm, hv, hp, UPLINK_HOPS_MAX);
	m.hops = hp;
	m.n_auth_failures_by = uplink_fill_auth_failures(u, at, av, ap);
	m.auth_failures_by = ap;
	shadow_metrics(u->node->shadow, &m, degraded, sizeof(degraded));
	if ((shape = command_shape(u->node->command)) != NULL) {
		m.shape = shape->shape;
		m.n_shape = shape->n_shape;
	}
	nresults = command_results(u->node->command, &results);
	hb.results = results;
	hb.n_results = nresults;
	running = atomic_load(&u->node->running_version);
	node_running_hash(u->node, running_hash);
	hb.auth = &a;
	hb.policy_version = running;
	hb.policy_hash = running_hash;
	if (u->node->journal != NULL)
		journal_window(u->node->journal, &hb.events_acked_seq,
		    &hb.events_retained_from);
	hb.metrics = &m;
	hb.policy_from_cache = atomic_load(&u->node->policy_from_cache);
	hb.heartbeat_ms = (uint32_t)u->node->heartbeat_ms;
	hb.shadow_address = (char *)(uintptr_t)shadow_address(u->node->shadow);
	hb.n_quota_usage = uplink_fill_quota(u, &qu, &qv, &qp);
	hb.quota_usage = qp;
	req.body_case = SLUICE__NODE_REQUEST__BODY_HEARTBEAT;
	req.heartbeat = &hb;
	rep = uplink_call(u, &req, code, sizeof(code), msg, sizeof(msg));
	if (shape != NULL)
		sluice__queue_metrics__free_unpacked(shape, NULL);
	free(qp);
	free(qv);
	free(qu);
	if (rep != NULL)
		command_results_sent(u->node->command, results, nresults);
	command_results_free(results, nresults);
	if (rep == NULL) {
		if (strcmp(code, "denied") == 0)
			uplink_refuse(u, msg);
		else if (strcmp(code, "transport") != 0)
			log_warnx(
			    "node %s: heartbeat: %s: %s", u->name, code, msg);
		return;
	}
	latest = 0;
	latest_hash[0] = '\0';
	if (rep->body_case == SLUICE__NODE_REPLY__BODY_HEARTBEAT) {
		latest = rep->heartbeat->policy_version;
		snprintf(latest_hash, sizeof(latest_hash), "%s",
		    rep->heartbeat->policy_hash);
		/* Fleet commands and hop budget shares go to the loop
		 * (command.c). */
		command_post(u->node->command, rep->heartbeat->commands,
		    rep->heartbeat->n_commands);
		command_shares(u->node->command, rep->heartbeat->hop_shares,
		    rep->heartbeat->n_hop_shares);
		command_pauses(u->node->command, rep->heartbeat->hop_pauses,
		    rep->heartbeat->n_hop_pauses);
		/* Shadow peer and lost nodes (shadow.c). */
		shadow_post(u->node->shadow, rep->heartbeat->shadow_peer,
		    rep->heartbeat->shadow_peer_address,
		    rep->heartbeat->shadow_promote,
		    rep->heartbeat->n_shadow_promote);
		uplink_quota_grants(u, rep->heartbeat);
		if (rep->heartbeat->events_rewind)
			(void)uplink_rewind(
			    u, rep->heartbeat->events_stored_seq);
	}
	sluice__node_reply__free_unpacked(rep, NULL);
	/* Fetch only on a change of number or content (a database that lost
	 * a version may reuse its number; "" from an older controller); the
	 * controller's version 0 means "no policy yet" and the empty policy
	 * is what we already run.  Not again for a snapshot found invalid. */
	if (latest == 0)
		return;
	if (latest == running && (latest_hash[0] == '\0' ||
	                             strcmp(latest_hash, running_hash) == 0)) {
		/* The controller answers and runs what we run: the cached
		 * copy is the current policy now, not a fallback (`node
		 * list` stops saying "cached"). */
		atomic_store(&u->node->policy_from_cache, false);
		return;
	}
	if (latest == u->failed_version &&
	    strcmp(latest_hash, u->failed_hash) == 0)
		return;
	if (latest == running)
		log_warnx("node %s: policy version %" PRIu64
		          " here has content "
		          "%.12s, the controller's %.12s: fetching it",
		    u->name, running,
		    running_hash[0] ? running_hash : "unknown", latest_hash);
	uplink_fetch_policy(u);
}

static void
uplink_report_events(struct uplink *u)
{
	Sluice__NodeRequest req = SLUICE__NODE_REQUEST__INIT;
	Sluice__ReportEventsRequest re = SLUICE__REPORT_EVENTS_REQUEST__INIT;
	Sluice__NodeAuth a = SLUICE__NODE_AUTH__INIT;
	Sluice__NodeReply *rep;
	Sluice__Event **evs;
	char code[32], msg[256];
	size_t n;

	if (u->node->journal == NULL)
		return;
	while (!u->stop && (n = journal_pending(u->node->journal,
	                        UPLINK_EVENT_BATCH, &evs)) > 0) {
		uplink_fill_auth(u, &a);
		journal_window(u->node->journal, &re.events_acked_seq,
		    &re.events_retained_from);
		re.auth = &a;
		re.events = evs;
		re.n_events = n;
		req.body_case = SLUICE__NODE_REQUEST__BODY_REPORT_EVENTS;
		req.report_events = &re;
		rep =
		    uplink_call(u, &req, code, sizeof(code), msg, sizeof(msg));
		journal_batch_free(evs, n);
		if (rep == NULL) {
			if (strcmp(code, "transport") != 0)
				log_warnx(
				    "node %s: report events: %s", u->name, msg);
			return;
		}
		if (rep->body_case == SLUICE__NODE_REPLY__BODY_REPORT_EVENTS &&
		    rep->report_events->events_rewind) {
			/* the gap first: the next batch starts there */
			n = (size_t)uplink_rewind(
			    u, rep->report_events->events_stored_seq);
			sluice__node_reply__free_unpacked(rep, NULL);
			if (n != 0)
				return; /* cannot read them back: next time */
			continue;
		}
		if (rep->body_case == SLUICE__NODE_REPLY__BODY_REPORT_EVENTS)
			journal_ack(
			    u->node->journal, rep->report_events->acked_seq);
		sluice__node_reply__free_unpacked(rep, NULL);
		if (n < UPLINK_EVENT_BATCH)
			return;
	}
}

static void *
uplink_main(void *arg)
{
	struct uplink *u = arg;
	struct timespec until;

	for (;;) {
		pthread_mutex_lock(&u->mu);
		if (u->stop || u->refused) {
			pthread_mutex_unlock(&u->mu);
			break;
		}
		pthread_mutex_unlock(&u->mu);
		if (!u->hello_done)
			uplink_hello(u);
		/* A fixed cadence from the start of each round, so a slow
		 * answer delays one heartbeat, not every later one. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += u->node->heartbeat_ms / 1000;
		until.tv_nsec += (long)(u->node->heartbeat_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		if (u->hello_done) {
			uplink_heartbeat(u);
			uplink_report_events(u);
		}
		pthread_mutex_lock(&u->mu);
		while (!u->stop &&
		       pthread_cond_timedwait(&u->cv, &u->mu, &until) == 0)
			;
		pthread_mutex_unlock(&u->mu);
	}
	return NULL;
}

/* tls+tcp://: mutual TLS with the fleet CA; plain tcp:// only to loopback
 * unless insecure = yes (docs/security.md). */
static void
uplink_tls(const struct config *conf, struct rpc_tls *tls)
{
	const char *v;

	memset(tls, 0, sizeof(*tls));
	tls->ca_file = config_get(conf, "controller_ca");
	tls->cert_key_file = config_get(conf, "controller_cert_key");
	tls->cert_file = config_get(conf, "controller_cert");
	tls->key_file = config_get(conf, "controller_key");
	tls->server_name = config_get(conf, "controller_server_name");
	tls->keys = "controller_ca and controller_cert_key (or "
	            "controller_cert and controller_key)";
	tls->insecure =
	    (v = config_get(conf, "insecure")) != NULL && strcmp(v, "yes") == 0;
}

int
uplink_check_config(const struct config *conf, char *err, size_t errlen)
{
	struct rpc_tls tls;
	const char *url;
	size_t i;

	uplink_tls(conf, &tls);
	for (i = 0; (url = config_get_nth(conf, "controller", i)) != NULL; i++)
		if (rpc_endpoint_check(url, &tls, false, err, errlen) == -1)
			return -1;
	if (i == 0) {
		snprintf(err, errlen, "no 'controller' endpoint in the config");
		return -1;
	}
	return 0;
}

struct uplink *
uplink_start(struct node *n, char *err, size_t errlen)
{
	const char *urls[UPLINK_MAX_CONTROLLERS], *v;
	struct rpc_tls tls;
	struct uplink *u;
	size_t nurls = 0;
	int timeout, race;

	memset(&tls, 0, sizeof(tls));
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->node = n;
	u->reachable = true;
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	snprintf(u->cache_path, sizeof(u->cache_path), "%s/policy.cache",
	    n->spool_dir);
	snprintf(u->name, sizeof(u->name), "%s", n->name);
	if ((v = config_get(n->conf, "token")) == NULL || *v == '\0') {
		snprintf(err, errlen,
		    "no 'token' in the config: run "
		    "'sluicectl node add %s' on a controller",
		    n->name);
		goto fail;
	}
	snprintf(u->token, sizeof(u->token), "%s", v);
	/* Shown in `sluicectl node list`: the configured address, else the
	 * first SMTP listener, else the host name. */
	if ((v = config_get(n->conf, "address")) != NULL)
		snprintf(u->address, sizeof(u->address), "%s", v);
	else if ((v = config_get_nth(n->conf, "listen", 0)) != NULL)
		snprintf(u->address, sizeof(u->address), "%.*s",
		    (int)strcspn(v, " \t"), v);
	else
		snprintf(u->address, sizeof(u->address), "%s", n->hostname);
	while (nurls < UPLINK_MAX_CONTROLLERS &&
	       (urls[nurls] = config_get_nth(n->conf, "controller", nurls)) !=
	           NULL)
		nurls++;
	if (nurls == 0) {
		snprintf(err, errlen, "no 'controller' endpoint in the config");
		goto fail;
	}
	timeout = n->heartbeat_ms * 2 < 3000 ? 3000 : n->heartbeat_ms * 2;
	uplink_tls(n->conf, &tls);
	if ((u->rpc = rpc_client_open_tls(
	         urls, nurls, timeout, &tls, err, errlen)) == NULL)
		goto fail;
	/* Every node request is safe to handle twice (Hello, Heartbeat,
	 * GetPolicy; events are stored idempotently), so a controller that
	 * is silent for a quarter heartbeat (at most 250 ms; a healthy one
	 * answers in milliseconds) is raced by the next one: a hung
	 * controller costs one heartbeat 250 ms, not the fleet's health. */
	race = n->heartbeat_ms / 4;
	rpc_client_set_race(u->rpc, race > UPLINK_RACE_MS ? UPLINK_RACE_MS
	                            : race < 50           ? 50
	                                                  : race);
	if ((u->ev_post = event_new(n->base, -1, 0, uplink_on_post, u)) ==
	    NULL) {
		snprintf(err, errlen, "event_new failed");
		goto fail;
	}
	if (pthread_create(&u->thread, NULL, uplink_main, u) != 0) {
		snprintf(err, errlen, "cannot start uplink thread");
		goto fail;
	}
	u->started = true;
	return u;
fail:
	if (u->ev_post != NULL)
		event_free(u->ev_post);
	rpc_client_close(u->rpc);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u);
	return NULL;
}

void
uplink_stop(struct uplink *u)
{
	if (u == NULL)
		return;
	pthread_mutex_lock(&u->mu);
	u->stop = true;
	pthread_cond_signal(&u->cv);
	pthread_mutex_unlock(&u->mu);
	/* A call waiting on an absent controller must not delay the stop. */
	atomic_store(&u->aborted, true);
	rpc_client_abort(u->rpc);
	if (u->started)
		pthread_join(u->thread, NULL);
	rpc_client_close(u->rpc);
	policy_unref(u->pending);
	event_free(u->ev_post);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u);
}

int
uplink_refused(const struct uplink *u)
{
	return u != NULL && u->refused;
}
