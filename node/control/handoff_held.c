/* handoff_held.c - held messages handed off while draining
 * (handoff_held.h).
 *
 * At most HANDOFF_HELD_MAX messages are on their way at once; the rest
 * go at the next run (control.c runs it every heartbeat while handing
 * off), and so does one whose peer failed.  While one is on its way an
 * operator's release or delete waits ("try again", delivery_busy), so
 * it is still held here when the answer comes.  Loop thread only. */
#include "handoff_held.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "node.h"
#include "shadow.h"
#include "spool.h"

#define HANDOFF_HELD_MAX     16    /* on their way at once */
#define HANDOFF_HELD_TIMEOUT 30000 /* ms for one peer's ack */

struct handoff_held_slot {
	uint64_t cookie; /* 0: free */
	char qid[SPOOL_QID_MAX];
	char peer[128];
};

struct handoff_held {
	struct node *n;
	struct handoff_held_slot slot[HANDOFF_HELD_MAX];
	uint64_t next_cookie;
	size_t next_peer;
	char why[400]; /* the last failure, logged when it changes */
};

struct handoff_held_walk {
	struct handoff_held *hh;
	char ids[HANDOFF_HELD_MAX][SPOOL_QID_MAX];
	size_t n, max;
};

struct handoff_held *
handoff_held_new(struct node *n)
{
	struct handoff_held *hh;

	if ((hh = calloc(1, sizeof(*hh))) == NULL)
		return NULL;
	hh->n = n;
	return hh;
}

void
handoff_held_free(struct handoff_held *hh)
{
	free(hh);
}

static struct handoff_held_slot *
handoff_held_find(struct handoff_held *hh, const char *qid)
{
	size_t i;

	for (i = 0; i < HANDOFF_HELD_MAX; i++)
		if (hh->slot[i].cookie != 0 &&
		    strcmp(hh->slot[i].qid, qid) == 0)
			return &hh->slot[i];
	return NULL;
}

static void
handoff_held_fail(struct handoff_held *hh, const char *qid, const char *why)
{
	if (strncmp(hh->why, why, sizeof(hh->why) - 1) == 0)
		return;
	snprintf(hh->why, sizeof(hh->why), "%s", why);
	log_warnx("%s handoff of a held message failed: %s (tried again at "
	          "the next heartbeat; further failures like it not logged)",
	    qid, why);
}

/* One handed_off event per pending recipient, as the delivery engine
 * writes them for the rest of the queue. */
static void
handoff_held_events(struct handoff_held *hh, const struct spool_info *si,
    const char *peer, const char *peer_qid)
{
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char kind[] = "handed_off", hop[] = "handoff", enh[] = "2.0.0";
	char reply[300];
	size_t i;

	if (hh->n->journal == NULL)
		return;
	snprintf(reply, sizeof(reply),
	    "250 2.0.0 handed off to %s as %s (held)", peer, peer_qid);
	ev.kind = kind;
	ev.queue_id = (char *)(uintptr_t)si->queue_id;
	ev.message_id = (char *)(uintptr_t)si->env.message_id;
	ev.client = (char *)(uintptr_t)si->env.client;
	ev.auth_user =
	    (char *)(uintptr_t)(si->env.auth_user != NULL ? si->env.auth_user
	                                                  : "");
	ev.sender = (char *)(uintptr_t)si->env.sender;
	ev.size = si->size;
	ev.hop = hop;
	ev.host = (char *)(uintptr_t)peer;
	ev.code = 250;
	ev.enhanced = enh;
	ev.reply = reply;
	ev.provider_id = (char *)(uintptr_t)peer_qid;
	for (i = 0; i < si->env.nrcpts; i++) {
		if (si->rcpt_status[i] != SPOOL_RCPT_PENDING)
			continue;
		ev.recipient = (char *)(uintptr_t)si->env.rcpts[i];
		(void)journal_append(hh->n->journal, &ev);
	}
}

static void
handoff_held_on_done(
    void *arg, uint64_t cookie, bool ok, const char *peer_qid, const char *why)
{
	struct handoff_held *hh = arg;
	struct handoff_held_slot *s = NULL;
	struct spool_info si;
	size_t i;

	for (i = 0; i < HANDOFF_HELD_MAX && s == NULL; i++)
		if (hh->slot[i].cookie == cookie)
			s = &hh->slot[i];
	if (s == NULL)
		return;
	s->cookie = 0;
	if (!ok) {
		handoff_held_fail(hh, s->qid, why);
		return;
	}
	hh->why[0] = '\0';
	/* release and delete wait while it is on its way (delivery_busy) */
	if (spool_lookup(hh->n->spool, s->qid, &si) == -1 ||
	    si.state != SPOOL_HELD) {
		log_warnx("%s changed here while handed off: held at %s as %s",
		    s->qid, s->peer, peer_qid);
		return;
	}
	handoff_held_events(hh, &si, s->peer, peer_qid);
	if (spool_remove(hh->n->spool, s->qid, NULL, 0) == 0)
		log_info("%s handed off to %s as %s (held there)", s->qid,
		    s->peer, peer_qid);
}

static int
handoff_held_cb(const struct spool_info *si, void *arg)
{
	struct handoff_held_walk *w = arg;

	if (si->state != SPOOL_HELD || si->npending == 0 ||
	    handoff_held_find(w->hh, si->queue_id) != NULL)
		return 0;
	snprintf(w->ids[w->n], SPOOL_QID_MAX, "%s", si->queue_id);
	return ++w->n == w->max;
}

/* The next peer with a shadow channel, in turn; -1 none. */
static int
handoff_held_peer(
    struct handoff_held *hh, const struct handoff_peer *peers, size_t n)
{
	size_t k, i;

	for (k = 0; k < n; k++) {
		i = (hh->next_peer + k) % n;
		if (peers[i].shadow[0] != '\0') {
			hh->next_peer = i + 1;
			return (int)i;
		}
	}
	return -1;
}

void
handoff_held_run(
    struct handoff_held *hh, const struct handoff_peer *peers, size_t n)
{
	struct handoff_held_walk *w;
	struct handoff_held_slot *s;
	struct spool_info si;
	const char **rcpts;
	char why[400];
	size_t i, k, free_slots = 0, nr;
	int p;

	if (hh == NULL || atomic_load(&hh->n->stats.queue_held) == 0)
		return;
	for (i = 0; i < HANDOFF_HELD_MAX; i++)
		free_slots += hh->slot[i].cookie == 0;
	if (free_slots == 0 || (w = calloc(1, sizeof(*w))) == NULL)
		return;
	w->hh = hh;
	w->max = free_slots;
	(void)spool_foreach(hh->n->spool, handoff_held_cb, w);
	for (k = 0; k < w->n; k++) {
		if ((p = handoff_held_peer(hh, peers, n)) == -1) {
			handoff_held_fail(hh, w->ids[k],
			    "no peer with a shadow channel: held messages "
			    "stay here until released or deleted");
			break;
		}
		if (spool_lookup(hh->n->spool, w->ids[k], &si) == -1 ||
		    (rcpts = calloc(si.env.nrcpts, sizeof(*rcpts))) == NULL)
			continue;
		for (i = nr = 0; i < si.env.nrcpts; i++)
			if (si.rcpt_status[i] == SPOOL_RCPT_PENDING)
				rcpts[nr++] = si.env.rcpts[i];
		for (s = NULL, i = 0; i < HANDOFF_HELD_MAX && s == NULL; i++)
			if (hh->slot[i].cookie == 0)
				s = &hh->slot[i];
		s->cookie = ++hh->next_cookie;
		snprintf(s->qid, sizeof(s->qid), "%s", w->ids[k]);
		snprintf(s->peer, sizeof(s->peer), "%s", peers[p].name);
		if (shadow_handoff(hh->n->shadow, peers[p].shadow, w->ids[k],
		        rcpts, nr, HANDOFF_HELD_TIMEOUT, handoff_held_on_done,
		        hh, s->cookie, why, sizeof(why)) == -1) {
			s->cookie = 0;
			handoff_held_fail(hh, w->ids[k], why);
		}
		free(rcpts);
	}
	free(w);
}
