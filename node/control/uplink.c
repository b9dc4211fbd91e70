/* uplink.c - node <-> controller transport (uplink.h).
 *
 * One thread, one nng REQ socket dialing every configured controller (nng
 * fails over between them).  For each report the loop hands over: Hello
 * until it succeeds, then the Heartbeat the loop built; when the
 * controller's policy version differs from the one the report says runs,
 * GetPolicy, validate, write the cache, post to the loop; then report
 * journaled events.  A controller that does not answer is logged once on
 * the way down and once on the way up; meanwhile the node keeps running
 * its current (possibly cached) policy.  The thread reads no node state:
 * what it knows comes in the report, what it learns goes out through the
 * mailbox. */
#include "uplink.h"

#include <errno.h>
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

#include "config.h"
#include "journal.h"
#include "log.h"
#include "mailbox.h"
#include "policy.h"
#include "proto.h"
#include "rpc.h"

#define UPLINK_MAX_CONTROLLERS RPC_MAX_ENDPOINTS
#define UPLINK_EVENT_BATCH     1000
#define UPLINK_CACHE_MAX       (64 * 1024 * 1024)
#define UPLINK_RACE_MS         250

const char *const uplink_config_keys[] = {"name", "token", "controller",
    "heartbeat_ms", "address", "controller_ca", "controller_cert_key",
    "controller_cert", "controller_key", "controller_server_name", "insecure",
    "event_report_ms", NULL};

struct uplink {
	struct rpc_client *rpc;
	struct journal *journal;
	struct mailbox *mailbox;
	struct uplink_hooks hooks;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;     /* under mu */
	int events_ms; /* report events this often between heartbeats */
	struct uplink_report *report; /* under mu: the next to send */
	atomic_bool aborted; /* rpc aborted by uplink_stop: fail quietly */
	atomic_int refused;
	bool started;
	/* Thread-private. */
	const struct uplink_report *cur; /* being sent */
	struct uplink_report last;       /* what the last report said (no hb) */
	bool hello_done;
	bool reachable;
	bool warned_down;
	uint64_t failed_version; /* invalid snapshot seen, and its hash */
	char failed_hash[65];
	char cache_path[4096];
	char spool_dir[4096];
	char name[128];
	char token[256];
	char address[256];
	char shadow_address[256];
};

/* What the thread hands the loop: run by the mailbox on the loop thread.
 * It carries the hooks, not the uplink (which may be gone by then). */
struct uplink_msg {
	struct uplink_hooks hooks;
	uint64_t seq;
	Sluice__NodeReply *reply; /* a heartbeat reply */
	struct policy *policy;
	char refusal[256];
};

static void
uplink_msg_run(void *arg)
{
	struct uplink_msg *m = arg;
	Sluice__HeartbeatReply *hb;

	if (m->refusal[0] != '\0')
		m->hooks.on_refused(m->hooks.arg, m->refusal);
	if (m->policy != NULL)
		m->hooks.on_policy(m->hooks.arg, m->policy);
	if (m->reply != NULL) {
		/* Detach the heartbeat so the hook owns exactly it. */
		hb = m->reply->heartbeat;
		m->reply->heartbeat = NULL;
		m->reply->body_case = SLUICE__NODE_REPLY__BODY__NOT_SET;
		sluice__node_reply__free_unpacked(m->reply, NULL);
		m->hooks.on_reply(m->hooks.arg, m->seq, hb);
	}
	free(m);
}

/* Takes whatever m carries; on ENOMEM drops it (the controller says it
 * again on the next heartbeat). */
static void
uplink_post(struct uplink *u, struct uplink_msg *m)
{
	m->hooks = u->hooks;
	if (mailbox_post(u->mailbox, uplink_msg_run, m) == 0)
		return;
	log_warnx("node %s: out of memory posting to the loop", u->name);
	if (m->reply != NULL)
		sluice__node_reply__free_unpacked(m->reply, NULL);
	policy_unref(m->policy);
	free(m);
}

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
	if ((dfd = open(u->spool_dir, O_RDONLY | O_DIRECTORY)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
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
			    u->name, err, u->cur->running_version,
			    u->cur->from_cache ? " (from cache)" : "");
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
	struct uplink_msg *m;

	atomic_store(&u->refused, 1);
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return;
	snprintf(m->refusal, sizeof(m->refusal), "%s",
	    msg[0] != '\0' ? msg : "denied");
	uplink_post(u, m);
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
	h.shadow_address = u->shadow_address;
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
	struct uplink_msg *m;
	struct policy *p;
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
			    u->cur->running_version);
		u->failed_version = snap->version;
		snprintf(u->failed_hash, sizeof(u->failed_hash), "%s",
		    snap->content_hash);
		sluice__policy__free_unpacked(snap, NULL);
		return;
	}
	uplink_write_cache(u, snap);
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		policy_unref(p);
		return;
	}
	m->policy = p;
	uplink_post(u, m);
}

/* The controller's database has our events only up to stored (a failover
 * lost acknowledged ones): what the journal still retains after it goes
 * out again. */
static int
uplink_rewind(struct uplink *u, uint64_t stored)
{
	uint64_t lost_from;
	int64_t n;

	if (u->journal == NULL)
		return 0;
	if ((n = journal_rewind(u->journal, stored, &lost_from)) == -1)
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

/* Sends the loop's report; the reply goes back to the loop, and the
 * policy is fetched when the controller's differs from the running one. */
static void
uplink_heartbeat(struct uplink *u, const struct uplink_report *r)
{
	Sluice__NodeRequest req = SLUICE__NODE_REQUEST__INIT;
	Sluice__NodeAuth a = SLUICE__NODE_AUTH__INIT;
	Sluice__HeartbeatRequest *hb;
	Sluice__NodeReply *rep;
	struct uplink_msg *m;
	uint64_t latest, stored;
	char code[32], msg[256], latest_hash[65];
	bool rewind;

	if ((hb = sluice__heartbeat_request__unpack(NULL, r->len, r->hb)) ==
	    NULL) {
		log_warnx("node %s: heartbeat report unreadable", u->name);
		return;
	}
	uplink_fill_auth(u, &a);
	hb->auth = &a;
	/* The journal's window as of now, not as of the report: it moves
	 * with this thread's event reports and rewinds. */
	if (u->journal != NULL)
		journal_window(u->journal, &hb->events_acked_seq,
		    &hb->events_retained_from);
	req.body_case = SLUICE__NODE_REQUEST__BODY_HEARTBEAT;
	req.heartbeat = hb;
	rep = uplink_call(u, &req, code, sizeof(code), msg, sizeof(msg));
	hb->auth = NULL;
	sluice__heartbeat_request__free_unpacked(hb, NULL);
	if (rep == NULL) {
		if (strcmp(code, "denied") == 0)
			uplink_refuse(u, msg);
		else if (strcmp(code, "transport") != 0)
			log_warnx(
			    "node %s: heartbeat: %s: %s", u->name, code, msg);
		return;
	}
	if (rep->body_case != SLUICE__NODE_REPLY__BODY_HEARTBEAT) {
		sluice__node_reply__free_unpacked(rep, NULL);
		return;
	}
	latest = rep->heartbeat->policy_version;
	snprintf(latest_hash, sizeof(latest_hash), "%s",
	    rep->heartbeat->policy_hash);
	rewind = rep->heartbeat->events_rewind;
	stored = rep->heartbeat->events_stored_seq;
	/* Commands, hop shares and pauses, shadow peer, quota grants: all
	 * the loop's (control.c). */
	if ((m = calloc(1, sizeof(*m))) == NULL)
		sluice__node_reply__free_unpacked(rep, NULL);
	else {
		m->seq = r->seq;
		m->reply = rep;
		uplink_post(u, m);
	}
	/* The controller lost events we had reported (a database failover):
	 * rewind the journal here, before this thread reports events again
	 * (done on the loop, an ack of a batch sent before the rewind could
	 * mark the rewound events acknowledged unsent). */
	if (rewind)
		(void)uplink_rewind(u, stored);
	/* Fetch only on a change of number or content (a database that lost
	 * a version may reuse its number; "" from an older controller); the
	 * controller's version 0 means "no policy yet" and the empty policy
	 * is what we already run.  Not again for a snapshot found invalid. */
	if (latest == 0)
		return;
	if (latest == r->running_version &&
	    (latest_hash[0] == '\0' ||
	        strcmp(latest_hash, r->running_hash) == 0))
		return;
	if (latest == u->failed_version &&
	    strcmp(latest_hash, u->failed_hash) == 0)
		return;
	if (latest == r->running_version)
		log_warnx("node %s: policy version %" PRIu64
		          " here has content "
		          "%.12s, the controller's %.12s: fetching it",
		    u->name, r->running_version,
		    r->running_hash[0] ? r->running_hash : "unknown",
		    latest_hash);
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

	if (u->journal == NULL)
		return;
	while (!u->stop && (n = journal_pending(
	                        u->journal, UPLINK_EVENT_BATCH, &evs)) > 0) {
		uplink_fill_auth(u, &a);
		journal_window(
		    u->journal, &re.events_acked_seq, &re.events_retained_from);
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
			journal_ack(u->journal, rep->report_events->acked_seq);
		sluice__node_reply__free_unpacked(rep, NULL);
		if (n < UPLINK_EVENT_BATCH)
			return;
	}
}

/* Between heartbeats, events go out every events_ms: the controller and
 * PostgreSQL store a fleet's events in small steady batches instead of
 * one burst per heartbeat (which took a core for ~100 ms a second at
 * 1 500 msg/s and showed as the node's accept-latency p99), and a trace
 * is current within events_ms.  Only while the controller answers: a
 * down one is retried by the heartbeat alone. */
static void
uplink_events_next(const struct uplink *u, struct timespec *next)
{
	clock_gettime(CLOCK_MONOTONIC, next);
	next->tv_nsec += (long)(u->events_ms % 1000) * 1000000;
	next->tv_sec += u->events_ms / 1000 + next->tv_nsec / 1000000000;
	next->tv_nsec %= 1000000000;
}

static bool
uplink_events_due(const struct uplink *u, struct timespec *next)
{
	if (u->events_ms <= 0 || !u->hello_done || !u->reachable ||
	    atomic_load(&u->refused))
		return false;
	if (next->tv_sec == 0 && next->tv_nsec == 0)
		uplink_events_next(u, next);
	return true;
}

static void *
uplink_main(void *arg)
{
	struct uplink *u = arg;
	struct uplink_report *r;
	struct timespec next = {0, 0};
	bool tick;

	pthread_setname_np(pthread_self(), "uplink");
	for (;;) {
		pthread_mutex_lock(&u->mu);
		tick = false;
		while (!u->stop && u->report == NULL && !tick) {
			if (!uplink_events_due(u, &next))
				pthread_cond_wait(&u->cv, &u->mu);
			else if (pthread_cond_timedwait(
			             &u->cv, &u->mu, &next) == ETIMEDOUT)
				tick = true;
		}
		r = u->report;
		u->report = NULL;
		if (u->stop) {
			pthread_mutex_unlock(&u->mu);
			uplink_report_free(r);
			break;
		}
		pthread_mutex_unlock(&u->mu);
		if (r == NULL) { /* the events tick */
			if (journal_unacked(u->journal) > 0) {
				u->cur = &u->last;
				uplink_report_events(u);
				u->cur = NULL;
			}
			uplink_events_next(u, &next);
			continue;
		}
		/* One round per report: the loop's timer is the cadence. */
		u->cur = r;
		u->last.running_version = r->running_version;
		u->last.from_cache = r->from_cache;
		if (!u->hello_done)
			uplink_hello(u);
		if (u->hello_done && !atomic_load(&u->refused)) {
			uplink_heartbeat(u, r);
			uplink_report_events(u);
		}
		u->cur = NULL;
		uplink_report_free(r);
		if (atomic_load(&u->refused))
			break;
	}
	return NULL;
}

void
uplink_report_free(struct uplink_report *r)
{
	if (r == NULL)
		return;
	free(r->hb);
	free(r);
}

void
uplink_send(struct uplink *u, struct uplink_report *r)
{
	struct uplink_report *old;

	pthread_mutex_lock(&u->mu);
	old = u->report;
	u->report = r;
	pthread_cond_signal(&u->cv);
	pthread_mutex_unlock(&u->mu);
	uplink_report_free(old);
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
uplink_start(const struct uplink_conf *c, char *err, size_t errlen)
{
	const char *urls[UPLINK_MAX_CONTROLLERS], *v;
	struct rpc_tls tls;
	struct uplink *u;
	pthread_condattr_t ca;
	size_t nurls = 0;
	int timeout, race;
	int64_t ev_ms;

	memset(&tls, 0, sizeof(tls));
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->journal = c->journal;
	u->mailbox = c->mailbox;
	u->hooks = c->hooks;
	u->reachable = true;
	pthread_mutex_init(&u->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(u->cache_path, sizeof(u->cache_path), "%s/policy.cache",
	    c->spool_dir);
	snprintf(u->spool_dir, sizeof(u->spool_dir), "%s", c->spool_dir);
	snprintf(u->name, sizeof(u->name), "%s", c->name);
	snprintf(u->shadow_address, sizeof(u->shadow_address), "%s",
	    c->shadow_address != NULL ? c->shadow_address : "");
	if ((v = config_get(c->conf, "token")) == NULL || *v == '\0') {
		snprintf(err, errlen,
		    "no 'token' in the config: run "
		    "'sluicectl node add %s' on a controller",
		    c->name);
		goto fail;
	}
	snprintf(u->token, sizeof(u->token), "%s", v);
	if (config_get_int(
	        c->conf, "event_report_ms", 100, &ev_ms, err, errlen) == -1)
		goto fail;
	if (ev_ms < 0 || ev_ms > 600000) {
		snprintf(err, errlen,
		    "event_report_ms must be 0 (with heartbeats only) or "
		    "1..600000");
		goto fail;
	}
	u->events_ms = (int)ev_ms;
	/* Shown in `sluicectl node list`: the configured address, else the
	 * first SMTP listener, else the host name. */
	if ((v = config_get(c->conf, "address")) != NULL)
		snprintf(u->address, sizeof(u->address), "%s", v);
	else if ((v = config_get_nth(c->conf, "listen", 0)) != NULL)
		snprintf(u->address, sizeof(u->address), "%.*s",
		    (int)strcspn(v, " \t"), v);
	else
		snprintf(u->address, sizeof(u->address), "%s", c->hostname);
	while (nurls < UPLINK_MAX_CONTROLLERS &&
	       (urls[nurls] = config_get_nth(c->conf, "controller", nurls)) !=
	           NULL)
		nurls++;
	if (nurls == 0) {
		snprintf(err, errlen, "no 'controller' endpoint in the config");
		goto fail;
	}
	timeout = c->heartbeat_ms * 2 < 3000 ? 3000 : c->heartbeat_ms * 2;
	uplink_tls(c->conf, &tls);
	if ((u->rpc = rpc_client_open_tls(
	         urls, nurls, timeout, &tls, err, errlen)) == NULL)
		goto fail;
	/* Every node request is safe to handle twice (Hello, Heartbeat,
	 * GetPolicy; events are stored idempotently), so a controller that
	 * is silent for a quarter heartbeat (at most 250 ms; a healthy one
	 * answers in milliseconds) is raced by the next one: a hung
	 * controller costs one heartbeat 250 ms, not the fleet's health. */
	race = c->heartbeat_ms / 4;
	rpc_client_set_race(u->rpc, race > UPLINK_RACE_MS ? UPLINK_RACE_MS
	                            : race < 50           ? 50
	                                                  : race);
	if (pthread_create(&u->thread, NULL, uplink_main, u) != 0) {
		snprintf(err, errlen, "cannot start uplink thread");
		goto fail;
	}
	u->started = true;
	return u;
fail:
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
	uplink_report_free(u->report);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u);
}

int
uplink_refused(const struct uplink *u)
{
	return u != NULL && atomic_load(&u->refused);
}
