/* shadow.c - shadow redundancy, the primary side (shadow.h,
 * docs/redundancy.md): configuration, the links to the holders of our
 * copies, copies on their way, and batched releases.
 *
 * A link is one connection (TLS, or TCP on loopback) to one holder.
 * Copies are pipelined on it: each ShadowCopy frame is written as soon as
 * its message is in our own spool, and the holder answers each with a
 * ShadowAck once its group commit made the copy durable; a copy that is
 * not answered within the policy's peer timeout, or whose link breaks,
 * fails at once to the session, which applies the no_peer mode.  A link
 * that failed is not dialled again for a second, so a dead peer costs
 * no waiting.  Loop thread only, except shadow_post/shadow_metrics. */
#include "shadow_int.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include "config.h"
#include "delivery.h"
#include "limit_table.h"
#include "log.h"
#include "node.h"
#include "policy.h"
#include "shadow_tls.h"
#include "smtp_session.h"
#include "spool.h"

#define SHADOW_RETRY_MS    1000 /* a failed link is not dialled sooner */
#define SHADOW_RELEASE_MS  50   /* releases wait this long to batch */
#define SHADOW_RELEASE_MAX 1000 /* queue ids per ShadowRelease */
#define SHADOW_WHERE_PEER  ((void *)(uintptr_t)(SHADOW_LINKS_MAX + 1))
#define SHADOW_READ_CHUNK  65536

const char *const shadow_config_keys[] = {"shadow_listen", "shadow_address",
    "shadow_ca", "shadow_cert", "shadow_key", "shadow_peer", NULL};

struct shadow_pending {
	TAILQ_ENTRY(shadow_pending) entry;
	struct shadow_link *l;
	uint64_t seq;
	char qid[SPOOL_QID_MAX];
	shadow_done_cb cb;
	shadow_handoff_cb hcb; /* set: a handoff, not a shadow copy */
	void *arg;
	uint64_t cookie;
	struct event *timer;
	int timeout_ms;
	bool early;         /* sent before our own commit finished */
	bool release_after; /* the message left the queue meanwhile */
};

/* A ShadowRelease sent and not yet acknowledged: sent again after a
 * reconnection. */
struct shadow_rel_batch {
	TAILQ_ENTRY(shadow_rel_batch) entry;
	uint64_t seq;
	char **ids;
	size_t n;
};

struct shadow_link {
	struct shadow *sh;
	int slot;
	char addr[256];
	struct bufferevent *bev; /* NULL: down */
	bool up;                 /* connected */
	bool warned;             /* its failure was logged */
	uint64_t seq;
	int64_t retry_at_ms;
	TAILQ_HEAD(, shadow_pending) pending;
	TAILQ_HEAD(, shadow_rel_batch) sent;
	char **rel; /* to send */
	size_t nrel, caprel;
	uint64_t held; /* copies it acknowledged, not released yet */
	char why[200]; /* its last failure, for the degraded mode's log */
};

static void shadow_link_on_read(struct bufferevent *, void *);
static bool shadow_loopback(const char *);
static void shadow_link_on_event(struct bufferevent *, short, void *);

static int64_t
shadow_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ links */

static void
shadow_degraded_set(struct shadow *sh, const char *why)
{
	snprintf(sh->degraded, sizeof(sh->degraded), "%s", why);
}

/* A handoff's outcome: to the delivery engine.  An ok without a queue
 * id comes from a holder that does not know handoffs (an older version):
 * it kept a shadow copy, released with the message, and the handoff
 * failed. */
static void
shadow_handoff_done(
    struct shadow_pending *p, bool ok, const char *why, const char *peer_qid)
{
	struct shadow_link *l = p->l;
	struct shadow *sh = l->sh;
	char msg[400];

	if (ok && peer_qid[0] == '\0') {
		if (shadow_map_put(&sh->where, p->qid,
		        (void *)(uintptr_t)(l->slot + 1), NULL) == 0)
			l->held++;
		snprintf(msg, sizeof(msg),
		    "shadow peer %s does not take handoffs (an older version)",
		    l->addr);
		ok = false;
		why = msg;
	}
	p->hcb(p->arg, p->cookie, ok, peer_qid, why);
	free(p);
}

/* The outcome of one copy: off the link, out of the gate, to the
 * session, then due for delivery (unless the session withdrew it). */
static void
shadow_pending_done(
    struct shadow_pending *p, bool ok, const char *why, const char *peer_qid)
{
	struct shadow_link *l = p->l;
	struct shadow *sh = l->sh;
	struct spool_info si;
	char qid[SPOOL_QID_MAX];
	bool early, release;

	TAILQ_REMOVE(&l->pending, p, entry);
	event_free(p->timer);
	if (p->hcb != NULL) {
		shadow_handoff_done(p, ok, why, peer_qid);
		return;
	}
	shadow_map_del(&sh->gated, p->qid);
	snprintf(qid, sizeof(qid), "%s", p->qid);
	/* A copy the peer may have (acknowledged, answered late, or cut
	 * off after its commit) is released with the message. */
	if (shadow_map_put(
	        &sh->where, qid, (void *)(uintptr_t)(l->slot + 1), NULL) == 0)
		l->held++;
	if (ok) {
		atomic_fetch_add(&sh->copied, 1);
		if (sh->degraded[0] != '\0') /* loop-side read is ours */
			shadow_degraded_set(sh, "");
	}
	early = p->early;
	release = p->release_after;
	p->cb(p->arg, p->cookie, qid, ok, why);
	free(p);
	/* removed meanwhile (operator delete, defer mode, a failed commit):
	 * release now; an early copy whose message is not committed yet is
	 * left to the session, which releases it if the commit fails */
	if (release)
		shadow_on_removed(sh, qid);
	else if (spool_lookup(sh->n->spool, qid, &si) == 0)
		delivery_ungate(sh->n->delivery, qid);
	else if (!early)
		shadow_on_removed(sh, qid);
}

static void
shadow_pending_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct shadow_pending *p = arg;
	char why[400];

	(void)fd;
	(void)what;
	snprintf(why, sizeof(why), "shadow peer %s did not answer within %d ms",
	    p->l->addr, p->timeout_ms);
	shadow_pending_done(p, false, why, "");
}

static void
shadow_link_fail(struct shadow_link *l, const char *why)
{
	struct shadow_pending *p;
	struct shadow_rel_batch *b;
	char msg[300];

	if (!l->warned)
		log_warnx(
		    "node %s: shadow peer %s: %s", l->sh->name, l->addr, why);
	l->warned = true;
	snprintf(l->why, sizeof(l->why), "%s", why);
	if (l->bev != NULL)
		bufferevent_free(l->bev);
	l->bev = NULL;
	l->up = false;
	l->retry_at_ms = shadow_now_ms() + SHADOW_RETRY_MS;
	snprintf(msg, sizeof(msg), "shadow peer %s: %s", l->addr, why);
	while ((p = TAILQ_FIRST(&l->pending)) != NULL)
		shadow_pending_done(p, false, msg, "");
	/* unacknowledged releases go out again on the next connection */
	while ((b = TAILQ_FIRST(&l->sent)) != NULL) {
		size_t i;

		TAILQ_REMOVE(&l->sent, b, entry);
		for (i = 0; i < b->n; i++) {
			char **nr;

			if (l->nrel == l->caprel) {
				size_t cap = l->caprel ? l->caprel * 2 : 64;

				if ((nr = realloc(l->rel, cap * sizeof(*nr))) ==
				    NULL) {
					free(b->ids[i]);
					continue;
				}
				l->rel = nr;
				l->caprel = cap;
			}
			l->rel[l->nrel++] = b->ids[i];
		}
		free(b->ids);
		free(b);
	}
}

static int
shadow_link_connect(struct shadow_link *l)
{
	struct shadow *sh = l->sh;
	Sluice__ShadowFrame f = SLUICE__SHADOW_FRAME__INIT;
	Sluice__ShadowHello h = SLUICE__SHADOW_HELLO__INIT;
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct ssl_st *ssl;

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(
	        l->addr, (struct sockaddr *)&ss, &sslen) == -1) {
		shadow_link_fail(l, "not a host:port address");
		return -1;
	}
	if (sh->cli_ctx != NULL) {
		if ((ssl = shadow_tls_ssl(sh->cli_ctx)) == NULL) {
			shadow_link_fail(l, "TLS: out of memory");
			return -1;
		}
		l->bev = bufferevent_openssl_socket_new(sh->base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	} else
		l->bev = bufferevent_socket_new(sh->base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (l->bev == NULL) {
		shadow_link_fail(l, "out of memory");
		return -1;
	}
	bufferevent_setcb(
	    l->bev, shadow_link_on_read, NULL, shadow_link_on_event, l);
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(l->bev, (struct sockaddr *)&ss, sslen) ==
	    -1) {
		shadow_link_fail(l, strerror(errno));
		return -1;
	}
	h.node = sh->name;
	h.software_version = (char *)(uintptr_t)SLUICE_VERSION;
	f.body_case = SLUICE__SHADOW_FRAME__BODY_HELLO;
	f.hello = &h;
	if (shadow_frame_add(bufferevent_get_output(l->bev), &f.base) == -1) {
		shadow_link_fail(l, "out of memory");
		return -1;
	}
	l->seq = 0;
	return 0;
}

static void
shadow_link_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct shadow_link *l = arg;
	char cn[128], why[256], msg[400];
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof(one));
		l->up = true;
		if (l->warned)
			log_info("node %s: shadow peer %s reachable again",
			    l->sh->name, l->addr);
		l->warned = false;
		return;
	}
	if (l->sh->cli_ctx != NULL)
		shadow_tls_describe(bev, cn, sizeof(cn), why, sizeof(why));
	else
		why[0] = '\0';
	snprintf(msg, sizeof(msg), "%s%s%s",
	    (what & BEV_EVENT_EOF)     ? "connection closed by the peer"
	    : (what & BEV_EVENT_ERROR) ? "connection failed"
	                               : "connection lost",
	    why[0] ? ": " : "", why);
	if ((what & BEV_EVENT_ERROR) && why[0] == '\0' && errno != 0) {
		snprintf(msg, sizeof(msg), "connection failed: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
	shadow_link_fail(l, msg);
}

static bool
shadow_link_ack(struct shadow_link *l, const Sluice__ShadowAck *a)
{
	struct shadow_pending *p;
	struct shadow_rel_batch *b;
	char why[600];
	size_t i;

	TAILQ_FOREACH(p, &l->pending, entry)
	if (p->seq == a->seq) {
		snprintf(why, sizeof(why),
		    "shadow peer %s refused the copy: %s", l->addr,
		    a->error[0] ? a->error : "no reason given");
		shadow_pending_done(p, a->ok, a->ok ? "" : why, a->queue_id);
		return true;
	}
	TAILQ_FOREACH(b, &l->sent, entry)
	if (b->seq == a->seq) {
		TAILQ_REMOVE(&l->sent, b, entry);
		atomic_fetch_sub(&l->sh->pending_release, b->n);
		for (i = 0; i < b->n; i++)
			free(b->ids[i]);
		free(b->ids);
		free(b);
		return true;
	}
	return false; /* a copy that timed out: answered late */
}

static void
shadow_link_on_read(struct bufferevent *bev, void *arg)
{
	struct shadow_link *l = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	Sluice__ShadowAck *a;
	const uint8_t *p;
	size_t len;
	int rv;

	while ((rv = shadow_frame_peek(in, &p, &len)) == 1) {
		a = sluice__shadow_ack__unpack(NULL, len, p);
		evbuffer_drain(in, 4 + len);
		if (a == NULL) {
			shadow_link_fail(l, "undecodable answer");
			return;
		}
		shadow_link_ack(l, a);
		sluice__shadow_ack__free_unpacked(a, NULL);
		if (l->bev == NULL)
			return; /* failed inside */
	}
	if (rv == -1)
		shadow_link_fail(l, "answer larger than any frame");
}

static void
shadow_link_free(struct shadow_link *l)
{
	struct shadow_pending *p;
	struct shadow_rel_batch *b;
	size_t i;

	if (l == NULL)
		return;
	if (l->bev != NULL)
		bufferevent_free(l->bev);
	/* at close: sessions are gone, nobody waits for the outcome */
	while ((p = TAILQ_FIRST(&l->pending)) != NULL) {
		TAILQ_REMOVE(&l->pending, p, entry);
		event_free(p->timer);
		free(p);
	}
	while ((b = TAILQ_FIRST(&l->sent)) != NULL) {
		TAILQ_REMOVE(&l->sent, b, entry);
		for (i = 0; i < b->n; i++)
			free(b->ids[i]);
		free(b->ids);
		free(b);
	}
	for (i = 0; i < l->nrel; i++)
		free(l->rel[i]);
	free(l->rel);
	free(l);
}

static bool
shadow_link_idle(const struct shadow_link *l)
{
	return l->held == 0 && l->nrel == 0 && TAILQ_EMPTY(&l->pending) &&
	       TAILQ_EMPTY(&l->sent);
}

/* The link to addr, made if needed; NULL when every slot is busy. */
static struct shadow_link *
shadow_link_get(struct shadow *sh, const char *addr)
{
	struct shadow_link *l;
	int i, free_slot = -1;

	for (i = 0; i < SHADOW_LINKS_MAX; i++) {
		if (sh->links[i] != NULL &&
		    strcmp(sh->links[i]->addr, addr) == 0)
			return sh->links[i];
		if (free_slot == -1 &&
		    (sh->links[i] == NULL ||
		        (i != sh->cur && shadow_link_idle(sh->links[i]))))
			free_slot = i;
	}
	if (free_slot == -1 || (l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	shadow_link_free(sh->links[free_slot]);
	l->sh = sh;
	l->slot = free_slot;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	TAILQ_INIT(&l->pending);
	TAILQ_INIT(&l->sent);
	sh->links[free_slot] = l;
	return l;
}

/* ----------------------------------------------------------- copies */

/* A link with a connection, or one being made: 0; -1 while it waits out
 * its retry delay or cannot connect (l->why says why). */
static int
shadow_link_ready(struct shadow_link *l)
{
	if (l->bev != NULL)
		return 0;
	if (shadow_now_ms() < l->retry_at_ms)
		return -1;
	return shadow_link_connect(l);
}

/* The peer's link, dialled if it is down and may be tried; NULL with why
 * when no copy can be sent now. */
static struct shadow_link *
shadow_peer_link(struct shadow *sh, char *why, size_t whylen)
{
	struct shadow_link *l;

	if (sh == NULL || sh->cur < 0 || (l = sh->links[sh->cur]) == NULL) {
		snprintf(why, whylen,
		    "no shadow peer (the controller named "
		    "none: no other live node)");
		return NULL;
	}
	if (shadow_link_ready(l) == -1) {
		snprintf(why, whylen, "shadow peer %s (%s) unreachable: %s",
		    sh->peer, l->addr, l->why);
		return NULL;
	}
	return l;
}

/* One ShadowCopy on the peer's link, and its pending entry. */
static int
shadow_send(struct shadow *sh, struct shadow_link *l, const char *qid,
    const struct spool_envelope *env, const uint8_t *data, size_t len,
    int timeout_ms, shadow_done_cb cb, shadow_handoff_cb hcb, void *arg,
    uint64_t cookie, bool early, char *why, size_t whylen)
{
	Sluice__ShadowFrame f = SLUICE__SHADOW_FRAME__INIT;
	Sluice__ShadowCopy c = SLUICE__SHADOW_COPY__INIT;
	struct shadow_pending *p;
	struct timeval tv;

	if (len > SHADOW_DATA_MAX) {
		snprintf(why, whylen,
		    "message larger than a shadow copy "
		    "may be (64 MiB)");
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	c.seq = ++l->seq;
	c.queue_id = (char *)(uintptr_t)qid;
	c.sender = (char *)(uintptr_t)env->sender;
	c.recipients = (char **)(uintptr_t)env->rcpts;
	c.n_recipients = env->nrcpts;
	c.client = (char *)(uintptr_t)(env->client ? env->client : "");
	c.helo = (char *)(uintptr_t)(env->helo ? env->helo : "");
	c.auth_user = (char *)(uintptr_t)(env->auth_user ? env->auth_user : "");
	c.message_id =
	    (char *)(uintptr_t)(env->message_id ? env->message_id : "");
	c.received_at = env->received_at;
	c.flags = (env->smtputf8 ? 1U : 0) | (env->eightbit ? 2U : 0) |
	          (env->body8bit ? 4U : 0) | (env->hdr8bit ? 8U : 0) |
	          (env->dkim7 ? 16U : 0) | (env->hold ? 32U : 0);
	c.listener = (char *)(uintptr_t)(env->listener ? env->listener : "");
	c.dkim = (char *)(uintptr_t)(env->dkim ? env->dkim : "");
	c.data.data = (uint8_t *)(uintptr_t)data;
	c.data.len = len;
	c.handoff = hcb != NULL;
	f.body_case = SLUICE__SHADOW_FRAME__BODY_COPY;
	f.copy = &c;
	if (shadow_frame_add(bufferevent_get_output(l->bev), &f.base) == -1) {
		free(p);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	p->l = l;
	p->seq = c.seq;
	snprintf(p->qid, sizeof(p->qid), "%s", qid);
	p->cb = cb;
	p->hcb = hcb;
	p->arg = arg;
	p->cookie = cookie;
	p->timeout_ms = timeout_ms;
	p->early = early;
	/* a handoff is not gated: the delivery engine is driving it */
	if ((p->timer = evtimer_new(sh->base, shadow_pending_on_timeout, p)) ==
	        NULL ||
	    (hcb == NULL && shadow_map_put(&sh->gated, qid, p, NULL) == -1))
		fatalx("shadow: out of memory");
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
	TAILQ_INSERT_TAIL(&l->pending, p, entry);
	return 0;
}

int
shadow_copy_data(struct shadow *sh, const char *qid,
    const struct spool_envelope *env, const uint8_t *data, size_t len,
    int timeout_ms, shadow_done_cb cb, void *arg, uint64_t cookie, char *why,
    size_t whylen)
{
	struct shadow_link *l;

	if ((l = shadow_peer_link(sh, why, whylen)) == NULL)
		return -1;
	return shadow_send(sh, l, qid, env, data, len, timeout_ms, cb, NULL,
	    arg, cookie, true, why, whylen);
}

/* The queued message qid, read whole into *datap (malloc'd). */
static int
shadow_read_msg(struct shadow *sh, const char *qid, struct spool_info *si,
    uint8_t **datap, char *why, size_t whylen)
{
	uint8_t *data;
	uint64_t off;
	ssize_t r;

	if (spool_lookup(sh->n->spool, qid, si) == -1) {
		snprintf(why, whylen, "not queued");
		return -1;
	}
	if (si->size > SHADOW_DATA_MAX) {
		snprintf(why, whylen,
		    "message larger than a shadow copy "
		    "may be (64 MiB)");
		return -1;
	}
	if ((data = malloc(si->size ? si->size : 1)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (off = 0; off < si->size; off += (uint64_t)r)
		if ((r = spool_read(sh->n->spool, qid, off, data + off,
		         si->size - off)) <= 0) {
			free(data);
			snprintf(why, whylen, "cannot read the queued message");
			return -1;
		}
	*datap = data;
	return 0;
}

int
shadow_copy(struct shadow *sh, const char *qid, int timeout_ms,
    shadow_done_cb cb, void *arg, uint64_t cookie, char *why, size_t whylen)
{
	struct shadow_link *l;
	struct spool_info si;
	uint8_t *data;
	int rv;

	if ((l = shadow_peer_link(sh, why, whylen)) == NULL)
		return -1;
	if (shadow_read_msg(sh, qid, &si, &data, why, whylen) == -1)
		return -1;
	rv = shadow_send(sh, l, qid, &si.env, data, si.size, timeout_ms, cb,
	    NULL, arg, cookie, false, why, whylen);
	free(data);
	return rv;
}

/* ---------------------------------------------------------- handoffs */

int
shadow_handoff(struct shadow *sh, const char *addr, const char *qid,
    const char *const *rcpts, size_t nrcpts, int timeout_ms,
    shadow_handoff_cb cb, void *arg, uint64_t cookie, char *why, size_t whylen)
{
	struct spool_envelope env;
	struct shadow_link *l;
	struct spool_info si;
	uint8_t *data;
	int rv;

	if (sh == NULL) {
		snprintf(why, whylen, "no shadow channel on this node");
		return -1;
	}
	if ((l = shadow_link_get(sh, addr)) == NULL) {
		snprintf(why, whylen,
		    "shadow peer %s: every link is busy with "
		    "other peers",
		    addr);
		return -1;
	}
	if (shadow_link_ready(l) == -1) {
		snprintf(why, whylen, "shadow peer %s unreachable: %s", addr,
		    l->why);
		return -1;
	}
	if (shadow_read_msg(sh, qid, &si, &data, why, whylen) == -1)
		return -1;
	env = si.env;
	env.rcpts = rcpts;
	env.nrcpts = nrcpts;
	/* the user's hold flag was applied here at acceptance; a message
	 * that is delivered now was never held or has been released */
	env.hold = si.state == SPOOL_HELD;
	rv = shadow_send(sh, l, qid, &env, data, si.size, timeout_ms, NULL, cb,
	    arg, cookie, false, why, whylen);
	free(data);
	return rv;
}

bool
shadow_handoff_busy(struct shadow *sh, const char *qid)
{
	struct shadow_pending *p;
	int i;

	for (i = 0; sh != NULL && i < SHADOW_LINKS_MAX; i++) {
		if (sh->links[i] == NULL)
			continue;
		TAILQ_FOREACH(p, &sh->links[i]->pending, entry)
		if (p->hcb != NULL && strcmp(p->qid, qid) == 0)
			return true;
	}
	return false;
}

bool
shadow_can_dial(const struct shadow *sh, const char *addr)
{
	return sh != NULL &&
	       (sh->cli_ctx != NULL || sh->insecure || shadow_loopback(addr));
}

bool
shadow_gated(struct shadow *sh, const char *qid)
{
	return sh != NULL && sh->gated.n > 0 &&
	       shadow_map_get(&sh->gated, qid) != NULL;
}

void
shadow_note_unprotected(struct shadow *sh, const char *why)
{
	if (sh == NULL)
		return;
	atomic_fetch_add(&sh->unprotected, 1);
	if (strcmp(sh->degraded, why) != 0)
		shadow_degraded_set(sh, why);
}

void
shadow_note_refused(struct shadow *sh, const char *why)
{
	if (sh == NULL)
		return;
	atomic_fetch_add(&sh->refused, 1);
	if (strcmp(sh->degraded, why) != 0)
		shadow_degraded_set(sh, why);
}

/* --------------------------------------------------------- releases */

static void
shadow_release_flush(struct shadow *sh)
{
	Sluice__ShadowFrame f = SLUICE__SHADOW_FRAME__INIT;
	Sluice__ShadowRelease r = SLUICE__SHADOW_RELEASE__INIT;
	struct shadow_rel_batch *b;
	struct shadow_link *l;
	bool again = false;
	size_t n;
	int i;

	for (i = 0; i < SHADOW_LINKS_MAX; i++) {
		if ((l = sh->links[i]) == NULL || l->nrel == 0)
			continue;
		if (l->bev == NULL && (shadow_now_ms() < l->retry_at_ms ||
		                          shadow_link_connect(l) == -1)) {
			again = true; /* try again later */
			continue;
		}
		while (l->nrel > 0) {
			n = l->nrel < SHADOW_RELEASE_MAX ? l->nrel
			                                 : SHADOW_RELEASE_MAX;
			if ((b = calloc(1, sizeof(*b))) == NULL ||
			    (b->ids = malloc(n * sizeof(*b->ids))) == NULL) {
				free(b);
				again = true;
				break;
			}
			memcpy(
			    b->ids, l->rel + l->nrel - n, n * sizeof(*b->ids));
			b->n = n;
			b->seq = ++l->seq;
			r.seq = b->seq;
			r.queue_ids = b->ids;
			r.n_queue_ids = n;
			f.body_case = SLUICE__SHADOW_FRAME__BODY_RELEASE;
			f.release = &r;
			if (shadow_frame_add(bufferevent_get_output(l->bev),
			        &f.base) == -1) {
				free(b->ids);
				free(b);
				again = true;
				break;
			}
			l->nrel -= n;
			TAILQ_INSERT_TAIL(&l->sent, b, entry);
		}
	}
	if (again && !evtimer_pending(sh->ev_release, NULL)) {
		struct timeval tv = {0, SHADOW_RETRY_MS * 1000};

		evtimer_add(sh->ev_release, &tv);
	}
}

static void
shadow_on_release_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	shadow_release_flush(arg);
}

void
shadow_on_removed(struct shadow *sh, const char *qid)
{
	struct shadow_link *l;
	struct timeval tv = {0, SHADOW_RELEASE_MS * 1000};
	void *v;
	char **nr;
	int slot;

	struct shadow_pending *p;

	if (sh == NULL)
		return;
	/* its copy is on its way: released once the peer answers */
	if (sh->gated.n > 0 && (p = shadow_map_get(&sh->gated, qid)) != NULL) {
		p->release_after = true;
		return;
	}
	if (sh->where.n == 0 || (v = shadow_map_del(&sh->where, qid)) == NULL)
		return;
	slot = v == SHADOW_WHERE_PEER ? sh->cur : (int)(uintptr_t)v - 1;
	if (slot < 0 || (l = sh->links[slot]) == NULL)
		return;
	if (v != SHADOW_WHERE_PEER && l->held > 0)
		l->held--;
	if (l->nrel == l->caprel) {
		size_t cap = l->caprel ? l->caprel * 2 : 64;

		if ((nr = realloc(l->rel, cap * sizeof(*nr))) == NULL)
			return; /* the copy stays until the holder's expiry */
		l->rel = nr;
		l->caprel = cap;
	}
	if ((l->rel[l->nrel] = strdup(qid)) == NULL)
		return;
	l->nrel++;
	atomic_fetch_add(&sh->pending_release, 1);
	if (!evtimer_pending(sh->ev_release, NULL))
		evtimer_add(sh->ev_release, &tv);
}

/* ------------------------------------------------- the controller's word */

void
shadow_post(struct shadow *sh, const char *peer_name, const char *peer_address,
    char *const *promote, size_t n)
{
	char peer[128], addr[256];
	struct shadow_link *l;

	if (sh == NULL)
		return;
	snprintf(peer, sizeof(peer), "%s", peer_name);
	snprintf(addr, sizeof(addr), "%s", peer_address);
	/* never ourselves, whatever a confused controller says */
	if (sh->address[0] != '\0' && strcmp(addr, sh->address) == 0)
		addr[0] = '\0';
	/* a fixed peer in the config stands in when the controller names
	 * none (benchmarks, a fleet without a controller) */
	if (addr[0] == '\0' && sh->static_peer[0] != '\0') {
		snprintf(addr, sizeof(addr), "%s", sh->static_peer);
		snprintf(peer, sizeof(peer), "(shadow_peer)");
	}
	l = sh->cur >= 0 ? sh->links[sh->cur] : NULL;
	if (addr[0] == '\0') {
		if (sh->cur >= 0)
			log_warnx("node %s: no shadow peer any more (the "
			          "controller names none)",
			    sh->name);
		sh->cur = -1;
		sh->peer[0] = '\0';
	} else if (l == NULL || strcmp(l->addr, addr) != 0) {
		if ((l = shadow_link_get(sh, addr)) == NULL) {
			log_warnx("node %s: shadow peer %s: too many peers "
			          "still hold copies of ours; none for now",
			    sh->name, addr);
			sh->cur = -1;
		} else {
			sh->cur = l->slot;
			log_info("node %s: shadow peer is %s (%s)", sh->name,
			    peer, addr);
		}
		snprintf(sh->peer, sizeof(sh->peer), "%s", peer);
	}
	shadow_hold_promote(sh, promote, n);
	/* releases parked for the then unknown peer */
	shadow_release_flush(sh);
}

const char *
shadow_address(const struct shadow *sh)
{
	return sh != NULL ? sh->address : "";
}

void
shadow_metrics(
    struct shadow *sh, Sluice__QueueMetrics *m, char *degraded, size_t len)
{
	degraded[0] = '\0';
	if (sh == NULL)
		return;
	m->shadow_held = atomic_load(&sh->held_count);
	m->shadow_bytes = atomic_load(&sh->held_bytes);
	m->shadow_copied = atomic_load(&sh->copied);
	m->shadow_unprotected = atomic_load(&sh->unprotected);
	m->shadow_refused = atomic_load(&sh->refused);
	m->shadow_promoted = atomic_load(&sh->promoted);
	m->shadow_pending_release = atomic_load(&sh->pending_release);
	snprintf(degraded, len, "%s", sh->degraded);
	m->shadow_degraded = degraded;
}

/* ----------------------------------------------------- open / close */

struct shadow_tls_files {
	const char *ca, *cert, *key;
	bool insecure;
};

static void
shadow_tls_files(const struct config *c, struct shadow_tls_files *t)
{
	const char *v;

	t->ca = config_get(c, "shadow_ca");
	t->cert = config_get(c, "shadow_cert");
	t->key = config_get(c, "shadow_key");
	if (t->ca == NULL)
		t->ca = config_get(c, "controller_ca");
	if (t->cert == NULL) {
		t->cert = config_get(c, "controller_cert_key");
		if (t->cert != NULL && t->key == NULL)
			t->key = t->cert;
		else if (t->cert == NULL)
			t->cert = config_get(c, "controller_cert");
	}
	if (t->key == NULL)
		t->key = config_get(c, "controller_key");
	t->insecure =
	    (v = config_get(c, "insecure")) != NULL && strcmp(v, "yes") == 0;
}

static bool
shadow_loopback(const char *addr)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) ==
	    -1)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >>
		           24) == 127;
	if (ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((struct sockaddr_in6 *)&ss)->sin6_addr);
	return false;
}

/* TLS needs all three files; without them only loopback (or insecure). */
static int
shadow_check(const struct config *c, struct shadow_tls_files *t, char *err,
    size_t errlen)
{
	const char *listen = config_get(c, "shadow_listen");
	const char *addr = config_get(c, "shadow_address"), *v;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	shadow_tls_files(c, t);
	if (listen != NULL && evutil_parse_sockaddr_port(
	                          listen, (struct sockaddr *)&ss, &len) == -1) {
		snprintf(
		    err, errlen, "shadow_listen '%s' is not host:port", listen);
		return -1;
	}
	len = sizeof(ss);
	if ((v = config_get(c, "shadow_peer")) != NULL &&
	    evutil_parse_sockaddr_port(v, (struct sockaddr *)&ss, &len) == -1) {
		snprintf(err, errlen, "shadow_peer '%s' is not host:port", v);
		return -1;
	}
	len = sizeof(ss);
	if (addr != NULL && listen == NULL) {
		snprintf(err, errlen, "shadow_address needs shadow_listen");
		return -1;
	}
	if (t->ca != NULL && t->cert != NULL && t->key != NULL)
		return 0;
	if (!t->insecure && ((listen != NULL && !shadow_loopback(listen)) ||
	                        (addr != NULL && !shadow_loopback(addr)) ||
	                        (v != NULL && !shadow_loopback(v)))) {
		snprintf(err, errlen,
		    "the shadow channel needs TLS off loopback (shadow_ca, "
		    "shadow_cert, shadow_key or the controller_* files), or "
		    "insecure = yes");
		return -1;
	}
	t->ca = t->cert = t->key = NULL;
	return 0;
}

int
shadow_check_config(const struct config *c, char *err, size_t errlen)
{
	struct shadow_tls_files t;
	struct ssl_ctx_st *ctx;

	if (shadow_check(c, &t, err, errlen) == -1)
		return -1;
	if (t.ca == NULL)
		return 0;
	if ((ctx = shadow_tls_ctx(true, t.ca, t.cert, t.key, err, errlen)) ==
	    NULL)
		return -1;
	shadow_tls_free(ctx);
	return 0;
}

/* Messages queued before this start may have copies on the peer that
 * held them then: their releases go to the peer of the moment. */
static int
shadow_seed_cb(const struct spool_info *si, void *arg)
{
	struct shadow *sh = arg;

	return shadow_map_put(
	    &sh->where, si->queue_id, SHADOW_WHERE_PEER, NULL);
}

struct shadow *
shadow_open(struct node *n, char *err, size_t errlen)
{
	struct shadow_tls_files t;
	struct shadow *sh;
	const char *listen, *addr;

	if (shadow_check(n->conf, &t, err, errlen) == -1)
		return NULL;
	if ((sh = calloc(1, sizeof(*sh))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sh->n = n;
	sh->base = n->base;
	sh->cur = -1;
	snprintf(sh->name, sizeof(sh->name), "%s", n->name);
	TAILQ_INIT(&sh->conns);
	TAILQ_INIT(&sh->waits);
	if (shadow_map_init(&sh->gated) == -1 ||
	    shadow_map_init(&sh->where) == -1 ||
	    shadow_map_init(&sh->held) == -1 ||
	    (sh->ev_release = evtimer_new(
	         n->base, shadow_on_release_timer, sh)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	sh->insecure = t.insecure;
	if (t.ca != NULL && ((sh->srv_ctx = shadow_tls_ctx(true, t.ca, t.cert,
	                          t.key, err, errlen)) == NULL ||
	                        (sh->cli_ctx = shadow_tls_ctx(false, t.ca,
	                             t.cert, t.key, err, errlen)) == NULL))
		goto fail;
	listen = config_get(n->conf, "shadow_listen");
	addr = config_get(n->conf, "shadow_address");
	if (listen != NULL) {
		snprintf(sh->address, sizeof(sh->address), "%s",
		    addr != NULL ? addr : listen);
		if (shadow_hold_open(sh, listen, err, errlen) == -1)
			goto fail;
	}
	if ((addr = config_get(n->conf, "shadow_peer")) != NULL) {
		struct shadow_link *l;

		snprintf(sh->static_peer, sizeof(sh->static_peer), "%s", addr);
		if ((l = shadow_link_get(sh, addr)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		sh->cur = l->slot;
		snprintf(sh->peer, sizeof(sh->peer), "(shadow_peer)");
	}
	if (spool_foreach(n->spool, shadow_seed_cb, sh) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return sh;
fail:
	shadow_close(sh);
	return NULL;
}

void
shadow_close(struct shadow *sh)
{
	size_t i;

	if (sh == NULL)
		return;
	shadow_hold_close(sh);
	for (i = 0; i < SHADOW_LINKS_MAX; i++)
		shadow_link_free(sh->links[i]);
	if (sh->ev_release != NULL)
		event_free(sh->ev_release);
	shadow_map_fini(&sh->gated, NULL);
	shadow_map_fini(&sh->where, NULL);
	shadow_map_fini(&sh->held, free);
	if (sh->srv_ctx != NULL)
		shadow_tls_free(sh->srv_ctx);
	if (sh->cli_ctx != NULL)
		shadow_tls_free(sh->cli_ctx);
	free(sh);
}
