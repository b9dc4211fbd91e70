/* delivery.c - drives delivery: it takes due messages from its due-time
 * index (due_queue.c, kept from the spool's changes: new mail is due the
 * moment its commit is durable, deferred mail at its next attempt),
 * splits each message's pending recipients into jobs (one per route, and
 * per domain for MX routes), asks the router for the hops of
 * the attempt and queues transactions (at most max_rcpt recipients each)
 * on the hop's connection pool.  A pool keeps up to max_conn sessions of
 * smtp_client.c and reuses them across messages; a per-hop token bucket
 * keeps rate_per_minute.  Outcomes per recipient: delivered, bounced (5xx:
 * DSN to the sender), or on to the next hop (connection failures, 4xx);
 * when the hops are exhausted the message is deferred on the scheduler's
 * backoff.  A message leaves the spool only when every recipient is
 * delivered or bounced.  A hop with a shadow_peer (drain --handoff,
 * node/control/handoff.c) is no SMTP server but a peer node: the job's
 * recipients are handed to it over the shadow channel (shadow_handoff)
 * and count as delivered once it acked them durable.  Loop thread only;
 * callbacks from the resolver, the spool and the shadow channel carry
 * ids, looked up here, never pointers. */
#include "delivery.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "config.h"
#include "dsn.h"
#include "due_queue.h"
#include "journal.h"
#include "log.h"
#include "node.h"
#include "oauth.h"
#include "policy.h"
#include "provider_id.h"
#include "provider_tag.h"
#include "reply_scope.h"
#include "resolver.h"
#include "route_match.h"
#include "router.h"
#include "scheduler.h"
#include "shadow.h"
#include "signer.h"
#include "smtp_client.h"
#include "spool.h"
#include "tls_client.h"

const char *const delivery_config_keys[] = {"resolver", "tls_ca_file",
    "delivery_tick_ms", "delivery_timeout_ms", "delivery_connect_timeout_ms",
    "delivery_idle_ms", "delivery_max_inflight", "circuit_failures",
    "circuit_cooldown_ms", "throttle_ms", NULL};

#ifndef TAILQ_FOREACH_SAFE /* glibc's sys/queue.h lacks it */
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                             \
	for ((var) = TAILQ_FIRST(head);                                        \
	     (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);            \
	     (var) = (tvar))
#endif

#define DLV_MAX_PLAN         16
#define DLV_HASH             4096 /* in-flight messages by queue id */
#define DLV_MAX_HOPS_METRICS 64
#define DLV_TARGET_TTL_MS    60000
#define DLV_HEADERS_MAX      65536
#define DLV_DUE_BATCH        64 /* attempts started per loop turn */

/* Per-recipient state inside one attempt. */
enum dlv_rstate {
	DLV_R_SKIP = 0, /* already done in the spool */
	DLV_R_ACTIVE,   /* being worked */
	DLV_R_DELIVERED,
	DLV_R_BOUNCED,
	DLV_R_DEFERRED,
};

struct dlv_msg;
struct dlv_pool;

struct dlv_msg {
	TAILQ_ENTRY(dlv_msg) entry;
	struct delivery *d;
	uint64_t id;
	char qid[SPOOL_QID_MAX];
	char *sender, *message_id, *client, *auth_user;
	char *listener;        /* "" in mail spooled before issue 15 */
	struct route_ctx rctx; /* what routing sees; domain per recipient */
	char **rcpts;
	size_t nrcpts;
	uint8_t *rstate;         /* [nrcpts] enum dlv_rstate */
	struct smtp_reply *last; /* [nrcpts] last reply */
	char **last_host;        /* [nrcpts] */
	uint64_t size;
	char *dkim; /* DKIM-Signature fields sent first, or NULL */
	size_t dkim_len;
	char dkim_desc[300]; /* "example.com:r1,e1" for events */
	bool eightbit, smtputf8;
	bool body8bit, hdr8bit; /* octets > 127 found at ingress */
	bool dkim7;             /* signed in the 7-bit form: always sent so */
	int64_t committed_at, received_at;
	struct policy *pol;
	int njobs; /* open jobs */
	int64_t started_ms;
	LIST_HEAD(, dlv_job) jobs; /* open jobs */
	struct dlv_msg *hnext;     /* in-flight hash chain */
};
TAILQ_HEAD(dlv_msgs, dlv_msg);

/* Recipients of one message that share a route (and MX domain). */
struct dlv_job {
	LIST_ENTRY(dlv_job) entry;
	struct dlv_msg *m;
	const Sluice__Route *route;
	char *domain; /* for MX hops */
	size_t *idx;  /* recipients on this hop */
	size_t n;
	size_t *retry; /* for the next hop */
	size_t nretry;
	const Sluice__Hop *plan[DLV_MAX_PLAN];
	size_t nplan, cur;
	int ntxn;   /* open transactions */
	bool tried; /* some hop got (or failed) the recipients */
	/* A half-open hop of the plan whose probe belongs to another job:
	 * when the rest of the plan is used up, the job waits (parked) for
	 * the probe's outcome instead of deferring (docs/delivery.md). */
	const Sluice__Hop *held;
	bool parked;
	TAILQ_ENTRY(dlv_job) park;
	/* Some hop of the plan failed, throttled or was unavailable: when
	 * the plan runs out the recipients wait for the next attempt.  While
	 * false, every hop tried refused the message for what it lacks
	 * (SIZE, 8BITMIME, SMTPUTF8): at the end of the plan they bounce. */
	bool hop_trouble;
	const char *refused_by; /* the last hop that refused it so */
	/* A handoff on its way (dlv_job_handoff): its id, hop, start. */
	uint64_t hoff_id;
	const Sluice__Hop *hoff_hop;
	int64_t hoff_start_ms;
};
TAILQ_HEAD(dlv_jobs, dlv_job);

struct dlv_txn {
	TAILQ_ENTRY(dlv_txn) entry;
	struct dlv_job *j;
	struct dlv_pool *pool;
	size_t *idx;
	size_t n;
	const char **addrs;
	struct smtp_txn t;
	int64_t start_ms;
	bool started;
	bool perm; /* failed for good before a session (NXDOMAIN) */
	/* refused before sending: the server lacks what the message needs
	 * (SIZE, 8BITMIME for data that does not convert, SMTPUTF8) */
	bool refused;
	/* The provider metadata header with the queue id, sent first on a
	 * tagged hop (provider_tag.h); not in the spool. */
	char tag[PROVIDER_TAG_MAX];
	size_t tag_len;
};
TAILQ_HEAD(dlv_txns, dlv_txn);

struct dlv_conn {
	TAILQ_ENTRY(dlv_conn) entry;
	struct dlv_pool *pool;
	struct smtp_client *c;
	struct dlv_txn *txn;
	struct event *idle_ev;
	bool ready;
	char host[256];
	size_t target;
};
TAILQ_HEAD(dlv_conns, dlv_conn);

/* Connection cache and queue of one hop (of one policy version; for the
 * MX hop, of one domain). */
struct dlv_pool {
	TAILQ_ENTRY(dlv_pool) entry;
	struct delivery *d;
	uint64_t id;
	char *key, *name, *host, *user, *secret, *domain;
	int port;
	enum smtp_client_tls tls;
	bool verify, is_mx;
	uint32_t max_conn, rate, max_rcpt;
	struct oauth_hop *oauth; /* XOAUTH2 hop (owned by d->oauth) */
	struct dlv_conns conns;
	int nconns;
	struct dlv_txns waiting;
	int nwaiting;
	double tokens;
	int64_t tokens_at_ms;
	struct event *timer;
	/* Where to connect: resolved targets, tried in order; failures of
	 * the current round count up to ntargets before the pool gives up
	 * on its waiting transactions. */
	struct resolver_target *targets;
	size_t ntargets, next_target, round_failures;
	int64_t targets_at_ms;
	bool resolving, is_literal;
	bool plain; /* opportunistic TLS failed here: plain text */
	char resolve_error[300];
	int64_t used_at_ms;
};
TAILQ_HEAD(dlv_pools, dlv_pool);

/* The last failure of a deferred message, kept between attempts so that
 * the bounce at expiry can carry the remote reply (the spool keeps only
 * per-recipient done/pending).  In memory: after a restart the DSN says
 * what the attempts since then saw. */
struct dlv_last {
	struct dlv_last *next;
	char qid[SPOOL_QID_MAX];
	char host[256];
	struct smtp_reply reply;
};

struct delivery {
	struct node *n;
	struct event *tick;
	struct router *router;
	struct resolver *resolver;
	struct ssl_ctx_st *ssl_ctx;
	struct oauth *oauth; /* XOAUTH2 token cache and fetcher */
	struct dlv_msgs msgs;
	struct dlv_msg *hash[DLV_HASH];
	struct dlv_last *last[DLV_HASH];
	size_t nmsgs;
	struct dlv_pools pools;
	struct dlv_jobs parked; /* waiting for a probe */
	struct event *parked_ev;
	uint64_t next_id;
	uint32_t seed;
	int tick_ms, timeout_ms, connect_timeout_ms;
	int idle_ms;
	size_t max_inflight;
	/* Fleet hop budgets (issue 5): shares from the controller. */
	struct delivery_share shares[DELIVERY_SHARES_MAX];
	size_t nshares;
	/* The due-time index: every queued message that is neither held
	 * nor in an attempt, by the time of its next attempt.  The spool
	 * tells it of every change (spool_watch); due_ev fires for its
	 * head, or at once (event_active) when mail is due now. */
	struct due_queue *due;
	struct event *due_ev;
	uint32_t defer_tag; /* tag of the spool_set_state(DEFERRED) now */
	bool closing;
	pthread_mutex_t mx;
	struct delivery_hop_metric metrics[DLV_MAX_HOPS_METRICS];
	size_t nmetrics;
	int64_t metrics_now;
};

static void dlv_pool_kick(struct dlv_pool *);
static void dlv_share_apply(struct delivery *, struct dlv_pool *);
static void dlv_job_next_hop(struct dlv_job *);
static void dlv_job_txn_closed(struct dlv_job *);
static void dlv_msg_job_done(struct dlv_msg *);
static void dlv_due_arm(struct delivery *);

static int64_t
dlv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *
dlv_strdup(const char *s)
{
	char *p = strdup(s != NULL ? s : "");

	if (p == NULL)
		fatalx("delivery: out of memory");
	return p;
}

static void *
dlv_calloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (p == NULL)
		fatalx("delivery: out of memory");
	return p;
}

static char *
dlv_mut(const char *s)
{
	/* protobuf-c wants char * for strings it only reads. */
	return (char *)(uintptr_t)(s != NULL ? s : "");
}

static const char *
dlv_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* ------------------------------------------------------ events + logs */

/* An event with the id the receiving side gave the message (pid, NULL:
 * from a delivered reply, issue 16; a handoff: the peer's queue id). */
static void
dlv_event_id(struct dlv_msg *m, size_t i, const char *kind, const char *hop,
    const char *host, const struct smtp_reply *r, int64_t dur_ms, bool tls,
    const char *peer_id)
{
	struct delivery *d = m->d;
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char reply[SMTP_REPLY_TEXT + 32], pid[PROVIDER_ID_MAX + 1];

	smtp_reply_format(r, reply, sizeof(reply));
	/* The provider's id for its webhook events (issue 16). */
	if (peer_id != NULL) {
		snprintf(pid, sizeof(pid), "%s", peer_id);
		ev.provider_id = pid;
	} else if (strcmp(kind, "delivered") == 0 &&
	           provider_id_from_reply(r->text, pid, sizeof(pid)))
		ev.provider_id = pid;
	ev.kind = dlv_mut(kind);
	ev.queue_id = m->qid;
	ev.message_id = m->message_id;
	ev.client = m->client;
	ev.auth_user = m->auth_user;
	ev.sender = m->sender;
	ev.recipient = m->rcpts[i];
	ev.size = m->size;
	ev.hop = dlv_mut(hop);
	ev.host = dlv_mut(host);
	ev.code = r->code > 0 ? (uint32_t)r->code : 0;
	ev.enhanced = dlv_mut(r->enhanced);
	ev.reply = reply;
	ev.duration_ms = dur_ms > 0 ? (uint32_t)dur_ms : 0;
	ev.tls = tls;
	ev.dkim = m->dkim_desc;
	if (d->n->journal != NULL)
		journal_append(d->n->journal, &ev);
	log_info("%s delivery status=%s to=<%s> hop=%s relay=%s "
	         "delay=%.1fs dsn=%s reply=\"%s\"",
	    m->qid, strcmp(kind, "delivered") == 0 ? "sent" : kind, m->rcpts[i],
	    hop != NULL && *hop ? hop : "none",
	    host != NULL && *host ? host : "none",
	    (double)(dlv_now_ms() / 1000 - m->received_at), r->enhanced, reply);
}

static void
dlv_event(struct dlv_msg *m, size_t i, const char *kind, const char *hop,
    const char *host, const struct smtp_reply *r, int64_t dur_ms, bool tls)
{
	dlv_event_id(m, i, kind, hop, host, r, dur_ms, tls, NULL);
}

/* --------------------------------------------------------------- msgs */

static void
dlv_msg_free(struct dlv_msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nrcpts; i++) {
		free(m->rcpts[i]);
		free(m->last_host[i]);
	}
	free(m->rcpts);
	free(m->last_host);
	free(m->last);
	free(m->rstate);
	free(m->sender);
	free(m->message_id);
	free(m->client);
	free(m->auth_user);
	free(m->listener);
	free(m->dkim);
	policy_unref(m->pol);
	free(m);
}

static size_t
dlv_hash(const char *qid)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*qid != '\0')
		h = (h ^ (uint8_t)*qid++) * 16777619u;
	return h % DLV_HASH;
}

static struct dlv_msg *
dlv_msg_find(struct delivery *d, const char *qid)
{
	struct dlv_msg *m;

	for (m = d->hash[dlv_hash(qid)]; m != NULL; m = m->hnext)
		if (strcmp(m->qid, qid) == 0)
			return m;
	return NULL;
}

static struct dlv_last **
dlv_last_slot(struct delivery *d, const char *qid)
{
	struct dlv_last **pp = &d->last[dlv_hash(qid)];

	while (*pp != NULL && strcmp((*pp)->qid, qid) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void
dlv_last_drop(struct delivery *d, const char *qid)
{
	struct dlv_last **pp = dlv_last_slot(d, qid), *l = *pp;

	if (l != NULL) {
		*pp = l->next;
		free(l);
	}
}

static void
dlv_last_set(struct delivery *d, const char *qid, const char *host,
    const struct smtp_reply *r)
{
	struct dlv_last **pp = dlv_last_slot(d, qid);

	if (*pp == NULL) {
		*pp = dlv_calloc(1, sizeof(**pp));
		snprintf((*pp)->qid, sizeof((*pp)->qid), "%s", qid);
	}
	snprintf((*pp)->host, sizeof((*pp)->host), "%s", host ? host : "");
	(*pp)->reply = *r;
}

static void
dlv_msg_release(struct dlv_msg *m)
{
	struct delivery *d = m->d;

	struct dlv_msg **pp = &d->hash[dlv_hash(m->qid)];

	while (*pp != m)
		pp = &(*pp)->hnext;
	*pp = m->hnext;
	TAILQ_REMOVE(&d->msgs, m, entry);
	if (d->nmsgs-- == d->max_inflight)
		dlv_due_arm(d); /* room for the next due message */
	dlv_msg_free(m);
}

static void
dlv_on_removed(uint64_t cookie, const char *qid, bool ok)
{
	(void)cookie;
	if (!ok)
		log_warnx("%s delivery: removal not durable", qid);
}

static void
dlv_on_dsn_committed(void *arg, uint64_t cookie, const char *dsn_qid, bool ok)
{
	(void)arg;
	(void)cookie;
	if (ok)
		log_info("%s delivery: DSN queued", dsn_qid);
	else
		log_warnx("delivery: DSN could not be queued");
}

/* Octets > 127 in a message we made: in its header block, in its body. */
static void
dlv_scan_8bit(const char *p, size_t len, bool *hdr8, bool *body8)
{
	const char *e = memmem(p, len, "\r\n\r\n", 4);
	size_t h = e != NULL ? (size_t)(e - p) : len, i;

	*hdr8 = *body8 = false;
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] > 127) {
			*(i < h ? hdr8 : body8) = true;
			if (i >= h)
				break;
		}
}

/* Queues a DSN for the recipients of m bounced in this attempt. */
static void
dlv_msg_bounce(struct dlv_msg *m)
{
	struct delivery *d = m->d;
	struct dsn_rcpt *r;
	struct dsn_info di;
	struct spool_envelope env;
	struct spool_msg *sm;
	char *hdr, *text, **diags;
	const char *rc[1];
	size_t i, k = 0, hlen = 0, len;
	ssize_t got;

	if (m->sender[0] == '\0')
		return; /* RFC 3464: never bounce a bounce */
	r = dlv_calloc(m->nrcpts, sizeof(*r));
	diags = dlv_calloc(m->nrcpts, sizeof(*diags));
	for (i = 0; i < m->nrcpts; i++) {
		if (m->rstate[i] != DLV_R_BOUNCED)
			continue;
		diags[k] = dlv_calloc(1, SMTP_REPLY_TEXT + 32);
		smtp_reply_format(&m->last[i], diags[k], SMTP_REPLY_TEXT + 32);
		r[k].addr = m->rcpts[i];
		r[k].status = m->last[i].enhanced[0] == '5'
		                  ? m->last[i].enhanced
		                  : "5.0.0";
		r[k].remote_mta = m->last_host[i];
		r[k].diagnostic = diags[k];
		k++;
	}
	/* The original header block: up to the first empty line. */
	hdr = dlv_calloc(1, DLV_HEADERS_MAX + 1);
	got = spool_read(d->n->spool, m->qid, 0, hdr, DLV_HEADERS_MAX);
	if (got > 0) {
		char *e;

		hdr[got] = '\0';
		e = strstr(hdr, "\r\n\r\n");
		hlen = e != NULL ? (size_t)(e - hdr) + 2 : (size_t)got;
	}
	memset(&di, 0, sizeof(di));
	di.reporting_mta = d->n->hostname;
	di.queue_id = m->qid;
	di.sender = m->sender;
	di.arrival = m->received_at ? m->received_at : m->committed_at;
	di.now = time(NULL);
	di.rcpts = r;
	di.nrcpts = k;
	di.headers = hdr;
	di.headers_len = hlen;
	di.global = m->smtputf8 || m->hdr8bit; /* RFC 6533 */
	text = k > 0 ? dsn_build(&di, &len) : NULL;
	if (text != NULL && (sm = spool_msg_new(d->n->spool)) != NULL) {
		if (spool_msg_write(sm, text, len) == -1)
			spool_msg_abort(sm);
		else {
			memset(&env, 0, sizeof(env));
			rc[0] = m->sender;
			env.sender = "";
			env.rcpts = rc;
			env.nrcpts = 1;
			env.client = "local";
			env.helo = d->n->hostname;
			env.auth_user = "";
			env.message_id = "";
			env.received_at = time(NULL);
			/* the sender may be a UTF-8 address; the DSN carries
			 * the original's 8-bit header octets */
			env.smtputf8 = m->smtputf8;
			dlv_scan_8bit(text, len, &env.hdr8bit, &env.body8bit);
			log_info("%s delivery: DSN to <%s> for %zu recipient%s",
			    m->qid, m->sender, k, k == 1 ? "" : "s");
			spool_msg_commit(
			    sm, &env, dlv_on_dsn_committed, d, m->id);
		}
	} else if (k > 0)
		log_warnx(
		    "%s delivery: cannot queue DSN to <%s>", m->qid, m->sender);
	free(text);
	free(hdr);
	for (i = 0; i < k; i++)
		free(diags[i]);
	free(diags);
	free(r);
}

/* The route of m's recipients in domain dom (route_match.h). */
static const Sluice__Route *
dlv_route(const struct dlv_msg *m, const char *dom)
{
	struct route_ctx c = m->rctx;

	c.domain = dom;
	return policy_route(m->pol, &c);
}

/* What a deferred message waits for (due_queue_tag): the hops of the
 * routes of its deferred recipients, so delivery_wake(hop) finds it. */
static uint32_t
dlv_msg_tag(const struct dlv_msg *m)
{
	uint32_t tag = 0;
	size_t i, g, h;

	for (i = 0; i < m->nrcpts; i++) {
		const Sluice__Route *rt;

		if (m->rstate[i] != DLV_R_DEFERRED &&
		    m->rstate[i] != DLV_R_ACTIVE)
			continue;
		if ((rt = dlv_route(m, dlv_domain(m->rcpts[i]))) == NULL)
			continue;
		for (g = 0; g < rt->n_groups; g++)
			for (h = 0; h < rt->groups[g]->n_hops; h++)
				tag |= due_queue_tag(rt->groups[g]->hops[h]);
	}
	return tag;
}

/* Every job of m is done: spool bookkeeping for the attempt. */
static void
dlv_msg_finish(struct dlv_msg *m)
{
	struct delivery *d = m->d;
	struct scheduler_params sp;
	size_t i, ndeferred = 0, nbounced = 0;
	int64_t now_ms = dlv_now_ms(), next;

	for (i = 0; i < m->nrcpts; i++) {
		if (m->rstate[i] == DLV_R_DEFERRED ||
		    m->rstate[i] == DLV_R_ACTIVE)
			ndeferred++;
		else if (m->rstate[i] == DLV_R_BOUNCED)
			nbounced++;
	}
	if (nbounced > 0)
		dlv_msg_bounce(m);
	for (i = 0; i < m->nrcpts; i++)
		if (m->rstate[i] == DLV_R_DEFERRED &&
		    (m->last[i].code != 0 || m->last[i].text[0] != '\0')) {
			dlv_last_set(d, m->qid, m->last_host[i], &m->last[i]);
			break;
		}
	if (ndeferred == 0) {
		dlv_last_drop(d, m->qid);
		if (spool_remove(d->n->spool, m->qid, dlv_on_removed, 0) == 0)
			log_info("%s delivery: removed", m->qid);
	} else {
		sp.retry_min_s = policy_limit(m->pol, "retry_min_seconds");
		sp.retry_max_s = policy_limit(m->pol, "retry_max_seconds");
		sp.lifetime_s =
		    policy_limit(m->pol, "max_queue_lifetime_seconds");
		next = scheduler_next_attempt(
		    &sp, m->committed_at, now_ms, router_rand(&d->seed));
		d->defer_tag = dlv_msg_tag(m);
		spool_set_state(
		    d->n->spool, m->qid, SPOOL_DEFERRED, next, NULL, 0);
		d->defer_tag = 0;
		atomic_fetch_add(&d->n->stats.deferred_attempts, 1);
		log_info("%s delivery: deferred %zu recipient%s, next attempt "
		         "in %.1fs",
		    m->qid, ndeferred, ndeferred == 1 ? "" : "s",
		    (double)(next * 1000 - now_ms) / 1000);
	}
	dlv_msg_release(m);
}

static void
dlv_msg_job_done(struct dlv_msg *m)
{
	if (--m->njobs == 0)
		dlv_msg_finish(m);
}

/* Final outcome of recipient i in this attempt. */
static void
dlv_rcpt_final(struct dlv_msg *m, size_t i, enum dlv_rstate st, const char *hop,
    const char *host, const struct smtp_reply *r, int64_t dur, bool tls)
{
	struct delivery *d = m->d;

	m->rstate[i] = (uint8_t)st;
	m->last[i] = *r;
	free(m->last_host[i]);
	m->last_host[i] = dlv_strdup(host);
	if (st == DLV_R_DELIVERED) {
		spool_rcpt_done(
		    d->n->spool, m->qid, i, SPOOL_RCPT_DELIVERED, NULL, 0);
		atomic_fetch_add(&d->n->stats.delivered, 1);
		dlv_event(m, i, "delivered", hop, host, r, dur, tls);
	} else if (st == DLV_R_BOUNCED) {
		spool_rcpt_done(
		    d->n->spool, m->qid, i, SPOOL_RCPT_BOUNCED, NULL, 0);
		atomic_fetch_add(&d->n->stats.bounced, 1);
		dlv_event(m, i, "bounced", hop, host, r, dur, tls);
	} else
		dlv_event(m, i, "deferred", hop, host, r, dur, tls);
}

/* --------------------------------------------------------------- jobs */

static const Sluice__Hop *
dlv_hop_lookup(void *arg, const char *name)
{
	return policy_hop(arg, name);
}

static void
dlv_job_free(struct dlv_job *j)
{
	free(j->idx);
	free(j->retry);
	free(j->domain);
	free(j);
}

/* The job is over: recipients left over are deferred. */
static void
dlv_job_end(struct dlv_job *j, const struct smtp_reply *why)
{
	struct dlv_msg *m = j->m;
	size_t k;

	for (k = 0; k < j->n; k++) {
		size_t i = j->idx[k];

		if (m->rstate[i] != DLV_R_ACTIVE)
			continue;
		m->rstate[i] = DLV_R_DEFERRED;
		if (why != NULL) {
			m->last[i] = *why;
			dlv_event(m, i, "deferred", "", "", why, 0, false);
		}
	}
	LIST_REMOVE(j, entry);
	dlv_job_free(j);
	dlv_msg_job_done(m);
}

static struct dlv_pool *dlv_pool_get(struct delivery *, const Sluice__Hop *,
    const char *domain, uint64_t version);

static void dlv_parked_arm(struct delivery *, bool now);
static void dlv_job_retry(struct dlv_job *, size_t);
static void dlv_hop_health(struct delivery *, const char *, bool,
    enum router_outcome, int64_t, const struct smtp_reply *);

/* ---------------------------------------------------------- handoffs */

/* The peer's answer to the job's handoff: every recipient delivered here
 * (event handed_off with the peer's queue id), or on to the next hop. */
static void
dlv_handoff_result(struct dlv_job *j, bool ok, const char *peer_qid,
    const struct smtp_reply *why)
{
	struct dlv_msg *m = j->m;
	struct delivery *d = m->d;
	const Sluice__Hop *h = j->hoff_hop;
	int64_t now = dlv_now_ms(), dur = now - j->hoff_start_ms;
	struct smtp_reply r;
	size_t k;

	j->hoff_id = 0;
	if (ok)
		smtp_reply_set(&r, 250, "2.0.0", "handed off to %s as %s",
		    h->peer_node, peer_qid);
	else {
		r = *why;
		j->hop_trouble = true;
	}
	for (k = 0; k < j->n; k++) {
		size_t i = j->idx[k];

		if (m->rstate[i] != DLV_R_ACTIVE)
			continue;
		m->last[i] = r;
		free(m->last_host[i]);
		m->last_host[i] = dlv_strdup(h->peer_node);
		if (ok) {
			m->rstate[i] = DLV_R_DELIVERED;
			spool_rcpt_done(d->n->spool, m->qid, i,
			    SPOOL_RCPT_DELIVERED, NULL, 0);
			dlv_event_id(m, i, "handed_off", h->name, h->peer_node,
			    &r, dur, false, peer_qid);
		} else {
			dlv_event(m, i, "deferred", h->name, h->peer_node, &r,
			    dur, false);
			dlv_job_retry(j, i);
		}
	}
	dlv_hop_health(
	    d, h->name, false, ok ? ROUTER_OK : ROUTER_FAIL, now, &r);
	dlv_job_txn_closed(j);
}

/* shadow_handoff_cb: the job is found by its handoff id. */
static void
dlv_on_handoff(
    void *arg, uint64_t cookie, bool ok, const char *peer_qid, const char *why)
{
	struct delivery *d = arg;
	struct smtp_reply r;
	struct dlv_msg *m;
	struct dlv_job *j;

	TAILQ_FOREACH(m, &d->msgs, entry)
	LIST_FOREACH(j, &m->jobs, entry)
	if (j->hoff_id == cookie) {
		smtp_reply_set(&r, 0, "4.4.1", "%s", ok ? "" : why);
		dlv_handoff_result(j, ok, peer_qid, &r);
		return;
	}
	/* the attempt waits for its handoff: not reached */
	log_warnx("delivery: handoff %" PRIu64 " answered (%s) without its "
	          "attempt",
	    cookie, ok ? peer_qid : why);
}

/* Hands the job's recipients (j->idx) to the peer node of hop h over the
 * shadow channel, with the whole envelope (docs/operations.md "drain
 * --handoff"); dlv_on_handoff takes the answer. */
static void
dlv_job_handoff(struct dlv_job *j, const Sluice__Hop *h, int64_t now)
{
	struct dlv_msg *m = j->m;
	struct delivery *d = m->d;
	const char **rcpts;
	struct smtp_reply r;
	char why[400];
	size_t k;

	j->tried = true;
	j->hoff_hop = h;
	j->hoff_start_ms = now;
	j->hoff_id = ++d->next_id;
	j->ntxn++;
	rcpts = dlv_calloc(j->n, sizeof(*rcpts));
	for (k = 0; k < j->n; k++)
		rcpts[k] = m->rcpts[j->idx[k]];
	if (shadow_handoff(d->n->shadow, h->shadow_peer, m->qid, rcpts, j->n,
	        d->timeout_ms, dlv_on_handoff, d, j->hoff_id, why,
	        sizeof(why)) == -1) {
		free(rcpts);
		smtp_reply_set(&r, 0, "4.4.1", "%s", why);
		dlv_handoff_result(j, false, "", &r);
		return;
	}
	free(rcpts); /* the frame is written */
}

/* Queues the job's recipients (j->idx) on hop h's pool. */
static void
dlv_job_send(struct dlv_job *j, const Sluice__Hop *h, int64_t now)
{
	struct dlv_msg *m = j->m;
	struct dlv_pool *p;
	struct dlv_txn *t;
	size_t k, per, n;

	if (h->shadow_peer[0] != '\0') {
		dlv_job_handoff(j, h, now);
		return;
	}
	j->tried = true;
	p = dlv_pool_get(m->d, h, j->domain, policy_version(m->pol));
	per = p->max_rcpt ? p->max_rcpt : j->n;
	for (k = 0; k < j->n; k += per) {
		n = j->n - k < per ? j->n - k : per;
		t = dlv_calloc(1, sizeof(*t));
		t->j = j;
		t->pool = p;
		t->start_ms = now;
		t->n = n;
		t->idx = dlv_calloc(n, sizeof(*t->idx));
		memcpy(t->idx, j->idx + k, n * sizeof(*t->idx));
		j->ntxn++;
		TAILQ_INSERT_TAIL(&p->waiting, t, entry);
		p->nwaiting++;
	}
	dlv_pool_kick(p);
}

/* The router's answer for hop h, with the half-open log line when this
 * job takes the probe. */
static enum router_admit
dlv_job_take(struct dlv_job *j, const Sluice__Hop *h, int64_t now)
{
	struct delivery *d = j->m->d;
	enum router_admit a = router_take(d->router, h->name, now);

	if (a == ROUTER_PROBE)
		log_info("%s delivery: circuit half-open hop=%s node=%s "
		         "reason=\"cool-down over, this message is the probe\" "
		         "reply=\"%s\"",
		    j->m->qid, h->name, d->n->name,
		    router_last(d->router, h->name));
	return a;
}

/* The plan ran out and every hop refused the message before sending it
 * (docs/delivery.md "8BITMIME"): the recipients bounce with the last
 * refusal, a DSN follows. */
static void
dlv_job_bounce_refused(struct dlv_job *j)
{
	struct dlv_msg *m = j->m;
	struct smtp_reply r;
	char *host;
	size_t k;

	for (k = 0; k < j->n; k++) {
		size_t i = j->idx[k];

		if (m->rstate[i] != DLV_R_ACTIVE)
			continue;
		r = m->last[i];
		host = dlv_strdup(m->last_host[i] ? m->last_host[i] : "");
		dlv_rcpt_final(m, i, DLV_R_BOUNCED,
		    j->refused_by ? j->refused_by : "", host, &r, 0, false);
		free(host);
	}
	dlv_job_end(j, NULL);
}

/* Sends the job's recipients (j->idx) to the next hop of the plan. */
static void
dlv_job_next_hop(struct dlv_job *j)
{
	struct dlv_msg *m = j->m;
	struct delivery *d = m->d;
	const Sluice__Hop *h;
	struct smtp_reply why;
	int64_t now = dlv_now_ms();

	while (j->cur < j->nplan) {
		h = j->plan[j->cur++];
		/* A hop whose circuit opened since the plan was made is
		 * skipped now, not after another timeout. */
		switch (dlv_job_take(j, h, now)) {
		case ROUTER_GO:
		case ROUTER_PROBE:
			dlv_job_send(j, h, now);
			return;
		case ROUTER_WAIT:
			if (j->held == NULL)
				j->held = h;
			j->hop_trouble = true;
			continue;
		case ROUTER_SKIP:
			j->hop_trouble = true;
			continue;
		}
	}
	if (j->held != NULL) {
		/* Held back by a half-open circuit: not a failed attempt.
		 * The job waits for the probe and goes right after it
		 * succeeds (or defers if it fails). */
		switch (dlv_job_take(j, j->held, now)) {
		case ROUTER_WAIT:
			if (!j->parked) {
				j->parked = true;
				TAILQ_INSERT_TAIL(&d->parked, j, park);
				dlv_parked_arm(d, false);
			}
			return;
		case ROUTER_GO:
		case ROUTER_PROBE:
			h = j->held;
			j->held = NULL;
			dlv_job_send(j, h, now);
			return;
		case ROUTER_SKIP:
			j->held = NULL;
			break;
		}
	}
	if (j->tried && !j->hop_trouble) {
		/* Every hop tried refused the message for what it lacks
		 * (SIZE, 8BITMIME, SMTPUTF8): no hop can take it. */
		dlv_job_bounce_refused(j);
		return;
	}
	smtp_reply_set(&why, 0, "4.4.1", "all hops failed or unavailable");
	/* Recipients that met a hop already have its failure event. */
	dlv_job_end(j, !j->tried ? &why : NULL);
}

/* Parked jobs whose hop is no longer waiting for a probe go on: to the
 * hop when the probe succeeded, to deferral when it failed. */
static void
dlv_parked_run(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	struct dlv_job *j, *nj;
	struct dlv_jobs ready;
	int64_t now = dlv_now_ms();

	(void)fd;
	(void)what;
	TAILQ_INIT(&ready);
	TAILQ_FOREACH_SAFE(j, &d->parked, park, nj)
	{
		if (router_state(d->router, j->held->name, now) !=
		    ROUTER_WAIT) {
			TAILQ_REMOVE(&d->parked, j, park);
			TAILQ_INSERT_TAIL(&ready, j, park);
		}
	}
	while ((j = TAILQ_FIRST(&ready)) != NULL) {
		TAILQ_REMOVE(&ready, j, park);
		j->parked = false;
		dlv_job_next_hop(j);
	}
	dlv_parked_arm(d, false);
}

/* Re-checks parked jobs now (a hop reported a result) or, as a safety
 * net for a probe that never reports, after a cool-down. */
static void
dlv_parked_arm(struct delivery *d, bool now)
{
	int64_t ms = router_cooldown_ms(d->router);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (d->closing || TAILQ_EMPTY(&d->parked))
		return;
	if (now)
		event_active(d->parked_ev, EV_TIMEOUT, 0);
	else if (!evtimer_pending(d->parked_ev, NULL))
		evtimer_add(d->parked_ev, &tv);
}

/* A transaction of j closed; when none is open, the retry set goes on to
 * the next hop, or the job ends. */
static void
dlv_job_txn_closed(struct dlv_job *j)
{
	size_t *tmp;

	if (--j->ntxn > 0)
		return;
	if (j->nretry == 0) {
		dlv_job_end(j, NULL);
		return;
	}
	tmp = j->idx;
	j->idx = j->retry;
	j->n = j->nretry;
	j->retry = tmp;
	j->nretry = 0;
	dlv_job_next_hop(j);
}

static void
dlv_job_retry(struct dlv_job *j, size_t i)
{
	j->retry[j->nretry++] = i;
}

/* ---------------------------------------------------------- transacts */

static void
dlv_txn_free(struct dlv_txn *t)
{
	free(t->idx);
	free(t->addrs);
	free(t->t.rcpt);
	free(t);
}

static ssize_t
dlv_txn_read(void *arg, uint64_t off, void *buf, size_t n)
{
	struct dlv_txn *t = arg;
	struct dlv_msg *m = t->j->m;

	/* The signatures made at acceptance go first, unchanged on every
	 * attempt (signer.h); then the data as spooled.  Data converted to
	 * 7 bit goes without them: they would not verify (docs/dkim.md). */
	size_t pre = t->t.downgraded && !m->dkim7 ? 0 : m->dkim_len;

	/* The provider's metadata header before all (not signed). */
	if (off < t->tag_len) {
		if (n > t->tag_len - off)
			n = (size_t)(t->tag_len - off);
		memcpy(buf, t->tag + off, n);
		return (ssize_t)n;
	}
	off -= t->tag_len;
	if (off < pre) {
		if (n > pre - off)
			n = (size_t)(pre - off);
		memcpy(buf, m->dkim + off, n);
		return (ssize_t)n;
	}
	off -= pre;
	if (off >= m->size)
		return 0;
	if (n > m->size - off)
		n = (size_t)(m->size - off);
	return spool_read(m->d->n->spool, m->qid, off, buf, n);
}

/* Hop health for the circuit breaker.  The MX hop is many destinations:
 * one domain's dead MX says nothing about the next domain, so only its
 * successes are counted.  last is the reply (or local reason) the use
 * ended with, for the one log line per circuit change. */
static void
dlv_hop_health(struct delivery *d, const char *name, bool is_mx,
    enum router_outcome o, int64_t now, const struct smtp_reply *last)
{
	enum router_admit before;
	enum router_change ch;
	char text[SMTP_REPLY_TEXT + 32];

	if (is_mx && o != ROUTER_OK && o != ROUTER_ANSWERED)
		return;
	text[0] = '\0';
	if (last != NULL && o == ROUTER_FAIL) {
		smtp_reply_format(last, text, sizeof(text));
		router_set_last(d->router, name, text);
	}
	before = router_state(d->router, name, now);
	ch = router_result(d->router, name, o, now);
	if (ch != ROUTER_SAME) {
		if (last != NULL && text[0] == '\0')
			smtp_reply_format(last, text, sizeof(text));
		if (ch == ROUTER_OPENED)
			log_info("delivery: circuit opened hop=%s node=%s "
			         "reason=\"%s\" reply=\"%s\"",
			    name, d->n->name,
			    before == ROUTER_GO ? "consecutive failures"
			                        : "probe failed",
			    text);
		else
			log_info("delivery: circuit closed hop=%s node=%s "
			         "reason=\"%s\" reply=\"%s\"",
			    name, d->n->name,
			    before == ROUTER_SKIP ? "hop answered"
			                          : "probe succeeded",
			    text);
	}
	/* The hop is back: mail deferred on its routes while the circuit
	 * was open goes now, not at its next scheduled retry. */
	if (ch == ROUTER_CLOSED)
		delivery_wake(d, name);
	if (!TAILQ_EMPTY(&d->parked))
		dlv_parked_arm(d, true);
}

static void
dlv_hop_result(struct dlv_pool *p, enum router_outcome o, int64_t now,
    const struct smtp_reply *last)
{
	dlv_hop_health(p->d, p->name, p->is_mx, o, now, last);
}

/* A reply said the hop needs its operator (credentials, configuration,
 * the provider account): one warning when that is news, and the alert
 * the heartbeat carries to the controller until the hop accepts mail. */
static void
dlv_hop_alert(struct dlv_pool *p, const struct reply_verdict *v,
    const struct smtp_reply *r)
{
	char text[SMTP_REPLY_TEXT + 32];

	smtp_reply_format(r, text, sizeof(text));
	if (router_problem(
	        p->d->router, p->name, reply_scope_name(v->scope), text))
		log_warnx("delivery: hop alert hop=%s node=%s scope=%s "
		          "provider=%s reply=\"%s\" (mail fails over; fix the "
		          "hop)",
		    p->name, p->d->n->name, reply_scope_name(v->scope),
		    v->provider, text);
}

/* A throttling reply: the hop goes behind the others for the provider's
 * window (or the doubling back-off when it names none). */
static void
dlv_hop_throttle(struct dlv_pool *p, const struct reply_verdict *v,
    const struct smtp_reply *r, int64_t now)
{
	char text[SMTP_REPLY_TEXT + 32];

	dlv_hop_result(p, ROUTER_THROTTLED, now, r);
	if (v->window_s <= 0 || p->is_mx)
		return;
	router_throttle_for(p->d->router, p->name, v->window_s * 1000, now);
	smtp_reply_format(r, text, sizeof(text));
	log_info("delivery: hop throttled hop=%s node=%s window=%llds "
	         "provider=%s reply=\"%s\"",
	    p->name, p->d->n->name, (long long)v->window_s, v->provider, text);
}

/* Results of a transaction (complete, refused before sending, or cut by a
 * dead session: why != NULL).  Each reply is classified by what it is
 * about (reply_scope.c): the recipient's and the message's 5xx bounce;
 * everything about the hop (4xx, throttling, credentials, the provider
 * account, even as a 5xx) sends the recipients to the next hop. */
static void
dlv_txn_result(
    struct dlv_txn *t, const char *host, bool tls, const struct smtp_reply *why)
{
	struct dlv_job *j = t->j;
	struct dlv_msg *m = j->m;
	struct dlv_pool *p = t->pool;
	const struct smtp_reply *r;
	int64_t now = dlv_now_ms(), dur = now - t->start_ms;
	bool throttled = false, hop_failed = why != NULL, accepted = false;
	const struct smtp_reply *hop_reply = why, *thr_reply = NULL;
	const struct smtp_reply *alert_reply = NULL;
	struct reply_verdict v, thr_v, alert_v;
	enum reply_stage st;
	size_t k;

	memset(&thr_v, 0, sizeof(thr_v));
	memset(&alert_v, 0, sizeof(alert_v));
	for (k = 0; k < t->n; k++) {
		size_t i = t->idx[k];
		const struct smtp_reply *rr =
		    t->t.rcpt != NULL ? &t->t.rcpt[k] : &t->t.data;

		if (why != NULL && t->perm) {
			/* The destination does not exist (NXDOMAIN). */
			dlv_rcpt_final(
			    m, i, DLV_R_BOUNCED, p->name, host, why, dur, tls);
			continue;
		}
		if (t->refused) {
			/* This server lacks what the message needs; a later
			 * hop may have it.  Bounced only when none takes it
			 * (dlv_job_next_hop).  Not the hop's failure. */
			j->refused_by = p->name;
			m->last[i] = t->t.mail;
			free(m->last_host[i]);
			m->last_host[i] = dlv_strdup(host);
			dlv_event(m, i, "deferred", p->name, host, &t->t.mail,
			    dur, tls);
			dlv_job_retry(j, i);
			continue;
		}
		/* The session died: a reply the recipient already got
		 * stands; everyone else goes to the next hop. */
		if (why != NULL &&
		    !(t->t.rcpt != NULL && smtp_reply_class(&t->t.mail) == 2 &&
		        smtp_reply_class(rr) == 5)) {
			r = why;
			st = REPLY_SESSION;
		} else if (smtp_reply_class(&t->t.mail) != 2) {
			r = &t->t.mail;
			st = REPLY_MAIL;
		} else if (smtp_reply_class(rr) != 2) {
			r = rr;
			st = REPLY_RCPT;
		} else {
			r = &t->t.data;
			st = REPLY_DATA;
		}
		if (r->code == 0 && why == NULL) {
			r = &t->t.mail;
			st = REPLY_MAIL;
		}
		reply_scope_classify(
		    r->code, r->enhanced, r->text, st, !p->is_mx, &v);
		switch (v.scope) {
		case SCOPE_OK:
			accepted = true;
			dlv_rcpt_final(
			    m, i, DLV_R_DELIVERED, p->name, host, r, dur, tls);
			continue;
		case SCOPE_RECIPIENT:
		case SCOPE_MESSAGE:
			/* 5xx about the mail: final.  A 4xx about the
			 * recipient's mailbox (full, receiving too fast) is
			 * not the hop's: it waits for the next attempt. */
			dlv_rcpt_final(m, i,
			    smtp_reply_class(r) == 5 ? DLV_R_BOUNCED
			                             : DLV_R_DEFERRED,
			    p->name, host, r, dur, tls);
			continue;
		case SCOPE_HOP_THROTTLE:
			throttled = true;
			j->hop_trouble = true;
			if (thr_reply == NULL || v.window_s > thr_v.window_s) {
				thr_reply = r;
				thr_v = v;
			}
			break;
		case SCOPE_HOP_TRANSIENT:
		case SCOPE_HOP_CONFIG:
		case SCOPE_ACCOUNT:
			/* Any 4xx, timeout or close, at any stage (421 to
			 * RCPT as much as to MAIL or the dot), and any reply
			 * about our credentials or account: the hop failed
			 * the recipient, and is charged once below. */
			hop_failed = true;
			j->hop_trouble = true;
			if (hop_reply == NULL)
				hop_reply = r;
			if (reply_scope_alerts(v.scope) &&
			    alert_reply == NULL) {
				alert_reply = r;
				alert_v = v;
			}
			break;
		}
		/* The next hop gets the recipient in the same attempt. */
		m->last[i] = *r;
		free(m->last_host[i]);
		m->last_host[i] = dlv_strdup(host);
		dlv_event(m, i, "deferred", p->name, host, r, dur, tls);
		dlv_job_retry(j, i);
	}
	/* A transaction that never reached a session was counted by its
	 * pool, once per failed connection, not once per message.  A hop
	 * is credited only with what it accepted: a transaction with any
	 * 4xx counts against it, once. */
	if (!t->started || t->refused)
		;
	else if (hop_failed) {
		if (alert_reply != NULL)
			dlv_hop_alert(p, &alert_v, alert_reply);
		dlv_hop_result(p, ROUTER_FAIL, now, hop_reply);
	} else if (throttled)
		dlv_hop_throttle(p, &thr_v, thr_reply, now);
	else
		dlv_hop_result(
		    p, accepted ? ROUTER_OK : ROUTER_ANSWERED, now, &t->t.data);
	dlv_txn_free(t);
	dlv_job_txn_closed(j);
}

/* -------------------------------------------------------------- pools */

static void
dlv_conn_free(struct dlv_conn *c)
{
	TAILQ_REMOVE(&c->pool->conns, c, entry);
	c->pool->nconns--;
	if (c->idle_ev != NULL)
		event_free(c->idle_ev);
	free(c);
}

static void
dlv_pool_free(struct dlv_pool *p)
{
	struct dlv_conn *c;

	while ((c = TAILQ_FIRST(&p->conns)) != NULL) {
		smtp_client_free(c->c);
		dlv_conn_free(c);
	}
	TAILQ_REMOVE(&p->d->pools, p, entry);
	if (p->timer != NULL)
		event_free(p->timer);
	free(p->targets);
	free(p->key);
	free(p->name);
	free(p->host);
	free(p->user);
	if (p->secret != NULL)
		explicit_bzero(p->secret, strlen(p->secret));
	free(p->secret);
	free(p->domain);
	free(p);
}

static void
dlv_pool_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dlv_pool_kick(arg);
}

static struct dlv_pool *
dlv_pool_get(struct delivery *d, const Sluice__Hop *h, const char *domain,
    uint64_t version)
{
	struct dlv_pool *p;
	char key[600];
	bool is_mx = strcmp(h->name, "mx") == 0;

	snprintf(key, sizeof(key), "%s|%" PRIu64 "|%s", h->name, version,
	    is_mx && domain ? domain : "");
	TAILQ_FOREACH(p, &d->pools, entry)
	if (strcmp(p->key, key) == 0)
		return p;
	p = dlv_calloc(1, sizeof(*p));
	p->d = d;
	p->id = ++d->next_id;
	p->key = dlv_strdup(key);
	p->name = dlv_strdup(h->name);
	p->host = dlv_strdup(h->host);
	p->user = dlv_strdup(h->auth_user);
	p->secret = dlv_strdup(h->secret);
	p->domain = dlv_strdup(domain);
	if (h->oauth2[0] != '\0' &&
	    (p->oauth = oauth_hop_get(d->oauth, h)) == NULL)
		fatalx("delivery: out of memory");
	p->is_mx = is_mx;
	p->port = h->port ? (int)h->port
	                  : (h->tls == SLUICE__TLS_MODE__TLS_SMTPS ? 465 : 25);
	switch (h->tls) {
	case SLUICE__TLS_MODE__TLS_STARTTLS:
		p->tls = SMTP_TLS_OPPORTUNISTIC;
		break;
	case SLUICE__TLS_MODE__TLS_REQUIRE:
		p->tls = SMTP_TLS_REQUIRE;
		break;
	case SLUICE__TLS_MODE__TLS_SMTPS:
		p->tls = SMTP_TLS_SMTPS;
		break;
	default:
		/* RFC 7435: MX delivery uses STARTTLS whenever offered. */
		p->tls = is_mx ? SMTP_TLS_OPPORTUNISTIC : SMTP_TLS_NONE;
		break;
	}
	/* verify_cert defaults to true for require and smtps (sluicectl,
	 * policy files); require with --no-verify is Postfix's "encrypt"
	 * level: TLS is mandatory, the certificate is not checked. */
	p->verify = !is_mx && h->verify_cert;
	p->max_conn = h->max_conn ? h->max_conn : 10;
	p->rate = h->rate_per_minute;
	p->max_rcpt = h->max_rcpt;
	dlv_share_apply(d, p);
	p->tokens = p->rate ? (p->rate / 60.0 > 1 ? p->rate / 60.0 : 1) : 0;
	p->tokens_at_ms = dlv_now_ms();
	TAILQ_INIT(&p->conns);
	TAILQ_INIT(&p->waiting);
	if ((p->timer = evtimer_new(d->n->base, dlv_pool_on_timer, p)) == NULL)
		fatalx("delivery: evtimer_new");
	TAILQ_INSERT_TAIL(&d->pools, p, entry);
	return p;
}

/* Every waiting transaction of p fails over with why (the hop could not
 * be reached this round). */
static void
dlv_pool_fail_waiting(
    struct dlv_pool *p, const struct smtp_reply *why, bool perm)
{
	struct dlv_txn *t;

	while ((t = TAILQ_FIRST(&p->waiting)) != NULL) {
		TAILQ_REMOVE(&p->waiting, t, entry);
		p->nwaiting--;
		t->perm = perm;
		dlv_txn_result(t, p->host, false, why);
	}
}

static struct dlv_pool *
dlv_pool_find_id(struct delivery *d, uint64_t id)
{
	struct dlv_pool *p;

	TAILQ_FOREACH(p, &d->pools, entry)
	if (p->id == id)
		return p;
	return NULL;
}

static void
dlv_pool_set_port(struct dlv_pool *p, struct resolver_target *t)
{
	if (t->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&t->addr)->sin_port =
		    htons((uint16_t)p->port);
	else
		((struct sockaddr_in6 *)&t->addr)->sin6_port =
		    htons((uint16_t)p->port);
}

static void
dlv_on_resolved(void *arg, uint64_t cookie, enum resolver_status st,
    const char *error, const struct resolver_target *t, size_t n)
{
	struct dlv_pool *p;
	struct smtp_reply why;
	size_t i;

	/* arg is the engine; the cookie a pool id: the pool may be gone */
	if ((p = dlv_pool_find_id(arg, cookie)) == NULL)
		return;
	p->resolving = false;
	free(p->targets);
	p->targets = NULL;
	p->ntargets = 0;
	p->next_target = 0;
	p->round_failures = 0;
	p->targets_at_ms = dlv_now_ms();
	if (st != RESOLVER_OK) {
		/* NXDOMAIN and null MX are final (RFC 7505 4.3). */
		if (st == RESOLVER_PERMFAIL)
			smtp_reply_set(&why, 550, "5.1.2", "%s", error);
		else
			smtp_reply_set(&why, 0, "4.4.3", "%s", error);
		dlv_pool_fail_waiting(p, &why, st == RESOLVER_PERMFAIL);
		return;
	}
	p->targets = dlv_calloc(n, sizeof(*t));
	for (i = 0; i < n; i++) {
		p->targets[i] = t[i];
		dlv_pool_set_port(p, &p->targets[i]);
	}
	p->ntargets = n;
	dlv_pool_kick(p);
}

/* Targets known (and fresh)?  Otherwise starts resolving: false. */
static bool
dlv_pool_targets(struct dlv_pool *p)
{
	struct resolver_target t;
	unsigned char buf[16];

	if (p->ntargets > 0 &&
	    (p->is_literal ||
	        dlv_now_ms() - p->targets_at_ms < DLV_TARGET_TTL_MS))
		return true;
	if (p->resolving)
		return false;
	memset(&t, 0, sizeof(t));
	snprintf(t.host, sizeof(t.host), "%s", p->host);
	if (!p->is_mx && inet_pton(AF_INET, p->host, buf) == 1) {
		struct sockaddr_in *s = (struct sockaddr_in *)&t.addr;

		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, buf, 4);
		t.addrlen = sizeof(*s);
	} else if (!p->is_mx && inet_pton(AF_INET6, p->host, buf) == 1) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&t.addr;

		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, buf, 16);
		t.addrlen = sizeof(*s);
	} else {
		p->resolving = true;
		if (p->is_mx)
			resolver_mx(p->d->resolver, p->domain, dlv_on_resolved,
			    p->d, p->id);
		else
			resolver_host(p->d->resolver, p->host, dlv_on_resolved,
			    p->d, p->id);
		return false;
	}
	free(p->targets);
	p->targets = dlv_calloc(1, sizeof(t));
	p->targets[0] = t;
	dlv_pool_set_port(p, &p->targets[0]);
	p->ntargets = 1;
	p->is_literal = true;
	return true;
}

/* ---------------------------------------------------------- sessions */

static void dlv_conn_on_ready(struct smtp_client *, void *);
static void dlv_conn_on_txn(struct smtp_client *, struct smtp_txn *, void *);
static void dlv_conn_on_failed(struct smtp_client *, enum smtp_client_failure,
    const struct smtp_reply *, struct smtp_txn *, void *);

static void dlv_conn_on_idle(evutil_socket_t, short, void *);

static const struct smtp_client_cb dlv_conn_cb = {
    dlv_conn_on_ready, dlv_conn_on_txn, dlv_conn_on_failed};

static void
dlv_conn_open(struct dlv_pool *p)
{
	struct delivery *d = p->d;
	struct smtp_client_params cp;
	struct resolver_target *t;
	struct dlv_conn *c;

	t = &p->targets[p->next_target % p->ntargets];
	c = dlv_calloc(1, sizeof(*c));
	c->pool = p;
	c->target = p->next_target % p->ntargets;
	snprintf(c->host, sizeof(c->host), "%s", t->host);
	memset(&cp, 0, sizeof(cp));
	cp.helo = d->n->hostname;
	cp.host = t->host;
	cp.addr = t->addr;
	cp.addrlen = t->addrlen;
	cp.tls = p->plain ? SMTP_TLS_NONE : p->tls;
	cp.verify = p->verify;
	cp.ssl_ctx = d->ssl_ctx;
	cp.auth_user = p->user;
	cp.secret = p->secret;
	cp.oauth = p->oauth;
	cp.connect_timeout_ms = d->connect_timeout_ms;
	cp.timeout_ms = d->timeout_ms;
	TAILQ_INSERT_TAIL(&p->conns, c, entry);
	p->nconns++;
	if ((c->c = smtp_client_new(d->n->base, &cp, &dlv_conn_cb, c)) ==
	    NULL) {
		struct smtp_reply why;

		smtp_reply_set(&why, 0, "4.4.1", "cannot connect to %s: %s",
		    t->host, strerror(errno));
		dlv_conn_free(c);
		p->next_target++;
		dlv_hop_result(p, ROUTER_FAIL, dlv_now_ms(), &why);
		dlv_pool_fail_waiting(p, &why, false);
	}
}

static void
dlv_conn_on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct dlv_conn *c = arg;
	struct dlv_pool *p = c->pool;

	(void)fd;
	(void)what;
	smtp_client_quit(c->c);
	dlv_conn_free(c);
	dlv_pool_kick(p);
}

/* Takes tokens for a transaction from the hop's bucket: true when one
 * was there, else the pool timer is set for when one will be. */
static bool
dlv_pool_token(struct dlv_pool *p)
{
	double per_ms, burst;
	int64_t now;
	struct timeval tv;

	if (p->rate == 0)
		return true;
	now = dlv_now_ms();
	per_ms = p->rate / 60000.0;
	burst = p->rate / 60.0 > 1 ? p->rate / 60.0 : 1;
	p->tokens += (double)(now - p->tokens_at_ms) * per_ms;
	if (p->tokens > burst)
		p->tokens = burst;
	p->tokens_at_ms = now;
	if (p->tokens >= 1) {
		p->tokens -= 1;
		return true;
	}
	now = (int64_t)((1 - p->tokens) / per_ms) + 1;
	tv.tv_sec = now / 1000;
	tv.tv_usec = (now % 1000) * 1000;
	evtimer_add(p->timer, &tv);
	return false;
}

static bool
dlv_conn_start(struct dlv_conn *c, struct dlv_txn *t)
{
	struct dlv_msg *m = t->j->m;
	size_t k;

	c->txn = t;
	if (c->idle_ev != NULL)
		event_del(c->idle_ev);
	t->addrs = dlv_calloc(t->n, sizeof(*t->addrs));
	t->t.rcpt = dlv_calloc(t->n, sizeof(*t->t.rcpt));
	for (k = 0; k < t->n; k++)
		t->addrs[k] = m->rcpts[t->idx[k]];
	t->t.sender = m->sender;
	t->t.rcpts = t->addrs;
	t->t.nrcpts = t->n;
	t->tag_len = c->pool->is_mx
	                 ? 0
	                 : provider_tag_header(
	                       provider_tag_for_hop(
	                           policy_snapshot(m->pol), c->pool->name),
	                       m->qid, t->tag, sizeof(t->tag));
	t->t.size = m->size + m->dkim_len + t->tag_len;
	/* BODY=8BITMIME when declared or found (RFC 6152), offered */
	t->t.eightbit = m->eightbit || m->body8bit || m->hdr8bit;
	t->t.has8bit = m->body8bit || m->hdr8bit;
	t->t.smtputf8 = m->smtputf8;
	t->t.force7bit = m->dkim7;
	t->t.read = dlv_txn_read;
	t->t.read_arg = t;
	t->start_ms = dlv_now_ms();
	t->started = true;
	if (smtp_client_send(c->c, &t->t) == -1) {
		/* Refused before sending (SIZE, SMTPUTF8, 8-bit data that
		 * does not convert): the next hop, bounced when none takes
		 * it; unreadable data: 451. */
		t->refused = smtp_reply_class(&t->t.mail) == 5;
		for (k = 0; k < t->n; k++)
			t->t.rcpt[k] = t->t.mail;
		c->txn = NULL;
		dlv_txn_result(t, c->host, smtp_client_has_tls(c->c), NULL);
		return false;
	}
	if (t->t.downgraded && m->dkim_len > 0 && !m->dkim7)
		log_info("%s delivery: converted to 7 bit for %s: sent without "
		         "its DKIM signature",
		    m->qid, c->host);
	return true;
}

/* Gives an idle session the next waiting transaction, or parks it on
 * the idle timer. */
static void
dlv_conn_feed(struct dlv_conn *c)
{
	struct dlv_pool *p = c->pool;
	struct delivery *d = p->d;
	struct dlv_txn *t;
	struct timeval tv = {d->idle_ms / 1000, (d->idle_ms % 1000) * 1000};

	while (c->txn == NULL && smtp_client_is_idle(c->c) &&
	       (t = TAILQ_FIRST(&p->waiting)) != NULL) {
		if (!dlv_pool_token(p))
			return;
		TAILQ_REMOVE(&p->waiting, t, entry);
		p->nwaiting--;
		if (dlv_conn_start(c, t))
			return;
	}
	if (c->txn != NULL || !smtp_client_is_idle(c->c))
		return;
	if (c->idle_ev == NULL &&
	    (c->idle_ev = evtimer_new(d->n->base, dlv_conn_on_idle, c)) == NULL)
		fatalx("delivery: evtimer_new");
	evtimer_add(c->idle_ev, &tv);
}

/* Matches waiting transactions with idle sessions, opens sessions up to
 * max_conn, closes what an old policy left behind. */
static void
dlv_pool_kick(struct dlv_pool *p)
{
	struct dlv_conn *c, *nc;
	int connecting = 0;

	if (p->d->closing)
		return;
	TAILQ_FOREACH_SAFE(c, &p->conns, entry, nc)
	{
		if (!c->ready)
			connecting++;
		else if (c->txn == NULL && smtp_client_is_idle(c->c) &&
		         TAILQ_FIRST(&p->waiting) != NULL)
			dlv_conn_feed(c);
	}
	if (p->nwaiting == 0)
		return;
	p->used_at_ms = dlv_now_ms();
	if (!dlv_pool_targets(p))
		return;
	while (p->nconns < (int)p->max_conn && connecting < p->nwaiting) {
		dlv_conn_open(p);
		connecting++;
		if (p->nwaiting == 0)
			break;
	}
}

static void
dlv_conn_on_ready(struct smtp_client *sc, void *arg)
{
	struct dlv_conn *c = arg;
	struct dlv_pool *p = c->pool;

	(void)sc;
	if (!c->ready) {
		c->ready = true;
		p->round_failures = 0;
		p->next_target = c->target;
	}
	if (c->txn == NULL)
		dlv_conn_feed(c);
}

static void
dlv_conn_on_txn(struct smtp_client *sc, struct smtp_txn *st, void *arg)
{
	struct dlv_conn *c = arg;
	struct dlv_txn *t = c->txn;

	(void)st;
	c->txn = NULL;
	dlv_txn_result(t, c->host, smtp_client_has_tls(sc), NULL);
	/* smtp_client calls ready() next when the session is idle. */
}

static enum reply_stage
dlv_failure_stage(enum smtp_client_failure f)
{
	switch (f) {
	case SMTP_CLIENT_CONNECT:
		return REPLY_CONNECT;
	case SMTP_CLIENT_TLS:
		return REPLY_STARTTLS;
	case SMTP_CLIENT_AUTH:
		return REPLY_AUTH;
	case SMTP_CLIENT_REJECTED:
		return REPLY_GREETING;
	default:
		return REPLY_SESSION;
	}
}

static void
dlv_conn_on_failed(struct smtp_client *sc, enum smtp_client_failure f,
    const struct smtp_reply *why, struct smtp_txn *st, void *arg)
{
	struct dlv_conn *c = arg;
	struct dlv_pool *p = c->pool;
	struct dlv_txn *t = c->txn;
	struct smtp_reply r = *why;
	struct reply_verdict v;
	bool was_ready = c->ready, any_ready = false;
	char text[SMTP_REPLY_TEXT + 32], host[256];
	struct dlv_conn *o;

	(void)st;
	snprintf(host, sizeof(host), "%s", c->host);
	smtp_reply_format(why, text, sizeof(text));
	log_info("delivery: hop=%s relay=%s[%s] session %s: %s", p->name,
	    c->host, smtp_client_peer(sc), smtp_client_failure_name(f), text);
	if (r.code == 0 || smtp_reply_class(&r) == 2)
		r.code = 0;
	smtp_client_free(sc);
	dlv_conn_free(c);
	if (t != NULL) {
		/* Cut mid-transaction: its recipients go to the next hop. */
		dlv_txn_result(t, host, false, &r);
		dlv_pool_kick(p);
		return;
	}
	if (was_ready) {
		/* An idle cached session closed by the peer: not a failure. */
		dlv_pool_kick(p);
		return;
	}
	/* Opportunistic TLS that fails the handshake: like Postfix, try
	 * the same server again in plain text rather than not at all. */
	if (f == SMTP_CLIENT_TLS && p->tls == SMTP_TLS_OPPORTUNISTIC &&
	    !p->plain) {
		log_info("delivery: hop=%s relay=%s: TLS failed, retrying "
		         "without TLS",
		    p->name, host);
		p->plain = true;
		dlv_pool_kick(p);
		return;
	}
	/* Setting up the session failed.  Try the next address/MX before
	 * giving up on the hop for this round (RFC 5321 5.1). */
	p->next_target++;
	p->round_failures++;
	if (p->round_failures < p->ntargets) {
		dlv_pool_kick(p);
		return;
	}
	p->round_failures = 0;
	/* What the refusal was about: a provider's connection limit is
	 * throttling, not a failure; credentials and account problems
	 * raise the hop's alert. */
	reply_scope_classify(
	    r.code, r.enhanced, r.text, dlv_failure_stage(f), !p->is_mx, &v);
	if (v.scope == SCOPE_HOP_THROTTLE)
		dlv_hop_throttle(p, &v, &r, dlv_now_ms());
	else {
		if (reply_scope_alerts(v.scope))
			dlv_hop_alert(p, &v, &r);
		dlv_hop_result(p, ROUTER_FAIL, dlv_now_ms(), &r);
	}
	TAILQ_FOREACH(o, &p->conns, entry)
	any_ready |= o->ready;
	/* Live sessions will serve the queue; otherwise it fails over now
	 * (sessions still connecting most likely meet the same fate). */
	if (!any_ready)
		dlv_pool_fail_waiting(p, &r, false);
}

/* --------------------------------------------------------- the queue */

/* Splits m's pending recipients into jobs by route and starts them. */
static void
dlv_msg_start(struct dlv_msg *m)
{
	struct delivery *d = m->d;
	struct scheduler_params sp;
	struct dlv_job **jobs;
	struct smtp_reply why;
	size_t i, k, njobs = 0;
	int64_t now = dlv_now_ms();

	sp.retry_min_s = policy_limit(m->pol, "retry_min_seconds");
	sp.retry_max_s = policy_limit(m->pol, "retry_max_seconds");
	sp.lifetime_s = policy_limit(m->pol, "max_queue_lifetime_seconds");
	if (scheduler_expired(&sp, m->committed_at, now / 1000)) {
		for (i = 0; i < m->nrcpts; i++) {
			if (m->rstate[i] != DLV_R_ACTIVE)
				continue;
			struct dlv_last *l = *dlv_last_slot(d, m->qid);
			char text[SMTP_REPLY_TEXT + 32];

			if (l != NULL) {
				smtp_reply_format(
				    &l->reply, text, sizeof(text));
				free(m->last_host[i]);
				m->last_host[i] = dlv_strdup(l->host);
			} else
				snprintf(text, sizeof(text),
				    "no attempt since the node started");
			smtp_reply_set(&m->last[i], 550, "5.4.7",
			    "delivery time expired (last: %s)", text);
			m->rstate[i] = DLV_R_BOUNCED;
			spool_rcpt_done(d->n->spool, m->qid, i,
			    SPOOL_RCPT_BOUNCED, NULL, 0);
			atomic_fetch_add(&d->n->stats.bounced, 1);
			dlv_event(
			    m, i, "expired", "", "", &m->last[i], 0, false);
		}
		dlv_last_drop(d, m->qid);
		m->njobs = 1;
		dlv_msg_job_done(m);
		return;
	}
	jobs = dlv_calloc(m->nrcpts, sizeof(*jobs));
	m->njobs = 1; /* held until every job is started */
	for (i = 0; i < m->nrcpts; i++) {
		const char *dom = dlv_domain(m->rcpts[i]);
		const Sluice__Suppression *sup;
		const Sluice__Route *rt;
		struct dlv_job *j = NULL;
		bool has_mx = false;
		size_t g, h;

		if (m->rstate[i] != DLV_R_ACTIVE)
			continue;
		/* Issue 16, suppression_mode bounce: never sent to a hop;
		 * bounced now, the DSN names the suppression. */
		if (policy_suppression_bounces(m->pol) &&
		    (sup = policy_suppressed(m->pol, m->rcpts[i])) != NULL) {
			bool hard = strcmp(sup->reason, "bounce") == 0;

			smtp_reply_set(&why, 550, hard ? "5.1.1" : "5.7.1",
			    "recipient address suppressed (%s): not sent",
			    sup->reason[0] ? sup->reason : "manual");
			dlv_rcpt_final(
			    m, i, DLV_R_BOUNCED, "", "", &why, 0, false);
			continue;
		}
		if ((rt = dlv_route(m, dom)) == NULL) {
			/* No route: a policy change may add one. */
			smtp_reply_set(
			    &why, 0, "4.4.0", "no route for domain %s", dom);
			m->rstate[i] = DLV_R_DEFERRED;
			m->last[i] = why;
			dlv_event(m, i, "deferred", "", "", &why, 0, false);
			continue;
		}
		for (g = 0; g < rt->n_groups; g++)
			for (h = 0; h < rt->groups[g]->n_hops; h++)
				has_mx |=
				    strcmp(rt->groups[g]->hops[h], "mx") == 0;
		for (k = 0; k < njobs; k++)
			if (jobs[k]->route == rt &&
			    (!has_mx || strcasecmp(jobs[k]->domain, dom) == 0))
				j = jobs[k];
		if (j == NULL) {
			j = dlv_calloc(1, sizeof(*j));
			j->m = m;
			j->route = rt;
			j->domain = dlv_strdup(has_mx ? dom : "");
			j->idx = dlv_calloc(m->nrcpts, sizeof(*j->idx));
			j->retry = dlv_calloc(m->nrcpts, sizeof(*j->retry));
			LIST_INSERT_HEAD(&m->jobs, j, entry);
			jobs[njobs++] = j;
		}
		j->idx[j->n++] = i;
	}
	m->njobs += (int)njobs;
	for (k = 0; k < njobs; k++) {
		struct dlv_job *j = jobs[k];

		j->nplan = router_plan(d->router, j->route, dlv_hop_lookup,
		    m->pol, m->size, now, &d->seed, j->plan, DLV_MAX_PLAN);
		dlv_job_next_hop(j);
	}
	free(jobs);
	dlv_msg_job_done(m);
}

/* An attempt of the queued message si: copies what it needs. */
static struct dlv_msg *
dlv_msg_new(struct delivery *d, const struct spool_info *si)
{
	struct dlv_msg *m;
	size_t i;

	m = dlv_calloc(1, sizeof(*m));
	m->d = d;
	m->id = ++d->next_id;
	LIST_INIT(&m->jobs);
	snprintf(m->qid, sizeof(m->qid), "%s", si->queue_id);
	m->sender = dlv_strdup(si->env.sender);
	m->message_id = dlv_strdup(si->env.message_id);
	m->client = dlv_strdup(si->env.client);
	m->auth_user = dlv_strdup(si->env.auth_user);
	m->listener = dlv_strdup(si->env.listener);
	m->rctx.sender = m->sender;
	m->rctx.user = m->auth_user;
	m->rctx.listener = m->listener;
	route_ctx_client(&m->rctx, m->client);
	m->nrcpts = si->env.nrcpts;
	m->rcpts = dlv_calloc(m->nrcpts, sizeof(*m->rcpts));
	m->last_host = dlv_calloc(m->nrcpts, sizeof(*m->last_host));
	m->last = dlv_calloc(m->nrcpts, sizeof(*m->last));
	m->rstate = dlv_calloc(m->nrcpts, sizeof(*m->rstate));
	for (i = 0; i < m->nrcpts; i++) {
		m->rcpts[i] = dlv_strdup(si->env.rcpts[i]);
		m->rstate[i] = si->rcpt_status[i] == SPOOL_RCPT_PENDING
		                   ? DLV_R_ACTIVE
		                   : DLV_R_SKIP;
	}
	m->size = si->size;
	if (si->env.dkim != NULL && si->env.dkim[0] != '\0') {
		m->dkim = dlv_strdup(si->env.dkim);
		m->dkim_len = strlen(m->dkim);
		m->dkim7 = si->env.dkim7;
		signer_describe(m->dkim, m->dkim_desc, sizeof(m->dkim_desc));
	}
	m->eightbit = si->env.eightbit;
	m->body8bit = si->env.body8bit;
	m->hdr8bit = si->env.hdr8bit;
	m->smtputf8 = si->env.smtputf8;
	m->committed_at = si->committed_at;
	m->received_at =
	    si->env.received_at ? si->env.received_at : si->committed_at;
	return m;
}

static void
dlv_metrics_cb(const struct router_hop_state *s, void *arg)
{
	struct delivery *d = arg;
	struct delivery_hop_metric *hm;
	struct dlv_pool *p;

	if (d->nmetrics == DLV_MAX_HOPS_METRICS)
		return;
	hm = &d->metrics[d->nmetrics++];
	memset(hm, 0, sizeof(*hm));
	snprintf(hm->name, sizeof(hm->name), "%s", s->name);
	hm->circuit_open = s->circuit_open;
	hm->throttled = s->throttled;
	hm->recent_failures = s->recent_failures;
	hm->delivered = s->delivered;
	hm->failed = s->failed;
	hm->half_open = s->half_open;
	if (s->throttled)
		hm->throttled_for_s =
		    (uint32_t)((s->throttled_until_ms - d->metrics_now + 999) /
		               1000);
	hm->throttle_window_s = (uint32_t)(s->throttle_window_ms / 1000);
	hm->fleet_paused = s->fleet_paused;
	if (s->fleet_paused)
		snprintf(hm->fleet_paused_by, sizeof(hm->fleet_paused_by), "%s",
		    s->fleet_by);
	if (s->own_throttled)
		hm->own_throttled_for_s =
		    (uint32_t)((s->own_throttled_until_ms - d->metrics_now +
		                   999) /
		               1000);
	snprintf(
	    hm->alert_scope, sizeof(hm->alert_scope), "%s", s->problem_scope);
	snprintf(hm->alert, sizeof(hm->alert), "%s", s->problem);
	TAILQ_FOREACH(p, &d->pools, entry)
	if (strcmp(p->name, s->name) == 0)
		hm->connections += (uint32_t)p->nconns;
}

/* Arms due_ev for the head of the index: the next loop turn when it is
 * due now, else its due time; nothing while the engine is at
 * delivery_max_inflight (dlv_msg_release arms it again). */
static void
dlv_due_arm(struct delivery *d)
{
	int64_t next, now;
	struct timeval tv;

	if (d->closing || d->due_ev == NULL)
		return;
	if ((next = due_queue_next(d->due)) == INT64_MAX ||
	    d->nmsgs >= d->max_inflight) {
		event_del(d->due_ev);
		return;
	}
	now = dlv_now_ms();
	/* Due now: a zero timer, not event_active.  libevent activates
	 * expired timers after the I/O of the next turn, so the 250s the
	 * spool's batch just queued (and the reads that are waiting) go
	 * first, and delivery I/O never runs ahead of a pending 250. */
	next = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(next / 1000);
	tv.tv_usec = (suseconds_t)(next % 1000) * 1000;
	event_add(d->due_ev, &tv);
}

/* Starts attempts of the messages due now, head first, up to
 * delivery_max_inflight and at most DLV_DUE_BATCH per loop turn: a flush
 * of a deep queue must not keep the loop from reading and answering
 * sessions; the rest follow in the next turns. */
static void
dlv_due_run(struct delivery *d)
{
	char qid[DUE_QID_MAX];
	struct spool_info si;
	int64_t now = dlv_now_ms();
	int started = 0;

	while (d->nmsgs < d->max_inflight && !d->closing &&
	       started < DLV_DUE_BATCH && due_queue_pop(d->due, now, qid)) {
		struct dlv_msg *m;
		size_t h;

		/* Held and removed messages left the index already; one in
		 * an attempt (a retry command meanwhile) is looked at again
		 * when the attempt ends. */
		if (spool_lookup(d->n->spool, qid, &si) == -1 ||
		    si.state == SPOOL_HELD || dlv_msg_find(d, qid) != NULL)
			continue;
		m = dlv_msg_new(d, &si);
		h = dlv_hash(m->qid);
		TAILQ_INSERT_TAIL(&d->msgs, m, entry);
		m->hnext = d->hash[h];
		d->hash[h] = m;
		d->nmsgs++;
		m->pol = policy_ref(d->n->policy);
		m->started_ms = now;
		dlv_msg_start(m);
		started++;
	}
	dlv_due_arm(d);
}

static void
dlv_on_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dlv_due_run(arg);
}

/* The spool's changes (spool_watch) keep the index: new mail and mail
 * made active is due now, deferred mail at its next attempt, held and
 * removed mail leaves. */
static void
dlv_on_spool(void *arg, const char *qid, enum spool_state st,
    int64_t next_attempt_at, bool removed)
{
	struct delivery *d = arg;

	/* A message gone leaves its shadow on the peer to be released; one
	 * whose shadow copy is on its way waits for it (delivery_ungate),
	 * so the 250-or-451 decision comes first (docs/redundancy.md). */
	if (removed)
		shadow_on_removed(d->n->shadow, qid);
	else if (st == SPOOL_ACTIVE && shadow_gated(d->n->shadow, qid))
		return;
	if (removed || st == SPOOL_HELD)
		due_queue_remove(d->due, qid);
	else if (due_queue_set(d->due, qid,
	             st == SPOOL_DEFERRED ? next_attempt_at * 1000 : 0,
	             st == SPOOL_DEFERRED ? d->defer_tag : 0) == -1)
		fatalx("delivery: out of memory");
	dlv_due_arm(d);
}

static int
dlv_seed_cb(const struct spool_info *si, void *arg)
{
	struct delivery *d = arg;

	if (si->state != SPOOL_HELD)
		dlv_on_spool(
		    d, si->queue_id, si->state, si->next_attempt_at, false);
	return 0;
}

/* Housekeeping every delivery_tick_ms: idle pools go, hop metrics are
 * copied for other threads.  No queue walk: the index says what is due. */
static void
dlv_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	struct dlv_pool *p, *np;
	int64_t now = dlv_now_ms();

	(void)fd;
	(void)what;
	/* Pools of old policies, or unused for a while, go. */
	TAILQ_FOREACH_SAFE(p, &d->pools, entry, np)
	if (p->nconns == 0 && p->nwaiting == 0 && !p->resolving &&
	    now - p->used_at_ms > 60000)
		dlv_pool_free(p);
	pthread_mutex_lock(&d->mx);
	d->nmetrics = 0;
	d->metrics_now = now;
	router_foreach(d->router, now, dlv_metrics_cb, d);
	pthread_mutex_unlock(&d->mx);
}

void
delivery_ungate(struct delivery *d, const char *qid)
{
	struct spool_info si;

	if (d != NULL && spool_lookup(d->n->spool, qid, &si) == 0 &&
	    si.state == SPOOL_ACTIVE)
		dlv_on_spool(d, qid, SPOOL_ACTIVE, 0, false);
}

void
delivery_kick(struct delivery *d)
{
	if (d != NULL)
		dlv_due_arm(d);
}

void
delivery_wake(struct delivery *d, const char *hop)
{
	if (d == NULL)
		return;
	if (due_queue_wake(d->due,
	        hop != NULL ? due_queue_tag(hop) : UINT32_MAX,
	        dlv_now_ms()) > 0)
		dlv_due_arm(d);
}

/* Fleet hop budgets (issue 5, node/command.c): a pool of a budgeted hop
 * (never the MX hop) takes this node's share instead of the policy's
 * fleet-wide value. */
static void
dlv_share_apply(struct delivery *d, struct dlv_pool *p)
{
	size_t i;

	for (i = 0; i < d->nshares && !p->is_mx; i++) {
		if (strcmp(d->shares[i].hop, p->name) != 0)
			continue;
		if (d->shares[i].max_conn != 0)
			p->max_conn = d->shares[i].max_conn;
		if (d->shares[i].rate != 0)
			p->rate = d->shares[i].rate;
		return;
	}
}

void
delivery_set_shares(
    struct delivery *d, const struct delivery_share *s, size_t n)
{
	struct dlv_pool *p;

	if (d == NULL)
		return;
	d->nshares = n < DELIVERY_SHARES_MAX ? n : DELIVERY_SHARES_MAX;
	memcpy(d->shares, s, d->nshares * sizeof(*s));
	TAILQ_FOREACH(p, &d->pools, entry)
	{
		dlv_share_apply(d, p);
		dlv_pool_kick(p);
	}
}

void
delivery_set_pauses(
    struct delivery *d, const struct delivery_pause *v, size_t n)
{
	int64_t now = dlv_now_ms();
	size_t i;

	if (d == NULL)
		return;
	/* One line when a hop's fleet-wide pause is news on this node. */
	for (i = 0; i < n; i++)
		if (!router_fleet_paused(d->router, v[i].hop, now))
			log_info("delivery: hop paused fleet-wide hop=%s "
			         "node=%s by=%s for=%us window=%us",
			    v[i].hop, d->n->name, v[i].node,
			    (v[i].for_ms + 999) / 1000, v[i].window_s);
	router_fleet_reset(d->router);
	for (i = 0; i < n; i++)
		router_fleet_pause(d->router, v[i].hop, v[i].for_ms,
		    (int64_t)v[i].window_s * 1000, v[i].node, now);
}

/* Fleet commands (issue 5, node/command.c). */
bool
delivery_busy(struct delivery *d, const char *queue_id)
{
	/* a held message on its way to a peer (drain --handoff) too */
	return d != NULL && (dlv_msg_find(d, queue_id) != NULL ||
	                        shadow_handoff_busy(d->n->shadow, queue_id));
}

size_t
delivery_hop_metrics(
    struct delivery *d, struct delivery_hop_metric *out, size_t max)
{
	size_t n;

	if (d == NULL)
		return 0;
	pthread_mutex_lock(&d->mx);
	n = d->nmetrics < max ? d->nmetrics : max;
	memcpy(out, d->metrics, n * sizeof(*out));
	pthread_mutex_unlock(&d->mx);
	return n;
}

static int
dlv_conf_int(const struct config *c, const char *key, int64_t def, int64_t min,
    int64_t max, int64_t *out, char *err, size_t errlen)
{
	if (config_get_int(c, key, def, out, err, errlen) == -1)
		return -1;
	if (*out < min || *out > max) {
		snprintf(err, errlen, "%s must be %lld..%lld", key,
		    (long long)min, (long long)max);
		return -1;
	}
	return 0;
}

struct delivery *
delivery_open(struct node *n, char *err, size_t errlen)
{
	struct delivery *d;
	struct router_params rp;
	int64_t tick, to, cto, idle, inflight, cf, cc, thr;
	const struct config *c = n->conf;

	if (dlv_conf_int(c, "delivery_tick_ms", 100, 5, 60000, &tick, err,
	        errlen) == -1 ||
	    dlv_conf_int(c, "delivery_timeout_ms", 300000, 100, 3600000, &to,
	        err, errlen) == -1 ||
	    dlv_conf_int(c, "delivery_connect_timeout_ms", 30000, 100, 600000,
	        &cto, err, errlen) == -1 ||
	    dlv_conf_int(c, "delivery_idle_ms", 5000, 1, 3600000, &idle, err,
	        errlen) == -1 ||
	    dlv_conf_int(c, "delivery_max_inflight", 5000, 1, 1000000,
	        &inflight, err, errlen) == -1 ||
	    dlv_conf_int(c, "circuit_failures", 5, 1, 1000, &cf, err, errlen) ==
	        -1 ||
	    dlv_conf_int(c, "circuit_cooldown_ms", 30000, 10, 86400000, &cc,
	        err, errlen) == -1 ||
	    dlv_conf_int(
	        c, "throttle_ms", 5000, 10, 86400000, &thr, err, errlen) == -1)
		return NULL;
	d = dlv_calloc(1, sizeof(*d));
	d->n = n;
	d->tick_ms = (int)tick;
	d->timeout_ms = (int)to;
	d->connect_timeout_ms = (int)cto;
	d->idle_ms = (int)idle;
	d->max_inflight = (size_t)inflight;
	d->seed = (uint32_t)arc4random() | 1;
	TAILQ_INIT(&d->msgs);
	TAILQ_INIT(&d->pools);
	TAILQ_INIT(&d->parked);
	pthread_mutex_init(&d->mx, NULL);
	memset(&rp, 0, sizeof(rp));
	rp.circuit_failures = (int)cf;
	rp.circuit_cooldown_ms = cc;
	rp.throttle_ms = thr;
	if ((d->router = router_new(&rp)) == NULL)
		fatalx("delivery: out of memory");
	if ((d->ssl_ctx = tls_client_ctx_new(
	         config_get(c, "tls_ca_file"), err, errlen)) == NULL)
		goto fail;
	if ((d->oauth = oauth_new(
	         n->base, config_get(c, "tls_ca_file"), err, errlen)) == NULL)
		goto fail;
	if ((d->resolver = resolver_new(n->base, config_get(c, "resolver"))) ==
	    NULL) {
		snprintf(err, errlen, "resolver '%s' unusable (see log)",
		    config_get(c, "resolver") ? config_get(c, "resolver")
		                              : "system");
		goto fail;
	}
	if ((d->tick = event_new(n->base, -1, EV_PERSIST, dlv_on_tick, d)) ==
	        NULL ||
	    (d->due_ev = event_new(n->base, -1, 0, dlv_on_due, d)) == NULL ||
	    (d->due = due_queue_new()) == NULL)
		fatalx("delivery: event_new");
	{
		struct timeval tv = {
		    d->tick_ms / 1000, (d->tick_ms % 1000) * 1000};

		event_add(d->tick, &tv);
	}
	if ((d->parked_ev = evtimer_new(n->base, dlv_parked_run, d)) == NULL)
		fatalx("delivery: evtimer_new");
	/* The index starts from what the spool recovered, then follows its
	 * changes. */
	spool_foreach(n->spool, dlv_seed_cb, d);
	spool_watch(n->spool, dlv_on_spool, d);
	log_info("delivery: started, %zu messages queued for delivery, "
	         "housekeeping every %dms, resolver %s",
	    due_queue_len(d->due), d->tick_ms,
	    config_get(c, "resolver") ? config_get(c, "resolver") : "system");
	return d;
fail:
	router_free(d->router);
	oauth_free(d->oauth);
	if (d->ssl_ctx != NULL)
		tls_client_ctx_free(d->ssl_ctx);
	pthread_mutex_destroy(&d->mx);
	free(d);
	return NULL;
}

void
delivery_close(struct delivery *d)
{
	struct dlv_pool *p;
	struct dlv_msg *m;
	struct dlv_txn *t;
	size_t i;

	if (d == NULL)
		return;
	d->closing = true;
	spool_watch(d->n->spool, NULL, NULL);
	if (d->tick != NULL)
		event_free(d->tick);
	if (d->parked_ev != NULL)
		event_free(d->parked_ev);
	TAILQ_INIT(&d->parked); /* the jobs are freed with their messages */
	if (d->due_ev != NULL)
		event_free(d->due_ev);
	/* Jobs and transactions hang off pools; messages stay queued in
	 * the spool (ACTIVE or as they were) for the next start. */
	while ((p = TAILQ_FIRST(&d->pools)) != NULL) {
		struct dlv_conn *c;

		TAILQ_FOREACH(c, &p->conns, entry)
		if (c->txn != NULL) {
			dlv_txn_free(c->txn);
			c->txn = NULL;
		}
		while ((t = TAILQ_FIRST(&p->waiting)) != NULL) {
			TAILQ_REMOVE(&p->waiting, t, entry);
			dlv_txn_free(t);
		}
		dlv_pool_free(p);
	}
	while ((m = TAILQ_FIRST(&d->msgs)) != NULL) {
		struct dlv_job *j;

		while ((j = LIST_FIRST(&m->jobs)) != NULL) {
			LIST_REMOVE(j, entry);
			dlv_job_free(j);
		}
		dlv_msg_release(m);
	}
	for (i = 0; i < DLV_HASH; i++)
		while (d->last[i] != NULL) {
			struct dlv_last *l = d->last[i];

			d->last[i] = l->next;
			free(l);
		}
	resolver_free(d->resolver);
	router_free(d->router);
	oauth_free(d->oauth); /* after the sessions that wait on it */
	tls_client_ctx_free(d->ssl_ctx);
	due_queue_free(d->due);
	pthread_mutex_destroy(&d->mx);
	free(d);
}
