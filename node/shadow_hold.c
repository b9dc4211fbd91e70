/* shadow_hold.c - shadow redundancy, the holder side (shadow.h,
 * docs/redundancy.md): the node-to-node listener, the shadow spool
 * (<spool>/shadow, a second struct spool: the same segments, group commit
 * and recovery as the queue, but nothing delivers from it), releases, and
 * the promotion of a lost node's copies into our own queue.
 *
 * Each copy becomes one message of the shadow spool whose envelope names
 * its origin ("NODE QUEUEID"); the ShadowAck goes back from the commit
 * callback, so it says "durable here".  Acks of one batch leave in one
 * write (the loop flushes the connection's output once per turn).  A
 * connection that sends garbage is closed and logged; the copies it had
 * in flight are still kept (its primary will not count them).
 *
 * A copy marked handoff (drain --handoff, docs/operations.md) is not a
 * shadow: it goes straight into our own queue, with its whole envelope
 * and a received event that names its origin, and the ack (after that
 * commit) carries its queue id here.  Loop thread only. */
#include "shadow_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "journal.h"
#include "log.h"
#include "node.h"
#include "policy.h"
#include "policy_check.h"
#include "shadow_tls.h"
#include "spool.h"

#define SHADOW_CONNS_MAX   256
#define SHADOW_PROMOTE_MAX 64 /* promotions in flight */
#define SHADOW_KEY_MAX     (128 + SPOOL_QID_MAX + 2)

struct shadow_conn {
	TAILQ_ENTRY(shadow_conn) entry;
	struct shadow *sh;
	uint32_t id;
	struct bufferevent *bev;
	char origin[128]; /* "" before its hello */
	char peer[80];
};

/* A copy being committed to the shadow spool, or a promoted one being
 * committed to our queue.  Owned by the list; the spool's cookie is its
 * address (freed only in the callback, or at close). */
struct shadow_hold_wait {
	TAILQ_ENTRY(shadow_hold_wait) entry;
	uint32_t conn;
	uint64_t seq;
	uint64_t size;
	bool promote;
	bool handoff;             /* into our queue, acked with its id */
	char key[SHADOW_KEY_MAX]; /* "NODE QUEUEID" */
	char sqid[SPOOL_QID_MAX]; /* promote: the shadow's id here */
};

/* A queue id as spool.c makes them: 1 to 16 uppercase hex digits. */
static bool
shadow_qid_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < SPOOL_QID_MAX && strspn(s, "0123456789ABCDEF") == n;
}

static void
shadow_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else
		snprintf(buf, len, "?");
}

static struct shadow_conn *
shadow_conn_find(struct shadow *sh, uint32_t id)
{
	struct shadow_conn *c;

	TAILQ_FOREACH(c, &sh->conns, entry)
	if (c->id == id)
		return c;
	return NULL;
}

static void
shadow_conn_free(struct shadow_conn *c)
{
	TAILQ_REMOVE(&c->sh->conns, c, entry);
	bufferevent_free(c->bev);
	free(c);
}

static void
shadow_conn_drop(struct shadow_conn *c, const char *why)
{
	log_warnx("node %s: shadow connection from %s%s%s closed: %s",
	    c->sh->name, c->peer, c->origin[0] ? " node " : "", c->origin, why);
	shadow_conn_free(c);
}

static void
shadow_ack_id(struct shadow_conn *c, uint64_t seq, bool ok, const char *err,
    const char *qid)
{
	Sluice__ShadowAck a = SLUICE__SHADOW_ACK__INIT;

	a.seq = seq;
	a.ok = ok;
	a.error = (char *)(uintptr_t)(err != NULL ? err : "");
	a.queue_id = (char *)(uintptr_t)(qid != NULL ? qid : "");
	(void)shadow_frame_add(bufferevent_get_output(c->bev), &a.base);
}

static void
shadow_ack(struct shadow_conn *c, uint64_t seq, bool ok, const char *err)
{
	shadow_ack_id(c, seq, ok, err, NULL);
}

/* Our shadow copy "NODE QUEUEID" goes (released, or its message is in
 * our queue now). */
static void
shadow_hold_drop(struct shadow *sh, const char *key)
{
	struct spool_info si;
	char *sq;

	if ((sq = shadow_map_del(&sh->held, key)) == NULL)
		return; /* never here, or released before */
	if (spool_lookup(sh->sp, sq, &si) == 0) {
		atomic_fetch_sub(&sh->held_bytes, si.size);
		(void)spool_remove(sh->sp, sq, NULL, 0);
	}
	atomic_fetch_sub(&sh->held_count, 1);
	free(sq);
}

static void
shadow_hold_on_commit(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	struct shadow_hold_wait *w = (void *)(uintptr_t)cookie;
	struct shadow *sh = arg;
	struct shadow_conn *c;
	void *old = NULL;
	char *id;

	TAILQ_REMOVE(&sh->waits, w, entry);
	if (ok) {
		if ((id = strdup(qid)) == NULL ||
		    shadow_map_put(&sh->held, w->key, id, &old) == -1)
			fatalx("shadow: out of memory");
		if (old != NULL) {
			/* the same message again (sent before a reconnection):
			 * keep the newer copy */
			(void)spool_remove(sh->sp, old, NULL, 0);
			free(old);
		} else {
			atomic_fetch_add(&sh->held_count, 1);
			atomic_fetch_add(&sh->held_bytes, w->size);
		}
	} else
		log_warnx("node %s: shadow copy %s not kept: %s", sh->name,
		    w->key,
		    spool_last_errno(sh->sp) == ENOSPC ? "shadow spool full"
		                                       : "shadow spool error");
	if ((c = shadow_conn_find(sh, w->conn)) != NULL)
		shadow_ack(c, w->seq, ok,
		    ok ? ""
		    : spool_last_errno(sh->sp) == ENOSPC
		        ? "shadow spool full"
		        : "shadow spool error");
	free(w);
}

/* ---------------------------------------------------------- handoffs */

/* A handoff taken: remembered (the last SHADOW_TAKEN_MAX) so that the
 * same one sent again, its ack lost, is answered and not queued twice. */
static void
shadow_taken_add(struct shadow *sh, const char *key, const char *qid)
{
	char *k, *id;
	void *old = NULL;

	if (sh->taken_ring == NULL && (sh->taken_ring = calloc(SHADOW_TAKEN_MAX,
	                                   sizeof(*sh->taken_ring))) == NULL)
		return;
	if ((k = strdup(key)) == NULL || (id = strdup(qid)) == NULL) {
		free(k);
		return;
	}
	if (sh->taken_ring[sh->taken_next] != NULL) {
		free(
		    shadow_map_del(&sh->taken, sh->taken_ring[sh->taken_next]));
		free(sh->taken_ring[sh->taken_next]);
	}
	if (shadow_map_put(&sh->taken, key, id, &old) == -1) {
		free(id);
		free(k);
		sh->taken_ring[sh->taken_next] = NULL;
		return;
	}
	free(old);
	sh->taken_ring[sh->taken_next] = k;
	sh->taken_next = (sh->taken_next + 1) % SHADOW_TAKEN_MAX;
}

static void
shadow_handoff_on_commit(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	struct shadow_hold_wait *w = (void *)(uintptr_t)cookie;
	struct shadow *sh = arg;
	struct shadow_conn *c;
	const char *err = NULL;

	TAILQ_REMOVE(&sh->waits, w, entry);
	if (ok) {
		shadow_taken_add(sh, w->key, qid);
		/* the message is ours now: a shadow copy of it is not */
		shadow_hold_drop(sh, w->key);
		log_info("%s shadow handoff taken from %s", qid, w->key);
	} else {
		err = spool_last_errno(sh->n->spool) == ENOSPC ? "queue full"
		                                               : "queue error";
		log_warnx(
		    "node %s: handoff %s not taken: %s", sh->name, w->key, err);
	}
	if ((c = shadow_conn_find(sh, w->conn)) != NULL)
		shadow_ack_id(c, w->seq, ok, err, ok ? qid : NULL);
	free(w);
}

/* The envelope a copy carries (its flags as shadow.c packs them: bit 0
 * SMTPUTF8, 1 8BITMIME, 2 8-bit body, 3 8-bit header, 4 DKIM over the
 * 7-bit form, 5 held). */
static void
shadow_copy_envelope(const Sluice__ShadowCopy *cp, struct spool_envelope *env)
{
	memset(env, 0, sizeof(*env));
	env->sender = cp->sender;
	env->rcpts = (const char *const *)cp->recipients;
	env->nrcpts = cp->n_recipients;
	env->client = cp->client;
	env->helo = cp->helo;
	env->auth_user = cp->auth_user;
	env->message_id = cp->message_id;
	env->received_at = cp->received_at;
	env->smtputf8 = (cp->flags & 1) != 0;
	env->eightbit = (cp->flags & 2) != 0;
	env->body8bit = (cp->flags & 4) != 0;
	env->hdr8bit = (cp->flags & 8) != 0;
	env->dkim7 = (cp->flags & 16) != 0;
	env->hold = (cp->flags & 32) != 0;
	env->listener = cp->listener;
	env->dkim = cp->dkim;
}

/* A wait for cp's data written into spool sp under key (what says which
 * spool in the refusal: "queue" or "shadow spool"); NULL, with the copy
 * refused, when that fails. */
static struct shadow_hold_wait *
shadow_wait_write(struct shadow_conn *c, const Sluice__ShadowCopy *cp,
    struct spool *sp, const char *what, const char *key,
    struct spool_msg **msgp)
{
	struct shadow_hold_wait *w;
	struct spool_msg *msg;
	char why[64];

	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (msg = spool_msg_new(sp)) == NULL) {
		free(w);
		snprintf(why, sizeof(why), "%s error", what);
		shadow_ack(c, cp->seq, false, why);
		return NULL;
	}
	if (cp->data.len > 0 &&
	    spool_msg_write(msg, cp->data.data, cp->data.len) == -1) {
		snprintf(why, sizeof(why), "%s %s", what,
		    errno == ENOSPC ? "full" : "error");
		shadow_ack(c, cp->seq, false, why);
		spool_msg_abort(msg);
		free(w);
		return NULL;
	}
	w->conn = c->id;
	w->seq = cp->seq;
	w->size = cp->data.len;
	snprintf(w->key, sizeof(w->key), "%s", key);
	*msgp = msg;
	return w;
}

/* The message itself (drain --handoff): into our queue, as accepted at
 * its node.  Its received event names the origin; its user's hold flag
 * comes along only if it is still held there. */
static void
shadow_hold_handoff(struct shadow_conn *c, const Sluice__ShadowCopy *cp)
{
	Sluice__Event ev = SLUICE__EVENT__INIT;
	struct shadow *sh = c->sh;
	struct spool_envelope env;
	struct shadow_hold_wait *w;
	struct spool_note *note = NULL;
	struct spool_msg *msg;
	char key[SHADOW_KEY_MAX], reply[300], kind[] = "received";
	const char *had;

	snprintf(key, sizeof(key), "%s %s", c->origin, cp->queue_id);
	if ((had = shadow_map_get(&sh->taken, key)) != NULL) {
		log_info(
		    "%s shadow handoff from %s again: taken before", had, key);
		shadow_ack_id(c, cp->seq, true, NULL, had);
		return;
	}
	TAILQ_FOREACH(w, &sh->waits, entry)
	if (w->handoff && strcmp(w->key, key) == 0) {
		shadow_ack(c, cp->seq, false, "being queued already");
		return;
	}
	if (cp->n_recipients == 0) {
		shadow_ack(c, cp->seq, false, "no recipient");
		return;
	}
	if ((w = shadow_wait_write(c, cp, sh->n->spool, "queue", key, &msg)) ==
	    NULL)
		return;
	w->handoff = true;
	shadow_copy_envelope(cp, &env);
	if (sh->n->journal != NULL) {
		snprintf(reply, sizeof(reply),
		    "handed off from %s (queue id %s there)", c->origin,
		    cp->queue_id);
		ev.kind = kind;
		ev.queue_id = (char *)(uintptr_t)spool_msg_id(msg);
		ev.message_id = cp->message_id;
		ev.client = cp->client;
		ev.auth_user = cp->auth_user;
		ev.sender = cp->sender;
		ev.recipients = cp->recipients;
		ev.n_recipients = cp->n_recipients;
		ev.size = cp->data.len;
		ev.reply = reply;
		ev.host = c->origin;
		note = journal_note_new(sh->n->journal, &ev);
	}
	TAILQ_INSERT_TAIL(&sh->waits, w, entry);
	spool_msg_commit_note(msg, &env, shadow_handoff_on_commit, sh,
	    (uint64_t)(uintptr_t)w, note);
}

/* ------------------------------------------------------------ copies */

static void
shadow_hold_copy(struct shadow_conn *c, const Sluice__ShadowCopy *cp)
{
	struct shadow *sh = c->sh;
	struct spool_envelope env;
	struct shadow_hold_wait *w;
	struct spool_msg *msg;
	char key[SHADOW_KEY_MAX];

	if (!shadow_qid_ok(cp->queue_id)) {
		shadow_ack(c, cp->seq, false, "bad queue id");
		return;
	}
	if (cp->handoff) {
		shadow_hold_handoff(c, cp);
		return;
	}
	snprintf(key, sizeof(key), "%s %s", c->origin, cp->queue_id);
	if ((w = shadow_wait_write(c, cp, sh->sp, "shadow spool", key, &msg)) ==
	    NULL)
		return;
	shadow_copy_envelope(cp, &env);
	env.origin = w->key;
	TAILQ_INSERT_TAIL(&sh->waits, w, entry);
	spool_msg_commit(
	    msg, &env, shadow_hold_on_commit, sh, (uint64_t)(uintptr_t)w);
}

static void
shadow_hold_release(struct shadow_conn *c, const Sluice__ShadowRelease *r)
{
	char key[SHADOW_KEY_MAX];
	size_t i;

	for (i = 0; i < r->n_queue_ids; i++) {
		snprintf(key, sizeof(key), "%s %s", c->origin, r->queue_ids[i]);
		shadow_hold_drop(c->sh, key);
	}
	shadow_ack(c, r->seq, true, NULL);
}

static void
shadow_conn_on_read(struct bufferevent *bev, void *arg)
{
	struct shadow_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	Sluice__ShadowFrame *f;
	const uint8_t *p;
	size_t len;
	int rv;

	while ((rv = shadow_frame_peek(in, &p, &len)) == 1) {
		f = sluice__shadow_frame__unpack(NULL, len, p);
		evbuffer_drain(in, 4 + len);
		if (f == NULL) {
			shadow_conn_drop(c, "undecodable frame");
			return;
		}
		switch (f->body_case) {
		case SLUICE__SHADOW_FRAME__BODY_HELLO:
			if (c->origin[0] != '\0')
				break; /* said once */
			if (policy_check_name(f->hello->node) == -1 ||
			    strcmp(f->hello->node, c->sh->name) == 0) {
				sluice__shadow_frame__free_unpacked(f, NULL);
				shadow_conn_drop(c, "hello without a valid "
				                    "node name (or ours)");
				return;
			}
			snprintf(
			    c->origin, sizeof(c->origin), "%s", f->hello->node);
			log_info("node %s: shadow connection from %s node %s",
			    c->sh->name, c->peer, c->origin);
			break;
		case SLUICE__SHADOW_FRAME__BODY_COPY:
		case SLUICE__SHADOW_FRAME__BODY_RELEASE:
			if (c->origin[0] == '\0') {
				sluice__shadow_frame__free_unpacked(f, NULL);
				shadow_conn_drop(c, "copy before hello");
				return;
			}
			if (f->body_case == SLUICE__SHADOW_FRAME__BODY_COPY)
				shadow_hold_copy(c, f->copy);
			else
				shadow_hold_release(c, f->release);
			break;
		default:
			sluice__shadow_frame__free_unpacked(f, NULL);
			shadow_conn_drop(c, "frame without a body");
			return;
		}
		sluice__shadow_frame__free_unpacked(f, NULL);
	}
	if (rv == -1)
		shadow_conn_drop(c, "frame larger than any copy");
}

static void
shadow_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct shadow_conn *c = arg;
	char cn[128], why[256];

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (c->sh->srv_ctx != NULL) {
		shadow_tls_describe(bev, cn, sizeof(cn), why, sizeof(why));
		if (why[0] != '\0') {
			shadow_conn_drop(c, why);
			return;
		}
	}
	if (c->origin[0] != '\0')
		log_info("node %s: shadow connection from node %s closed",
		    c->sh->name, c->origin);
	shadow_conn_free(c);
}

static void
shadow_on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct shadow *sh = arg;
	struct shadow_conn *c;
	struct ssl_st *ssl;
	size_t n = 0;
	int one = 1;

	(void)lev;
	(void)salen;
	TAILQ_FOREACH(c, &sh->conns, entry)
	n++;
	if (n >= SHADOW_CONNS_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("node %s: shadow connection refused: %zu open",
		    sh->name, n);
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	shadow_format_addr(sa, c->peer, sizeof(c->peer));
	c->sh = sh;
	c->id = ++sh->next_conn;
	if (sh->srv_ctx != NULL) {
		if ((ssl = shadow_tls_ssl(sh->srv_ctx)) != NULL)
			c->bev = bufferevent_openssl_socket_new(sh->base, fd,
			    ssl, BUFFEREVENT_SSL_ACCEPTING,
			    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	} else
		c->bev = bufferevent_socket_new(sh->base, fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&sh->conns, c, entry);
	bufferevent_setcb(
	    c->bev, shadow_conn_on_read, NULL, shadow_conn_on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SHADOW_FRAME_MAX + 4);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
shadow_on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct shadow *sh = arg;

	(void)lev;
	log_warn("node %s: shadow listener accept", sh->name);
}

/* -------------------------------------------------------- promotion */

static void shadow_on_promote(evutil_socket_t, short, void *);

static void
shadow_promote_on_commit(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	struct shadow_hold_wait *w = (void *)(uintptr_t)cookie;
	struct shadow *sh = arg;
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char node[128], oqid[SPOOL_QID_MAX], reply[300], kind[] = "promoted";
	struct spool_info si;
	const char *sp;
	char *sq;

	TAILQ_REMOVE(&sh->waits, w, entry);
	sh->promoting--;
	sp = strchr(w->key, ' ');
	snprintf(node, sizeof(node), "%.*s", (int)(sp - w->key), w->key);
	snprintf(oqid, sizeof(oqid), "%s", sp + 1);
	if (!ok) {
		log_warnx("node %s: shadow %s of lost node %s not promoted "
		          "(queue error); tried again at the next heartbeat",
		    sh->name, oqid, node);
		free(w);
		return;
	}
	if ((sq = shadow_map_del(&sh->held, w->key)) != NULL) {
		if (spool_lookup(sh->sp, sq, &si) == 0)
			atomic_fetch_sub(&sh->held_bytes, si.size);
		atomic_fetch_sub(&sh->held_count, 1);
		free(sq);
	}
	(void)spool_remove(sh->sp, w->sqid, NULL, 0);
	atomic_fetch_add(&sh->promoted, 1);
	log_info(
	    "%s shadow promoted from %s (queue id %s there)", qid, node, oqid);
	/* the takeover in the delivery record, under the lost node's id */
	if (sh->n->journal != NULL) {
		snprintf(reply, sizeof(reply),
		    "promoted from %s into the queue of %s as %s", node,
		    sh->name, qid);
		ev.kind = kind;
		ev.queue_id = oqid;
		ev.reply = reply;
		ev.host = node;
		(void)journal_append(sh->n->journal, &ev);
	}
	free(w);
	event_active(sh->ev_promote, EV_READ, 0); /* the next ones */
}

/* A lost node's copy into our queue, with a received event that says
 * where it came from. */
static int
shadow_promote_one(struct shadow *sh, const struct spool_info *si)
{
	Sluice__Event ev = SLUICE__EVENT__INIT;
	struct spool_envelope env = si->env;
	struct shadow_hold_wait *w;
	struct spool_note *note = NULL;
	struct spool_msg *msg;
	char buf[65536], reply[300], kind[] = "received", node[128];
	const char *sp = strchr(si->env.origin, ' ');
	uint64_t off;
	ssize_t r;

	if (sp == NULL || (w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	if ((msg = spool_msg_new(sh->n->spool)) == NULL) {
		free(w);
		return -1;
	}
	for (off = 0; off < si->size; off += (uint64_t)r)
		if ((r = spool_read(
		         sh->sp, si->queue_id, off, buf, sizeof(buf))) <= 0 ||
		    spool_msg_write(msg, buf, (size_t)r) == -1) {
			spool_msg_abort(msg);
			free(w);
			return -1;
		}
	w->promote = true;
	w->size = si->size;
	snprintf(w->key, sizeof(w->key), "%s", si->env.origin);
	snprintf(w->sqid, sizeof(w->sqid), "%s", si->queue_id);
	snprintf(node, sizeof(node), "%.*s", (int)(sp - si->env.origin),
	    si->env.origin);
	env.origin = NULL;
	if (sh->n->journal != NULL) {
		snprintf(reply, sizeof(reply),
		    "promoted from %s (queue id %s "
		    "there)",
		    node, sp + 1);
		ev.kind = kind;
		ev.queue_id = (char *)(uintptr_t)spool_msg_id(msg);
		ev.message_id = (char *)(uintptr_t)si->env.message_id;
		ev.client = (char *)(uintptr_t)si->env.client;
		ev.auth_user = (char *)(uintptr_t)si->env.auth_user;
		ev.sender = (char *)(uintptr_t)si->env.sender;
		ev.recipients = (char **)(uintptr_t)si->env.rcpts;
		ev.n_recipients = si->env.nrcpts;
		ev.size = si->size;
		ev.reply = reply;
		ev.host = node;
		note = journal_note_new(sh->n->journal, &ev);
	}
	TAILQ_INSERT_TAIL(&sh->waits, w, entry);
	sh->promoting++;
	spool_msg_commit_note(msg, &env, shadow_promote_on_commit, sh,
	    (uint64_t)(uintptr_t)w, note);
	return 0;
}

struct shadow_promote_walk {
	struct shadow *sh;
	char ids[SHADOW_PROMOTE_MAX][SPOOL_QID_MAX];
	size_t n, max;
};

static bool
shadow_promoting(struct shadow *sh, const char *sqid)
{
	struct shadow_hold_wait *w;

	TAILQ_FOREACH(w, &sh->waits, entry)
	if (w->promote && strcmp(w->sqid, sqid) == 0)
		return true;
	return false;
}

static int
shadow_promote_cb(const struct spool_info *si, void *arg)
{
	struct shadow_promote_walk *pw = arg;
	size_t i, len;

	if (si->env.origin == NULL)
		return 0;
	for (i = 0; i < pw->sh->nlost; i++) {
		len = strlen(pw->sh->lost[i]);
		if (strncmp(si->env.origin, pw->sh->lost[i], len) == 0 &&
		    si->env.origin[len] == ' ' &&
		    !shadow_promoting(pw->sh, si->queue_id)) {
			snprintf(
			    pw->ids[pw->n], SPOOL_QID_MAX, "%s", si->queue_id);
			if (++pw->n == pw->max)
				return 1;
			break;
		}
	}
	return 0;
}

static void
shadow_on_promote(evutil_socket_t fd, short what, void *arg)
{
	struct shadow *sh = arg;
	struct shadow_promote_walk *pw;
	struct spool_info si;
	size_t i;

	(void)fd;
	(void)what;
	if (sh->nlost == 0 || sh->sp == NULL ||
	    sh->promoting >= SHADOW_PROMOTE_MAX ||
	    atomic_load(&sh->held_count) == 0)
		return;
	if ((pw = calloc(1, sizeof(*pw))) == NULL)
		return;
	pw->sh = sh;
	pw->max = (size_t)(SHADOW_PROMOTE_MAX - sh->promoting);
	(void)spool_foreach(sh->sp, shadow_promote_cb, pw);
	for (i = 0; i < pw->n; i++)
		if (spool_lookup(sh->sp, pw->ids[i], &si) == 0 &&
		    shadow_promote_one(sh, &si) == -1) {
			log_warnx("node %s: cannot promote shadow %s (queue "
			          "error); tried again at the next heartbeat",
			    sh->name, si.env.origin);
			break;
		}
	free(pw);
}

void
shadow_hold_promote(struct shadow *sh, char *const *lost, size_t n)
{
	size_t i, k = 0;
	bool changed = n != sh->nlost;

	for (i = 0; !changed && i < n; i++)
		changed = strcmp(lost[i], sh->lost[i]) != 0;
	if (changed) {
		for (i = 0; i < sh->nlost; i++)
			free(sh->lost[i]);
		free(sh->lost);
		sh->lost = NULL;
		sh->nlost = 0;
		if (n > 0 && (sh->lost = calloc(n, sizeof(*sh->lost))) != NULL)
			for (i = 0; i < n; i++)
				if (strcmp(lost[i], sh->name) != 0 &&
				    (sh->lost[k] = strdup(lost[i])) != NULL)
					k++;
		sh->nlost = k;
		for (i = 0; i < k; i++)
			log_info("node %s: node %s is declared lost: "
			         "promoting the shadow copies held for it",
			    sh->name, sh->lost[i]);
	}
	if (sh->nlost > 0 && sh->ev_promote != NULL)
		event_active(sh->ev_promote, EV_READ, 0);
}

/* ------------------------------------------------------------ expiry */

/* A copy outlives its message only when a release was lost (the primary
 * restarted, or could not reach us for good): after the queue lifetime
 * and a day more, its primary has bounced or delivered it for sure. */
struct shadow_expire_walk {
	int64_t before;
	char ids[256][SPOOL_QID_MAX];
	char keys[256][SHADOW_KEY_MAX];
	size_t n;
};

static int
shadow_expire_cb(const struct spool_info *si, void *arg)
{
	struct shadow_expire_walk *w = arg;

	if (si->committed_at >= w->before)
		return 1; /* oldest first: the rest are younger */
	snprintf(w->ids[w->n], SPOOL_QID_MAX, "%s", si->queue_id);
	snprintf(w->keys[w->n], SHADOW_KEY_MAX, "%s",
	    si->env.origin != NULL ? si->env.origin : "");
	return ++w->n == 256;
}

static void
shadow_on_expire(evutil_socket_t fd, short what, void *arg)
{
	struct shadow *sh = arg;
	struct shadow_expire_walk *w;
	struct spool_info si;
	char *sq;
	size_t i;

	(void)fd;
	(void)what;
	if (sh->sp == NULL || (w = calloc(1, sizeof(*w))) == NULL)
		return;
	w->before =
	    (int64_t)time(NULL) -
	    policy_limit_of(sh->n->policy, LIMIT_MAX_QUEUE_LIFETIME_SECONDS) -
	    86400;
	(void)spool_foreach(sh->sp, shadow_expire_cb, w);
	for (i = 0; i < w->n; i++) {
		if (spool_lookup(sh->sp, w->ids[i], &si) == 0)
			atomic_fetch_sub(&sh->held_bytes, si.size);
		if ((sq = shadow_map_del(&sh->held, w->keys[i])) != NULL) {
			atomic_fetch_sub(&sh->held_count, 1);
			free(sq);
		}
		(void)spool_remove(sh->sp, w->ids[i], NULL, 0);
		log_info("node %s: shadow copy %s dropped: past the queue "
		         "lifetime and never released",
		    sh->name, w->keys[i]);
	}
	free(w);
}

/* ----------------------------------------------------- open / close */

static int
shadow_seed_cb(const struct spool_info *si, void *arg)
{
	struct shadow *sh = arg;
	char *id;
	void *old;

	if (si->env.origin == NULL || si->env.origin[0] == '\0')
		return 0; /* not a copy: never written by us */
	if ((id = strdup(si->queue_id)) == NULL ||
	    shadow_map_put(&sh->held, si->env.origin, id, &old) == -1)
		return 1;
	if (old != NULL) {
		/* two copies of one message: the later one counts */
		(void)spool_remove(sh->sp, old, NULL, 0);
		free(old);
		return 0;
	}
	atomic_fetch_add(&sh->held_count, 1);
	atomic_fetch_add(&sh->held_bytes, si->size);
	return 0;
}

int
shadow_hold_open(
    struct shadow *sh, const char *listen, char *err, size_t errlen)
{
	struct timeval expire_every = {600, 0};
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/shadow", sh->n->spool_dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(
		    err, errlen, "shadow spool %s: %s", dir, strerror(errno));
		return -1;
	}
	if ((sh->sp = spool_open(sh->base, dir, NULL)) == NULL) {
		snprintf(err, errlen,
		    "cannot open the shadow spool %s (see "
		    "log)",
		    dir);
		return -1;
	}
	if (shadow_map_init(&sh->taken) == -1 ||
	    spool_foreach(sh->sp, shadow_seed_cb, sh) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((sh->ev_expire = event_new(
	         sh->base, -1, EV_PERSIST, shadow_on_expire, sh)) == NULL ||
	    event_add(sh->ev_expire, &expire_every) == -1 ||
	    (sh->ev_promote = event_new(
	         sh->base, -1, 0, shadow_on_promote, sh)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(listen, (struct sockaddr *)&ss, &len) ==
	    -1) {
		snprintf(
		    err, errlen, "shadow_listen '%s' is not host:port", listen);
		return -1;
	}
	if ((sh->lev = evconnlistener_new_bind(sh->base, shadow_on_accept, sh,
	         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	             LEV_OPT_CLOSE_ON_EXEC,
	         128, (struct sockaddr *)&ss, len)) == NULL) {
		snprintf(err, errlen, "shadow_listen %s: %s", listen,
		    strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(sh->lev, shadow_on_accept_error);
	if (atomic_load(&sh->held_count) > 0)
		log_info("node %s: holding %" PRIu64 " shadow copies for "
		         "peers",
		    sh->name, (uint64_t)atomic_load(&sh->held_count));
	return 0;
}

void
shadow_hold_close(struct shadow *sh)
{
	struct shadow_conn *c;
	struct shadow_hold_wait *w;
	size_t i;

	if (sh->lev != NULL)
		evconnlistener_free(sh->lev);
	sh->lev = NULL;
	while ((c = TAILQ_FIRST(&sh->conns)) != NULL)
		shadow_conn_free(c);
	/* closing the spools finishes their jobs without callbacks */
	spool_close(sh->sp);
	sh->sp = NULL;
	while ((w = TAILQ_FIRST(&sh->waits)) != NULL) {
		TAILQ_REMOVE(&sh->waits, w, entry);
		free(w);
	}
	if (sh->ev_promote != NULL)
		event_free(sh->ev_promote);
	sh->ev_promote = NULL;
	if (sh->ev_expire != NULL)
		event_free(sh->ev_expire);
	sh->ev_expire = NULL;
	for (i = 0; i < sh->nlost; i++)
		free(sh->lost[i]);
	free(sh->lost);
	sh->lost = NULL;
	sh->nlost = 0;
	shadow_map_fini(&sh->taken, free);
	if (sh->taken_ring != NULL)
		for (i = 0; i < SHADOW_TAKEN_MAX; i++)
			free(sh->taken_ring[i]);
	free(sh->taken_ring);
	sh->taken_ring = NULL;
}
