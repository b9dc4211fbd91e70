/* quota.c - per-credential quotas on the node (quota.h).  One entry per
 * user with a quota: its counts per dimension in the current window, the
 * controller's last allowance per dimension and the reservations of open
 * transactions.  A linear table: a relay has tens of credentials, and a
 * scan of QUOTA_MAX_USERS names is still far below one SMTP round trip. */
#include "quota.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct quota_entry {
	char user[QUOTA_USER_MAX];
	int64_t ws[QUOTA_DIMS]; /* window the counts are in, 0: none */
	uint64_t used[QUOTA_DIMS], refused[QUOTA_DIMS];
	int64_t gws[QUOTA_DIMS]; /* window of the allowance, 0: none */
	uint64_t glimit[QUOTA_DIMS];
	unsigned inflight_msgs, inflight_rcpts;
};

struct quota {
	pthread_mutex_t mu;
	struct quota_entry *v;
	size_t n, cap;
	uint32_t live_nodes;
};

static const char *const quota_names[QUOTA_DIMS] = {
    "hour_msgs", "hour_rcpts", "day_msgs", "day_rcpts"};

const char *
quota_dim_name(enum quota_dim d)
{
	return d < QUOTA_DIMS ? quota_names[d] : "unknown";
}

int
quota_dim_parse(const char *s)
{
	int d;

	for (d = 0; d < QUOTA_DIMS; d++)
		if (strcmp(s, quota_names[d]) == 0)
			return d;
	return -1;
}

int64_t
quota_window_len(enum quota_dim d)
{
	return d == QUOTA_HOUR_MSGS || d == QUOTA_HOUR_RCPTS ? 3600 : 86400;
}

int64_t
quota_window_start(enum quota_dim d, int64_t now)
{
	int64_t len = quota_window_len(d);

	return now - ((now % len) + len) % len;
}

void
quota_refusal_text(
    const struct quota_refusal *r, const char *user, char *buf, size_t len)
{
	static const char *const what[QUOTA_DIMS] = {"Hourly message",
	    "Hourly recipient", "Daily message", "Daily recipient"};
	char at[32] = "?";
	struct tm tm;
	time_t t = (time_t)r->reset_at;

	if (gmtime_r(&t, &tm) != NULL)
		strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* RFC 3463: 4.7.1 delivery not authorized, temporary */
	snprintf(buf, len,
	    "451 4.7.1 %s quota (%" PRIu32 ") of user %s reached; it resets "
	    "at %s",
	    r->dim < QUOTA_DIMS ? what[r->dim] : "A", r->quota, user, at);
}

bool
quota_any(const struct quota_limits *l)
{
	int d;

	for (d = 0; d < QUOTA_DIMS; d++)
		if (l->v[d] != 0)
			return true;
	return false;
}

static bool
quota_is_msgs(enum quota_dim d)
{
	return d == QUOTA_HOUR_MSGS || d == QUOTA_DAY_MSGS;
}

struct quota *
quota_new(void)
{
	struct quota *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	pthread_mutex_init(&q->mu, NULL);
	q->live_nodes = 1;
	return q;
}

void
quota_free(struct quota *q)
{
	if (q == NULL)
		return;
	pthread_mutex_destroy(&q->mu);
	free(q->v);
	free(q);
}

/* Nothing of e is current: no reservation, no count or allowance in a
 * window that has not ended. */
static bool
quota_idle(const struct quota_entry *e, int64_t now)
{
	int d;

	if (e->inflight_msgs != 0 || e->inflight_rcpts != 0)
		return false;
	for (d = 0; d < QUOTA_DIMS; d++)
		if (e->ws[d] == quota_window_start(d, now) ||
		    e->gws[d] == quota_window_start(d, now))
			return false;
	return true;
}

/* user's entry, created (or an idle one reused) when missing; NULL when
 * the table is full or out of memory. */
static struct quota_entry *
quota_entry(struct quota *q, const char *user, int64_t now)
{
	struct quota_entry *e = NULL, *nv;
	size_t i, ncap;

	if (user == NULL || strlen(user) >= QUOTA_USER_MAX)
		return NULL;
	for (i = 0; i < q->n; i++)
		if (strcmp(q->v[i].user, user) == 0)
			return &q->v[i];
	for (i = 0; i < q->n && e == NULL; i++)
		if (quota_idle(&q->v[i], now))
			e = &q->v[i];
	if (e == NULL) {
		if (q->n == QUOTA_MAX_USERS)
			return NULL;
		if (q->n == q->cap) {
			ncap = q->cap ? q->cap * 2 : 16;
			if ((nv = reallocarray(q->v, ncap, sizeof(*nv))) ==
			    NULL)
				return NULL;
			q->v = nv;
			q->cap = ncap;
		}
		e = &q->v[q->n++];
	}
	memset(e, 0, sizeof(*e));
	strcpy(e->user, user); /* length checked above */
	return e;
}

/* The counts of e in d start over with a new window. */
static void
quota_roll(struct quota_entry *e, enum quota_dim d, int64_t now)
{
	int64_t ws = quota_window_start(d, now);

	if (e->ws[d] == ws)
		return;
	e->ws[d] = ws;
	e->used[d] = 0;
	e->refused[d] = 0;
}

/* What e may have accepted in d's current window: the controller's
 * allowance for it, else an equal part of the fleet's quota. */
static uint64_t
quota_limit(const struct quota *q, const struct quota_entry *e,
    enum quota_dim d, uint32_t fleet)
{
	uint32_t live = q->live_nodes ? q->live_nodes : 1;

	if (e->gws[d] == e->ws[d])
		return e->glimit[d];
	return ((uint64_t)fleet + live - 1) / live;
}

/* Checks the dimensions of one kind (messages or recipients); on a
 * refusal counts it in every full one and reports the one that opens
 * last. */
static bool
quota_take(struct quota *q, const char *user, const struct quota_limits *l,
    bool msgs, int64_t now, struct quota_refusal *r)
{
	struct quota_entry *e;
	bool ok = true;
	unsigned inflight;
	int d;

	if (!quota_any(l))
		return true;
	pthread_mutex_lock(&q->mu);
	if ((e = quota_entry(q, user, now)) == NULL) {
		pthread_mutex_unlock(&q->mu);
		return true; /* not counted: see quota.h */
	}
	inflight = msgs ? e->inflight_msgs : e->inflight_rcpts;
	for (d = 0; d < QUOTA_DIMS; d++) {
		if (quota_is_msgs(d) != msgs || l->v[d] == 0)
			continue;
		quota_roll(e, d, now);
		if (e->used[d] + inflight < quota_limit(q, e, d, l->v[d]))
			continue;
		e->refused[d]++;
		if (ok || e->ws[d] + quota_window_len(d) > r->reset_at) {
			r->dim = d;
			r->quota = l->v[d];
			r->reset_at = e->ws[d] + quota_window_len(d);
		}
		ok = false;
	}
	if (ok && msgs)
		e->inflight_msgs++;
	else if (ok)
		e->inflight_rcpts++;
	pthread_mutex_unlock(&q->mu);
	return ok;
}

bool
quota_mail(struct quota *q, const char *user, const struct quota_limits *l,
    int64_t now, struct quota_refusal *r)
{
	return quota_take(q, user, l, true, now, r);
}

bool
quota_rcpt(struct quota *q, const char *user, const struct quota_limits *l,
    int64_t now, struct quota_refusal *r)
{
	return quota_take(q, user, l, false, now, r);
}

static struct quota_entry *
quota_find(struct quota *q, const char *user)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->v[i].user, user) == 0)
			return &q->v[i];
	return NULL;
}

static void
quota_unreserve(struct quota_entry *e, unsigned msgs, unsigned rcpts)
{
	e->inflight_msgs -= msgs < e->inflight_msgs ? msgs : e->inflight_msgs;
	e->inflight_rcpts -=
	    rcpts < e->inflight_rcpts ? rcpts : e->inflight_rcpts;
}

void
quota_commit(struct quota *q, const char *user, unsigned msgs, unsigned rcpts,
    int64_t now)
{
	struct quota_entry *e;
	int d;

	pthread_mutex_lock(&q->mu);
	if ((e = quota_find(q, user)) != NULL) {
		quota_unreserve(e, msgs, rcpts);
		for (d = 0; d < QUOTA_DIMS; d++) {
			quota_roll(e, d, now);
			e->used[d] += quota_is_msgs(d) ? msgs : rcpts;
		}
	}
	pthread_mutex_unlock(&q->mu);
}

void
quota_release(struct quota *q, const char *user, unsigned msgs, unsigned rcpts)
{
	struct quota_entry *e;

	pthread_mutex_lock(&q->mu);
	if ((e = quota_find(q, user)) != NULL)
		quota_unreserve(e, msgs, rcpts);
	pthread_mutex_unlock(&q->mu);
}

size_t
quota_usage(struct quota *q, int64_t now, struct quota_usage *out, size_t max)
{
	const struct quota_entry *e;
	size_t i, k = 0;
	int d;

	pthread_mutex_lock(&q->mu);
	for (i = 0; i < q->n && k < max; i++) {
		e = &q->v[i];
		for (d = 0; d < QUOTA_DIMS && k < max; d++) {
			if (e->ws[d] != quota_window_start(d, now) ||
			    (e->used[d] == 0 && e->refused[d] == 0))
				continue;
			memcpy(out[k].user, e->user, sizeof(out[k].user));
			out[k].dim = d;
			snprintf(out[k].dim_name, sizeof(out[k].dim_name), "%s",
			    quota_names[d]);
			out[k].window_start = e->ws[d];
			out[k].used = e->used[d];
			out[k].refused = e->refused[d];
			k++;
		}
	}
	pthread_mutex_unlock(&q->mu);
	return k;
}

void
quota_grants(struct quota *q, const struct quota_grant *g, size_t n,
    uint32_t live_nodes, int64_t now)
{
	struct quota_entry *e;
	size_t i;

	pthread_mutex_lock(&q->mu);
	q->live_nodes = live_nodes ? live_nodes : 1;
	for (i = 0; i < n; i++) {
		if (g[i].dim >= QUOTA_DIMS ||
		    g[i].window_start != quota_window_start(g[i].dim, now) ||
		    (e = quota_entry(q, g[i].user, now)) == NULL)
			continue;
		quota_roll(e, g[i].dim, now);
		e->gws[g[i].dim] = g[i].window_start;
		e->glimit[g[i].dim] = g[i].limit;
	}
	pthread_mutex_unlock(&q->mu);
}
