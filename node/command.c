/* command.c - fleet commands on the node (command.h).
 *
 * Flow: a heartbeat reply carries commands; the uplink thread copies them
 * here and wakes the loop; the loop runs each one against the spool API
 * (spool.h) and the delivery engine (delivery.h) and keeps its result,
 * packed, in a ring of the last COMMAND_RING ids; the next heartbeat
 * carries the results that were not acknowledged yet.  Queue changes are
 * applied in memory at once (the delivery engine sees them on its next
 * scan) and made durable by the spool's group commit.
 *
 * Drain and resume carry the controller's drain_seq as id (a different
 * id space): they are idempotent state changes and have no result; the
 * heartbeat's metrics.draining is the answer.  Every operator change to
 * a message is also a delivery-record event (held, released, deleted,
 * retried), so `sluicectl trace` shows it. */
#include "command.h"

#include <ctype.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "delivery.h"
#include "journal.h"
#include "log.h"
#include "node.h"
#include "policy.h"
#include "rpc.h"
#include "smtp_server.h"
#include "spool.h"

#define COMMAND_RING       64   /* remembered results */
#define COMMAND_INBOX_MAX  64   /* posted, not yet run */
#define COMMAND_LIST_MAX   1000 /* messages in one listing */
#define COMMAND_LIST_RCPTS 20   /* recipients shown per message */
#define COMMAND_SHAPE_SCAN 512  /* domains tracked in one walk */
#define COMMAND_SHAPE_SEND 20   /* largest domains reported */
#define COMMAND_SHAPE_NAGE 7
#define COMMAND_PEERS_MAX  32 /* handoff targets */

struct command_rec {
	uint64_t id;
	bool used;
	bool sent;
	uint8_t *packed; /* CommandResult */
	size_t len;
};

struct command {
	struct node *n;
	struct event *ev_post;
	struct event *ev_shares;
	struct event *ev_pauses;
	struct event *ev_shape;
	pthread_mutex_t mu;
	/* under mu */
	Sluice__Command *inbox[COMMAND_INBOX_MAX];
	size_t ninbox;
	struct command_rec ring[COMMAND_RING];
	size_t next;
	uint8_t *shape; /* packed QueueMetrics with only shape */
	size_t shape_len;
	struct delivery_share shares[DELIVERY_SHARES_MAX];
	size_t nshares;
	struct delivery_pause pauses[DELIVERY_PAUSES_MAX];
	size_t npauses;
	/* loop thread: drain with handoff */
	struct policy *orig; /* the controller's policy, while handing off */
	char *peers[COMMAND_PEERS_MAX];
	size_t npeers;
	bool warned_no_peers;
	/* any thread */
	atomic_bool draining;
	atomic_bool drained;
	atomic_bool handoff;
};

/* ------------------------------------------------------- uplink side */

void
command_post(struct command *c, Sluice__Command *const *cmds, size_t n)
{
	Sluice__Command *copy;
	uint8_t *buf;
	size_t i, len;
	bool posted = false;

	if (c == NULL)
		return;
	for (i = 0; i < n; i++) {
		/* A deep copy through the wire format: simple and bounded. */
		if ((buf = rpc_pack(&cmds[i]->base, &len)) == NULL)
			continue;
		copy = sluice__command__unpack(NULL, len, buf);
		free(buf);
		if (copy == NULL)
			continue;
		pthread_mutex_lock(&c->mu);
		if (c->ninbox < COMMAND_INBOX_MAX) {
			c->inbox[c->ninbox++] = copy;
			copy = NULL;
			posted = true;
		}
		pthread_mutex_unlock(&c->mu);
		if (copy != NULL) /* full: the controller sends it again */
			sluice__command__free_unpacked(copy, NULL);
	}
	if (posted)
		event_active(c->ev_post, EV_READ, 0);
}

void
command_shares(struct command *c, Sluice__HopShare *const *v, size_t n)
{
	struct delivery_share s[DELIVERY_SHARES_MAX];
	size_t i;
	bool changed;

	if (c == NULL)
		return;
	memset(s, 0, sizeof(s));
	if (n > DELIVERY_SHARES_MAX)
		n = DELIVERY_SHARES_MAX;
	for (i = 0; i < n; i++) {
		snprintf(s[i].hop, sizeof(s[i].hop), "%s", v[i]->hop);
		s[i].max_conn = v[i]->max_conn;
		s[i].rate = v[i]->rate_per_minute;
	}
	pthread_mutex_lock(&c->mu);
	changed = n != c->nshares || memcmp(s, c->shares, sizeof(s)) != 0;
	if (changed) {
		memcpy(c->shares, s, sizeof(s));
		c->nshares = n;
	}
	pthread_mutex_unlock(&c->mu);
	if (changed)
		event_active(c->ev_shares, EV_READ, 0);
}

void
command_pauses(struct command *c, Sluice__HopPause *const *v, size_t n)
{
	struct delivery_pause p[DELIVERY_PAUSES_MAX];
	size_t i;
	bool post;

	if (c == NULL)
		return;
	memset(p, 0, sizeof(p));
	if (n > DELIVERY_PAUSES_MAX)
		n = DELIVERY_PAUSES_MAX;
	for (i = 0; i < n; i++) {
		snprintf(p[i].hop, sizeof(p[i].hop), "%s", v[i]->hop);
		snprintf(p[i].node, sizeof(p[i].node), "%s", v[i]->node);
		p[i].for_ms = v[i]->for_ms;
		p[i].window_s = v[i]->window_s;
	}
	pthread_mutex_lock(&c->mu);
	/* The times move on every heartbeat: post unless none then and now. */
	post = n > 0 || c->npauses > 0;
	memcpy(c->pauses, p, sizeof(p));
	c->npauses = n;
	pthread_mutex_unlock(&c->mu);
	if (post)
		event_active(c->ev_pauses, EV_READ, 0);
}

size_t
command_results(struct command *c, Sluice__CommandResult ***out)
{
	Sluice__CommandResult **v;
	size_t i, n = 0;

	*out = NULL;
	if (c == NULL)
		return 0;
	if ((v = calloc(COMMAND_RING, sizeof(*v))) == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	for (i = 0; i < COMMAND_RING; i++) {
		struct command_rec *r = &c->ring[i];

		if (!r->used || r->sent || r->packed == NULL)
			continue;
		if ((v[n] = sluice__command_result__unpack(
		         NULL, r->len, r->packed)) != NULL)
			n++;
	}
	pthread_mutex_unlock(&c->mu);
	if (n == 0) {
		free(v);
		return 0;
	}
	*out = v;
	return n;
}

void
command_results_sent(struct command *c, Sluice__CommandResult **v, size_t n)
{
	size_t i, k;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	for (i = 0; i < n; i++)
		for (k = 0; k < COMMAND_RING; k++)
			if (c->ring[k].used && c->ring[k].id == v[i]->id)
				c->ring[k].sent = true;
	pthread_mutex_unlock(&c->mu);
}

void
command_results_free(Sluice__CommandResult **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		sluice__command_result__free_unpacked(v[i], NULL);
	free(v);
}

Sluice__QueueMetrics *
command_shape(struct command *c)
{
	Sluice__QueueMetrics *m = NULL;

	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&c->mu);
	if (c->shape != NULL)
		m = sluice__queue_metrics__unpack(NULL, c->shape_len, c->shape);
	pthread_mutex_unlock(&c->mu);
	return m;
}

bool
command_draining(struct command *c)
{
	return c != NULL && atomic_load(&c->draining);
}

bool
command_drained(struct command *c)
{
	return c != NULL && atomic_load(&c->drained);
}

bool
command_handoff(struct command *c)
{
	return c != NULL && atomic_load(&c->handoff);
}

/* --------------------------------------------------------- loop side */

static const char *
command_state_name(enum spool_state st)
{
	switch (st) {
	case SPOOL_ACTIVE:
		return "active";
	case SPOOL_DEFERRED:
		return "deferred";
	case SPOOL_HELD:
		return "held";
	}
	return "unknown";
}

static const char *
command_domain(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	return at != NULL ? at + 1 : "";
}

/* An operator's change to a message, for the delivery record. */
static void
command_event(struct command *c, const struct spool_info *si, const char *kind)
{
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char reply[64];

	if (c->n->journal == NULL)
		return;
	snprintf(reply, sizeof(reply), "operator %s", kind);
	ev.kind = (char *)(uintptr_t)kind;
	ev.queue_id = (char *)(uintptr_t)si->queue_id;
	ev.message_id = (char *)(uintptr_t)si->env.message_id;
	ev.sender = (char *)(uintptr_t)si->env.sender;
	ev.recipients = (char **)(uintptr_t)si->env.rcpts;
	ev.n_recipients = si->env.nrcpts;
	ev.size = si->size;
	ev.reply = reply;
	(void)journal_append(c->n->journal, &ev);
}

struct command_list {
	const Sluice__Command *cmd;
	Sluice__CommandResult *res;
	size_t limit;
	bool is_oom;
};

static bool
command_matches(const struct spool_info *si, const Sluice__Command *cmd)
{
	size_t i;

	if (cmd->state[0] != '\0' &&
	    strcmp(cmd->state, command_state_name(si->state)) != 0)
		return false;
	if (cmd->domain[0] == '\0')
		return true;
	for (i = 0; i < si->env.nrcpts; i++)
		if (si->rcpt_status[i] == SPOOL_RCPT_PENDING &&
		    strcasecmp(command_domain(si->env.rcpts[i]), cmd->domain) ==
		        0)
			return true;
	return false;
}

static int
command_list_cb(const struct spool_info *si, void *arg)
{
	struct command_list *l = arg;
	Sluice__QueuedMessage *q;
	size_t i;

	if (!command_matches(si, l->cmd))
		return 0;
	l->res->total++;
	if (l->res->n_messages >= l->limit)
		return 0;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		goto oom;
	sluice__queued_message__init(q);
	l->res->messages[l->res->n_messages++] = q;
	q->queue_id = strdup(si->queue_id);
	q->state = strdup(command_state_name(si->state));
	q->sender = strdup(si->env.sender);
	if (q->queue_id == NULL || q->state == NULL || q->sender == NULL ||
	    (q->recipients =
	            calloc(COMMAND_LIST_RCPTS, sizeof(*q->recipients))) == NULL)
		goto oom;
	for (i = 0; i < si->env.nrcpts && q->n_recipients < COMMAND_LIST_RCPTS;
	     i++) {
		if (si->rcpt_status[i] != SPOOL_RCPT_PENDING)
			continue;
		if ((q->recipients[q->n_recipients] =
		            strdup(si->env.rcpts[i])) == NULL)
			goto oom;
		q->n_recipients++;
	}
	q->size = si->size;
	q->committed_at = si->committed_at;
	q->next_attempt_at = si->next_attempt_at;
	return 0;
oom:
	l->is_oom = true;
	return 1;
}

static void
command_list(
    struct command *c, const Sluice__Command *cmd, Sluice__CommandResult *res)
{
	struct command_list l;
	char text[64];

	memset(&l, 0, sizeof(l));
	l.cmd = cmd;
	l.res = res;
	l.limit = cmd->limit == 0 || cmd->limit > COMMAND_LIST_MAX
	              ? COMMAND_LIST_MAX
	              : cmd->limit;
	if ((res->messages = calloc(l.limit, sizeof(*res->messages))) == NULL) {
		res->text = strdup("out of memory");
		return;
	}
	spool_foreach(c->n->spool, command_list_cb, &l);
	res->ok = !l.is_oom;
	if (l.is_oom)
		res->text = strdup("out of memory");
	else {
		snprintf(
		    text, sizeof(text), "%" PRIu64 " messages", res->total);
		res->text = strdup(text);
	}
}

struct command_ids {
	char (*ids)[SPOOL_QID_MAX];
	size_t n, cap;
};

static int
command_deferred_cb(const struct spool_info *si, void *arg)
{
	struct command_ids *ids = arg;
	void *nv;

	if (si->state != SPOOL_DEFERRED)
		return 0;
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 256;
		if ((nv = realloc(ids->ids, ids->cap * sizeof(*ids->ids))) ==
		    NULL)
			return 1;
		ids->ids = nv;
	}
	snprintf(ids->ids[ids->n++], SPOOL_QID_MAX, "%s", si->queue_id);
	return 0;
}

/* Deferred messages become due now (postqueue -f). */
static void
command_flush(struct command *c, Sluice__CommandResult *res)
{
	struct command_ids ids;
	char text[80];
	size_t i, done = 0;

	memset(&ids, 0, sizeof(ids));
	spool_foreach(c->n->spool, command_deferred_cb, &ids);
	for (i = 0; i < ids.n; i++)
		if (spool_set_state(
		        c->n->spool, ids.ids[i], SPOOL_ACTIVE, 0, NULL, 0) == 0)
			done++;
	free(ids.ids);
	delivery_kick(c->n->delivery);
	res->ok = true;
	snprintf(text, sizeof(text),
	    "%zu deferred messages queued for delivery now", done);
	res->text = strdup(text);
	log_info("node %s: queue flush: %zu deferred messages due now",
	    c->n->name, done);
}

/* retry, hold, release, delete of one queue id. */
static void
command_one(
    struct command *c, const Sluice__Command *cmd, Sluice__CommandResult *res)
{
	struct spool *sp = c->n->spool;
	struct spool_info si;
	const char *what = "", *fail = NULL;
	int rv = -1;

	if (spool_lookup(sp, cmd->queue_id, &si) == -1) {
		res->text = strdup("not queued on this node");
		return;
	}
	if (delivery_busy(c->n->delivery, si.queue_id) &&
	    cmd->kind != SLUICE__COMMAND_KIND__CMD_RETRY) {
		res->text =
		    strdup("in a delivery attempt right now; try again");
		return;
	}
	switch (cmd->kind) {
	case SLUICE__COMMAND_KIND__CMD_RETRY:
		what = "retried";
		if (si.state == SPOOL_HELD)
			fail = "held: release it instead";
		else if (si.state == SPOOL_ACTIVE)
			rv = 0; /* already due */
		else
			rv = spool_set_state(
			    sp, si.queue_id, SPOOL_ACTIVE, 0, NULL, 0);
		break;
	case SLUICE__COMMAND_KIND__CMD_HOLD:
		what = "held";
		if (si.state == SPOOL_HELD)
			fail = "already held";
		else
			rv = spool_set_state(sp, si.queue_id, SPOOL_HELD,
			    si.next_attempt_at, NULL, 0);
		break;
	case SLUICE__COMMAND_KIND__CMD_RELEASE:
		what = "released";
		if (si.state != SPOOL_HELD)
			fail = "not held";
		else
			rv = spool_set_state(
			    sp, si.queue_id, SPOOL_ACTIVE, 0, NULL, 0);
		break;
	case SLUICE__COMMAND_KIND__CMD_DELETE:
		what = "deleted";
		/* the record first: si points into the message */
		command_event(c, &si, what);
		rv = spool_remove(sp, si.queue_id, NULL, 0);
		break;
	default:
		fail = "unknown command";
		break;
	}
	if (fail != NULL) {
		res->text = strdup(fail);
		return;
	}
	if (rv == -1) {
		res->text = strdup("the spool refused the change; see the log");
		return;
	}
	log_info("%s queue: %s by the operator", cmd->queue_id, what);
	if (cmd->kind != SLUICE__COMMAND_KIND__CMD_DELETE &&
	    spool_lookup(sp, cmd->queue_id, &si) == 0)
		command_event(c, &si, what);
	if (cmd->kind == SLUICE__COMMAND_KIND__CMD_RETRY ||
	    cmd->kind == SLUICE__COMMAND_KIND__CMD_RELEASE)
		delivery_kick(c->n->delivery);
	res->ok = true;
	res->text = strdup(what);
}

/* "host:port" or "[v6]:port" into a hop's host and port. */
static int
command_peer_split(const char *peer, char *host, size_t hlen, uint32_t *port)
{
	const char *colon = strrchr(peer, ':');
	const char *h = peer;
	size_t n;
	long p;

	if (colon == NULL || (p = strtol(colon + 1, NULL, 10)) <= 0 ||
	    p > 65535)
		return -1;
	n = (size_t)(colon - peer);
	if (n >= 2 && peer[0] == '[' && colon[-1] == ']') {
		h = peer + 1;
		n -= 2;
	}
	if (n == 0 || n >= hlen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (uint32_t)p;
	return 0;
}

/* The running policy with every route replaced by one: "*" to the peers'
 * relay listeners, load shared.  Each message is acknowledged by a peer
 * (250 after its fsync) before it leaves this spool: the delivery engine
 * does the handoff like any delivery.  NULL if it cannot be built.  Each
 * piece is malloc'd and attached to the snapshot as soon as it exists, so
 * protobuf-c's free_unpacked releases everything on any failure. */
static struct policy *
command_handoff_policy(struct command *c, const struct policy *orig)
{
	Sluice__Policy *snap;
	Sluice__Route *r;
	Sluice__HopGroup *g;
	Sluice__Hop **hv, *h;
	struct policy *p;
	char host[256], name[32], err[256];
	uint8_t *buf;
	size_t len, i, n = 0;
	uint32_t port;

	if ((buf = rpc_pack(&policy_snapshot(orig)->base, &len)) == NULL)
		return NULL;
	snap = sluice__policy__unpack(NULL, len, buf);
	free(buf);
	if (snap == NULL)
		return NULL;
	for (i = 0; i < snap->n_routes; i++)
		sluice__route__free_unpacked(snap->routes[i], NULL);
	free(snap->routes);
	snap->routes = NULL;
	snap->n_routes = 0;
	if ((snap->routes = calloc(1, sizeof(*snap->routes))) == NULL ||
	    (r = calloc(1, sizeof(*r))) == NULL)
		goto fail;
	sluice__route__init(r);
	snap->routes[0] = r;
	snap->n_routes = 1;
	if ((r->pattern = strdup("*")) == NULL ||
	    (r->groups = calloc(1, sizeof(*r->groups))) == NULL ||
	    (g = calloc(1, sizeof(*g))) == NULL)
		goto fail;
	sluice__hop_group__init(g);
	r->groups[0] = g;
	r->n_groups = 1;
	if ((g->hops = calloc(c->npeers, sizeof(*g->hops))) == NULL ||
	    (hv = realloc(
	         snap->hops, (snap->n_hops + c->npeers) * sizeof(*hv))) == NULL)
		goto fail;
	snap->hops = hv;
	for (i = 0; i < c->npeers; i++) {
		if (command_peer_split(
		        c->peers[i], host, sizeof(host), &port) == -1) {
			log_warnx("node %s: handoff peer '%s' is not host:port",
			    c->n->name, c->peers[i]);
			continue;
		}
		if ((h = calloc(1, sizeof(*h))) == NULL)
			goto fail;
		sluice__hop__init(h);
		snap->hops[snap->n_hops++] = h;
		snprintf(name, sizeof(name), "handoff-%zu", n + 1);
		if ((h->name = strdup(name)) == NULL ||
		    (h->host = strdup(host)) == NULL ||
		    (g->hops[n] = strdup(name)) == NULL)
			goto fail;
		h->port = port;
		h->tls = SLUICE__TLS_MODE__TLS_NONE;
		g->n_hops = ++n;
	}
	if (n == 0)
		goto fail;
	if ((p = policy_new(snap, err, sizeof(err))) == NULL) {
		log_warnx(
		    "node %s: handoff policy invalid: %s", c->n->name, err);
		goto fail;
	}
	return p;
fail:
	sluice__policy__free_unpacked(snap, NULL);
	return NULL;
}

struct policy *
command_policy(struct command *c, struct policy *p)
{
	struct policy *h;

	if (c == NULL || !atomic_load(&c->handoff))
		return p;
	/* A new controller policy while handing off: keep it for resume,
	 * run its handoff variant. */
	if ((h = command_handoff_policy(c, p)) == NULL)
		return p;
	policy_unref(c->orig);
	c->orig = p;
	return h;
}

/* Hand the queue to the peers: routes to them, deferred mail due now. */
static void
command_handoff_start(struct command *c, const Sluice__Command *cmd)
{
	struct command_ids ids;
	struct policy *h;
	size_t i;

	for (i = 0; i < c->npeers; i++)
		free(c->peers[i]);
	c->npeers = 0;
	for (i = 0; i < cmd->n_peers && c->npeers < COMMAND_PEERS_MAX; i++)
		if ((c->peers[c->npeers] = strdup(cmd->peers[i])) != NULL)
			c->npeers++;
	if (c->npeers == 0) {
		if (!c->warned_no_peers)
			log_warnx("node %s: handoff: no live peer; delivering "
			          "the queue itself",
			    c->n->name);
		c->warned_no_peers = true;
		return;
	}
	if ((h = command_handoff_policy(c, c->n->policy)) == NULL)
		return;
	c->orig = policy_ref(c->n->policy);
	node_policy_swap(c->n, h); /* before the flag: not filtered again */
	atomic_store(&c->handoff, true);
	memset(&ids, 0, sizeof(ids));
	spool_foreach(c->n->spool, command_deferred_cb, &ids);
	for (i = 0; i < ids.n; i++)
		spool_set_state(
		    c->n->spool, ids.ids[i], SPOOL_ACTIVE, 0, NULL, 0);
	free(ids.ids);
	delivery_kick(c->n->delivery);
	log_info("node %s: handing off %" PRIu64 " queued messages to %zu "
	         "peer%s (first %s)",
	    c->n->name, (uint64_t)atomic_load(&c->n->stats.queue_messages),
	    c->npeers, c->npeers == 1 ? "" : "s", c->peers[0]);
}

static void
command_handoff_stop(struct command *c)
{
	struct policy *orig = c->orig;

	if (!atomic_load(&c->handoff))
		return;
	atomic_store(&c->handoff, false);
	c->orig = NULL;
	if (orig != NULL)
		node_policy_swap(c->n, orig);
	log_info("node %s: handoff ended; the controller's routes again",
	    c->n->name);
}

static void
command_drain(struct command *c, const Sluice__Command *cmd, bool on)
{
	if (on && cmd->handoff && !atomic_load(&c->handoff))
		command_handoff_start(c, cmd);
	if (!on)
		command_handoff_stop(c);
	if (atomic_load(&c->draining) == on)
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
	atomic_store(&c->draining, on);
	atomic_store(&c->drained, false);
}

static struct command_rec *
command_rec_find(struct command *c, uint64_t id)
{
	size_t i;

	for (i = 0; i < COMMAND_RING; i++)
		if (c->ring[i].used && c->ring[i].id == id)
			return &c->ring[i];
	return NULL;
}

static void
command_run(struct command *c, const Sluice__Command *cmd)
{
	Sluice__CommandResult res = SLUICE__COMMAND_RESULT__INIT;
	struct command_rec *r;
	uint8_t *buf;
	size_t len, i;

	switch (cmd->kind) {
	case SLUICE__COMMAND_KIND__CMD_DRAIN:
		command_drain(c, cmd, true);
		return;
	case SLUICE__COMMAND_KIND__CMD_RESUME:
		command_drain(c, cmd, false);
		return;
	default:
		break;
	}
	pthread_mutex_lock(&c->mu);
	if ((r = command_rec_find(c, cmd->id)) != NULL) {
		/* Seen: the controller did not get the result; say it again. */
		r->sent = false;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pthread_mutex_unlock(&c->mu);
	res.id = cmd->id;
	switch (cmd->kind) {
	case SLUICE__COMMAND_KIND__CMD_FLUSH:
		command_flush(c, &res);
		break;
	case SLUICE__COMMAND_KIND__CMD_LIST:
		command_list(c, cmd, &res);
		break;
	default:
		command_one(c, cmd, &res);
		break;
	}
	buf = rpc_pack(&res.base, &len);
	for (i = 0; i < res.n_messages; i++)
		sluice__queued_message__free_unpacked(res.messages[i], NULL);
	free(res.messages);
	if (res.text != protobuf_c_empty_string)
		free(res.text);
	if (buf == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	r = &c->ring[c->next];
	c->next = (c->next + 1) % COMMAND_RING;
	free(r->packed);
	r->id = cmd->id;
	r->used = true;
	r->sent = false;
	r->packed = buf;
	r->len = len;
	pthread_mutex_unlock(&c->mu);
}

static void
command_on_post(evutil_socket_t fd, short what, void *arg)
{
	struct command *c = arg;
	Sluice__Command *v[COMMAND_INBOX_MAX];
	size_t i, n;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&c->mu);
	n = c->ninbox;
	memcpy(v, c->inbox, n * sizeof(*v));
	c->ninbox = 0;
	pthread_mutex_unlock(&c->mu);
	for (i = 0; i < n; i++) {
		command_run(c, v[i]);
		sluice__command__free_unpacked(v[i], NULL);
	}
}

static void
command_on_pauses(evutil_socket_t fd, short what, void *arg)
{
	struct command *c = arg;
	struct delivery_pause p[DELIVERY_PAUSES_MAX];
	size_t n;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&c->mu);
	memcpy(p, c->pauses, sizeof(p));
	n = c->npauses;
	pthread_mutex_unlock(&c->mu);
	delivery_set_pauses(c->n->delivery, p, n);
}

static void
command_on_shares(evutil_socket_t fd, short what, void *arg)
{
	struct command *c = arg;
	struct delivery_share s[DELIVERY_SHARES_MAX];
	size_t i, n;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&c->mu);
	memcpy(s, c->shares, sizeof(s));
	n = c->nshares;
	pthread_mutex_unlock(&c->mu);
	delivery_set_shares(c->n->delivery, s, n);
	for (i = 0; i < n; i++)
		log_info("node %s: hop %s share max_conn=%u rate=%u/min",
		    c->n->name, s[i].hop, (unsigned)s[i].max_conn,
		    (unsigned)s[i].rate);
}

/* ------------------------------------------------------------ qshape */

struct command_shape_walk {
	Sluice__QueueShape *v[COMMAND_SHAPE_SCAN];
	size_t n;
	int64_t now;
	bool is_oom;
};

static Sluice__QueueShape *
command_shape_row(struct command_shape_walk *w, const char *domain)
{
	Sluice__QueueShape *s;
	size_t i;

	for (i = 0; i < w->n; i++)
		if (strcasecmp(w->v[i]->domain, domain) == 0)
			return w->v[i];
	if (w->n == COMMAND_SHAPE_SCAN)
		domain = "(other)";
	for (i = 0; i < w->n; i++)
		if (strcmp(w->v[i]->domain, domain) == 0)
			return w->v[i];
	if (w->n == COMMAND_SHAPE_SCAN || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	sluice__queue_shape__init(s);
	if ((s->domain = strdup(domain)) == NULL ||
	    (s->age_buckets = calloc(COMMAND_SHAPE_NAGE, sizeof(uint64_t))) ==
	        NULL) {
		free(s->domain);
		free(s);
		return NULL;
	}
	for (i = 0; s->domain[i] != '\0'; i++)
		s->domain[i] = (char)tolower((unsigned char)s->domain[i]);
	s->n_age_buckets = COMMAND_SHAPE_NAGE;
	w->v[w->n++] = s;
	return s;
}

static int
command_shape_cb(const struct spool_info *si, void *arg)
{
	static const int64_t limits_min[COMMAND_SHAPE_NAGE - 1] = {
	    5, 10, 20, 40, 80, 160};
	struct command_shape_walk *w = arg;
	Sluice__QueueShape *s;
	int64_t age_min = (w->now - si->committed_at) / 60;
	size_t i, k, b;

	for (b = 0; b < COMMAND_SHAPE_NAGE - 1 && age_min >= limits_min[b]; b++)
		;
	for (i = 0; i < si->env.nrcpts; i++) {
		const char *d = command_domain(si->env.rcpts[i]);

		if (si->rcpt_status[i] != SPOOL_RCPT_PENDING)
			continue;
		/* once per message and domain */
		for (k = 0; k < i; k++)
			if (si->rcpt_status[k] == SPOOL_RCPT_PENDING &&
			    strcasecmp(command_domain(si->env.rcpts[k]), d) ==
			        0)
				break;
		if (k < i)
			continue;
		if ((s = command_shape_row(w, d)) == NULL) {
			w->is_oom = true;
			return 1;
		}
		s->messages++;
		s->deferred += si->state == SPOOL_DEFERRED;
		s->held += si->state == SPOOL_HELD;
		s->age_buckets[b]++;
	}
	return 0;
}

static int
command_shape_cmp(const void *a, const void *b)
{
	const Sluice__QueueShape *x = *(Sluice__QueueShape *const *)a;
	const Sluice__QueueShape *y = *(Sluice__QueueShape *const *)b;

	if (x->messages != y->messages)
		return x->messages > y->messages ? -1 : 1;
	return strcmp(x->domain, y->domain);
}

/* Every heartbeat period: the queue by domain, the largest groups. */
static void
command_on_shape(evutil_socket_t fd, short what, void *arg)
{
	struct command *c = arg;
	struct command_shape_walk *w;
	Sluice__QueueMetrics m = SLUICE__QUEUE_METRICS__INIT;
	uint8_t *buf = NULL;
	size_t i, len = 0;
	bool empty;

	(void)fd;
	(void)what;
	empty = atomic_load(&c->n->stats.queue_messages) == 0;
	atomic_store(&c->drained, atomic_load(&c->draining) && empty &&
	                              smtp_server_sessions(c->n->smtp) == 0);
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return;
	w->now = time(NULL);
	if (!empty)
		spool_foreach(c->n->spool, command_shape_cb, w);
	if (!w->is_oom) {
		qsort(w->v, w->n, sizeof(w->v[0]), command_shape_cmp);
		m.shape = w->v;
		m.n_shape =
		    w->n < COMMAND_SHAPE_SEND ? w->n : COMMAND_SHAPE_SEND;
		buf = rpc_pack(&m.base, &len);
	}
	for (i = 0; i < w->n; i++)
		sluice__queue_shape__free_unpacked(w->v[i], NULL);
	free(w);
	if (buf == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	free(c->shape);
	c->shape = buf;
	c->shape_len = len;
	pthread_mutex_unlock(&c->mu);
}

struct command *
command_open(struct node *n)
{
	struct timeval tv;
	struct command *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->n = n;
	pthread_mutex_init(&c->mu, NULL);
	tv.tv_sec = n->heartbeat_ms / 1000;
	tv.tv_usec = (n->heartbeat_ms % 1000) * 1000;
	if ((c->ev_post = event_new(n->base, -1, 0, command_on_post, c)) ==
	        NULL ||
	    (c->ev_shares = event_new(n->base, -1, 0, command_on_shares, c)) ==
	        NULL ||
	    (c->ev_pauses = event_new(n->base, -1, 0, command_on_pauses, c)) ==
	        NULL ||
	    (c->ev_shape = event_new(
	         n->base, -1, EV_PERSIST, command_on_shape, c)) == NULL ||
	    event_add(c->ev_shape, &tv) == -1) {
		command_close(c);
		return NULL;
	}
	return c;
}

void
command_close(struct command *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->ev_post != NULL)
		event_free(c->ev_post);
	if (c->ev_shares != NULL)
		event_free(c->ev_shares);
	if (c->ev_pauses != NULL)
		event_free(c->ev_pauses);
	if (c->ev_shape != NULL)
		event_free(c->ev_shape);
	for (i = 0; i < c->ninbox; i++)
		sluice__command__free_unpacked(c->inbox[i], NULL);
	for (i = 0; i < COMMAND_RING; i++)
		free(c->ring[i].packed);
	for (i = 0; i < c->npeers; i++)
		free(c->peers[i]);
	policy_unref(c->orig);
	free(c->shape);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
