/* alert.c - the health tick (alert.h).  One controller at a time evaluates
 * (pg_try_advisory_xact_lock in the tick's transaction); the others skip
 * that tick.  Raising is INSERT ... ON CONFLICT DO NOTHING against the
 * unique index on open (kind, subject), so even two evaluations racing
 * could not raise an alert twice.  Every raise and clear is one log line:
 *   alert: raised kind=node_silent subject=edge-1 message="..."
 *   alert: cleared kind=node_silent subject=edge-1 */
#include "alert.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health.h"
#include "log.h"
#include "outbox_metrics.h"
#include "webhook.h"

/* A quarantined event keeps its node's alert open this long. */
#define ALERT_QUARANTINE_S (24 * 3600)

struct alert_set {
	struct health_alert *v;
	size_t n, cap;
	bool is_oom;
};

struct alert_nodes {
	struct health_node *v;
	Sluice__QueueMetrics **m;
	size_t n, cap;
	bool is_oom;
	/* Conditions the request handlers recorded on node rows (a policy
	 * mismatch, api_node.c): they hold while recorded. */
	struct alert_set recorded;
};

static void alert_set_cb(void *arg, const struct health_alert *a);

static int
alert_nodes_cb(void *arg, const struct store_node_row *r)
{
	struct alert_nodes *an = arg;
	struct health_alert a;
	struct health_node *hn;
	void *nv, *nm;

	if (an->n == an->cap) {
		an->cap = an->cap ? an->cap * 2 : 16;
		nv = realloc(an->v, an->cap * sizeof(*an->v));
		if (nv != NULL)
			an->v = nv;
		nm = realloc(an->m, an->cap * sizeof(*an->m));
		if (nm != NULL)
			an->m = nm;
		if (nv == NULL || nm == NULL) {
			an->is_oom = true;
			return 1;
		}
	}
	hn = &an->v[an->n];
	memset(hn, 0, sizeof(*hn));
	an->m[an->n] = NULL;
	if ((hn->name = strdup(r->name)) == NULL) {
		an->is_oom = true;
		return 1;
	}
	an->n++;
	hn->is_new = r->last_heartbeat_at == 0;
	hn->heartbeat_age_ms = r->heartbeat_age_ms;
	hn->auth_failures_per_min = r->auth_failures_per_min;
	hn->heartbeat_ms = r->heartbeat_ms;
	if (r->policy_mismatch[0] != '\0') {
		memset(&a, 0, sizeof(a));
		snprintf(a.kind, sizeof(a.kind), "policy_mismatch");
		snprintf(a.subject, sizeof(a.subject), "%s", r->name);
		snprintf(
		    a.message, sizeof(a.message), "%s", r->policy_mismatch);
		alert_set_cb(&an->recorded, &a);
	}
	if (r->metrics != NULL)
		an->m[an->n - 1] = sluice__queue_metrics__unpack(
		    NULL, r->metrics_len, r->metrics);
	hn->metrics = an->m[an->n - 1];
	return 0;
}

static void
alert_nodes_free(struct alert_nodes *an)
{
	size_t i;

	for (i = 0; i < an->n; i++) {
		free((char *)(uintptr_t)an->v[i].name);
		if (an->m[i] != NULL)
			sluice__queue_metrics__free_unpacked(an->m[i], NULL);
	}
	free(an->v);
	free(an->m);
	free(an->recorded.v);
}

/* The DKIM DNS check's findings (dkim_watch.c): a published key that is
 * not the policy's, or none published (issue 14). */
static int
alert_dkim_cb(
    void *arg, const char *name, const char *status, const char *detail)
{
	struct health_alert a;

	memset(&a, 0, sizeof(a));
	if (strcmp(status, "mismatch") == 0) {
		snprintf(a.kind, sizeof(a.kind), "dkim_dns_mismatch");
		snprintf(a.message, sizeof(a.message),
		    "the DKIM record published at %s is not the policy's key: "
		    "%s",
		    name, detail);
	} else if (strcmp(status, "missing") == 0) {
		snprintf(a.kind, sizeof(a.kind), "dkim_dns_missing");
		snprintf(a.message, sizeof(a.message),
		    "no DKIM record is published at %s: publish `sluicectl "
		    "dkim dns`",
		    name);
	} else
		return 0;
	snprintf(a.subject, sizeof(a.subject), "%s", name);
	alert_set_cb(arg, &a);
	return 0;
}

static void
alert_set_cb(void *arg, const struct health_alert *a)
{
	struct alert_set *s = arg;
	struct health_alert *nv;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		if ((nv = realloc(s->v, s->cap * sizeof(*nv))) == NULL) {
			s->is_oom = true;
			s->cap = s->n;
			return;
		}
		s->v = nv;
	}
	s->v[s->n++] = *a;
}

static bool
alert_set_has(const struct alert_set *s, const char *kind, const char *subject)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].kind, kind) == 0 &&
		    strcmp(s->v[i].subject, subject) == 0)
			return true;
	return false;
}

/* Raised and cleared in this tick, for the webhook after COMMIT. */
struct alert_note {
	struct health_alert a;
	bool is_raise;
};

struct alert_notes {
	struct alert_note *v;
	size_t n, cap;
};

static void
alert_note(struct alert_notes *ns, const struct health_alert *a, bool raise)
{
	struct alert_note *nv;

	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 8;
		if ((nv = realloc(ns->v, ns->cap * sizeof(*nv))) == NULL) {
			ns->cap = ns->n;
			return; /* the webhook misses one; the table has it */
		}
		ns->v = nv;
	}
	ns->v[ns->n].a = *a;
	ns->v[ns->n].is_raise = raise;
	ns->n++;
}

struct alert_clear {
	struct store *store;
	const struct alert_set *now;
	struct alert_set open; /* what was open before this tick */
};

static int
alert_open_cb(void *arg, const struct store_alert_row *r)
{
	struct alert_clear *c = arg;
	struct health_alert a;

	memset(&a, 0, sizeof(a));
	snprintf(a.kind, sizeof(a.kind), "%s", r->kind);
	snprintf(a.subject, sizeof(a.subject), "%s", r->subject);
	alert_set_cb(&c->open, &a);
	return 0;
}

static int
alert_quarantine_cb(void *arg, const char *node, uint64_t count)
{
	struct alert_nodes *an = arg;
	size_t i;

	for (i = 0; i < an->n; i++)
		if (strcmp(an->v[i].name, node) == 0)
			an->v[i].events_quarantined = count;
	return 0;
}

static int64_t
alert_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long this controller has watched the fleet without a break, as of
 * a tick that reached the store.  A gap between ticks much longer than the
 * interval means the process was stopped (SIGSTOP, a hung host): nodes
 * could not reach it meanwhile, so watching starts again.  After the store
 * was away, watching starts once the node endpoint's store can be back
 * too: it reconnects on its own backoff, up to STORE_BACKOFF_MAX_MS after
 * this one, and until then no heartbeat is recorded (a node judged silent
 * for that was fleet_false_alerts' false alert after a PostgreSQL
 * outage). */
static int64_t
alert_watched(struct alert_config *cf, int64_t now)
{
	if (cf->watch_from_ms == 0) {
		cf->watch_from_ms =
		    now + (cf->store_was_away ? STORE_BACKOFF_MAX_MS : 0);
		cf->store_was_away = false;
		log_info("alert: watching the fleet; nodes get %s before "
		         "they are judged silent",
		    cf->silent_after_ms > 0 ? "silent_after_ms"
		                            : "three heartbeats");
	}
	return now - cf->watch_from_ms;
}

/* The policy's limits and routes; NULL when there is no policy. */
static Sluice__Policy *
alert_policy(struct store *st, int *rc)
{
	Sluice__Policy *p;
	uint64_t head;
	uint8_t *buf;
	size_t len;

	if ((*rc = store_policy_head(st, false, &head)) != STORE_OK ||
	    head == 0)
		return NULL;
	if ((*rc = store_policy_snapshot(st, head, &buf, &len)) != STORE_OK)
		return NULL;
	p = sluice__policy__unpack(NULL, len, buf);
	free(buf);
	return p;
}

/* Per-credential quotas (issue 15): a user whose MAIL or RCPT was refused
 * for a quota in the current window.  The window is in the subject, so
 * the alert is raised once per window and clears when the window ends. */
struct alert_quota {
	struct alert_set *set;
	const Sluice__Policy *pol;
	int64_t now;
};

static int
alert_quota_cb(void *arg, const struct store_quota_row *r)
{
	static const char *const dims[4] = {
	    "hour_msgs", "hour_rcpts", "day_msgs", "day_rcpts"};
	static const char *const what[4] = {"hourly message",
	    "hourly recipient", "daily message", "daily recipient"};
	struct alert_quota *q = arg;
	struct health_alert a;
	const Sluice__User *u = NULL;
	char at[32], end[32];
	time_t t;
	struct tm tm;
	int64_t len;
	uint32_t quota;
	size_t i;
	int d;

	for (d = 0; d < 4 && strcmp(r->dim, dims[d]) != 0; d++)
		;
	len = d < 2 ? 3600 : 86400;
	if (d == 4 || r->refused == 0 || r->window_start + len <= q->now)
		return 0;
	for (i = 0; q->pol != NULL && i < q->pol->n_users; i++)
		if (strcmp(q->pol->users[i]->name, r->user) == 0)
			u = q->pol->users[i];
	if (u == NULL)
		return 0;
	quota = d == 0   ? u->quota_hour_msgs
	        : d == 1 ? u->quota_hour_rcpts
	        : d == 2 ? u->quota_day_msgs
	                 : u->quota_day_rcpts;
	t = (time_t)r->window_start;
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%MZ", gmtime_r(&t, &tm));
	t = (time_t)(r->window_start + len);
	strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	memset(&a, 0, sizeof(a));
	snprintf(a.kind, sizeof(a.kind), "user_quota");
	snprintf(a.subject, sizeof(a.subject), "%s/%s@%s", r->user, r->dim, at);
	if (alert_set_has(q->set, a.kind, a.subject))
		return 0;
	snprintf(a.message, sizeof(a.message),
	    "user %s reached its %s quota (%" PRIu32 ") on the fleet; its "
	    "mail gets 451 4.7.1 until %s",
	    r->user, what[d], quota, end);
	alert_set_cb(q->set, &a);
	return 0;
}

/* Once a minute, in its own transaction under the health lock: day
 * partitions of the delivery record. */
static void
alert_partitions(struct store *st, struct alert_config *cf)
{
	struct timespec ts;
	bool got;
	int dropped;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (cf->maintained_at != 0 && ts.tv_sec - cf->maintained_at < 60)
		return;
	if (store_health_lock(st, &got) != STORE_OK || !got)
		return;
	if (store_event_partitions(st, cf->events_retention_days, &dropped) !=
	    STORE_OK) {
		store_rollback(st);
		return;
	}
	if (store_commit(st) != STORE_OK)
		return;
	cf->maintained_at = ts.tv_sec;
	if (dropped > 0)
		log_info("events: dropped %d day partition%s older than %lld "
		         "days",
		    dropped, dropped == 1 ? "" : "s",
		    (long long)cf->events_retention_days);
}

void
alert_tick(struct store *st, struct alert_config *cf)
{
	struct alert_nodes an;
	struct alert_set now;
	struct alert_quota aq;
	struct alert_clear cl;
	struct alert_notes notes;
	struct health_input in;
	Sluice__Policy *pol = NULL;
	int64_t now_ms, watched;
	bool got, done, unsure = false;
	size_t i;
	int rc;

	memset(&an, 0, sizeof(an));
	memset(&now, 0, sizeof(now));
	memset(&cl, 0, sizeof(cl));
	memset(&notes, 0, sizeof(notes));
	now_ms = alert_now_ms();
	if (cf->last_tick_ms != 0 &&
	    now_ms - cf->last_tick_ms > 2 * cf->interval_ms + 1000)
		cf->watch_from_ms = 0;
	cf->last_tick_ms = now_ms;
	alert_partitions(st, cf);
	if (store_health_lock(st, &got) != STORE_OK) {
		cf->watch_from_ms = 0; /* the store is away: nothing seen */
		cf->store_was_away = true;
		return;
	}
	/* Lost and back since the last tick (a query of the last tick or of
	 * the partition upkeep failed, this one reconnected): the database
	 * may be another (a promoted standby) whose heartbeats lag. */
	if (store_reconnects(st) != cf->store_reconnects) {
		cf->store_reconnects = store_reconnects(st);
		cf->watch_from_ms = 0;
		cf->store_was_away = true;
	}
	watched = alert_watched(cf, now_ms);
	if (!got)
		return;
	if ((rc = store_node_list(st, alert_nodes_cb, &an)) != STORE_OK ||
	    an.is_oom || an.recorded.is_oom ||
	    (rc = store_event_quarantined(
	         st, ALERT_QUARANTINE_S, alert_quarantine_cb, &an)) != STORE_OK)
		goto fail;
	pol = alert_policy(st, &rc);
	if (rc != STORE_OK)
		goto fail;
	in.nodes = an.v;
	in.nnodes = an.n;
	in.policy = pol;
	in.silent_after_ms = cf->silent_after_ms;
	in.watched_ms = watched;
	health_evaluate(&in, alert_set_cb, &now);
	if ((rc = outbox_metrics_alerts(st, cf->webhook_alert_after_s,
	         alert_set_cb, &now)) != STORE_OK)
		goto fail;
	/* issue 13: a node silent beyond redundancy_lost_after_seconds is
	 * declared lost; its peers promote its shadow copies */
	for (i = 0; i < now.n; i++) {
		bool added;

		if (strcmp(now.v[i].kind, "node_lost") != 0)
			continue;
		if (store_node_lost(st, now.v[i].subject, now.v[i].message,
		        false, &added) != STORE_OK)
			goto fail;
		if (added)
			log_warnx("node %s declared lost: %s", now.v[i].subject,
			    now.v[i].message);
	}
	aq.set = &now;
	aq.pol = pol;
	aq.now = (int64_t)time(NULL);
	if ((rc = store_quota_rows(st, aq.now - aq.now % 86400, alert_quota_cb,
	         &aq)) != STORE_OK ||
	    (rc = store_quota_expire(st, aq.now - aq.now % 86400)) != STORE_OK)
		goto fail;
	for (i = 0; i < an.recorded.n; i++)
		alert_set_cb(&now, &an.recorded.v[i]);
	if ((rc = store_dkim_dns_list(st, alert_dkim_cb, &now)) != STORE_OK)
		goto fail;
	/* Until every node has had a whole silent period of watching, what
	 * is not said now may simply be unknown: clear nothing yet. */
	for (i = 0; i < an.n; i++)
		if (watched <= health_silent_after(
		                   cf->silent_after_ms, an.v[i].heartbeat_ms))
			unsure = true;
	cl.store = st;
	cl.now = &now;
	if (now.is_oom ||
	    (rc = store_alert_list(st, true, 0, alert_open_cb, &cl)) !=
	        STORE_OK ||
	    cl.open.is_oom)
		goto fail;
	for (i = 0; i < now.n; i++) {
		if (alert_set_has(&cl.open, now.v[i].kind, now.v[i].subject))
			continue;
		if (store_alert_raise(st, now.v[i].kind, now.v[i].subject,
		        now.v[i].message, cf->who, &done) != STORE_OK)
			goto fail;
		if (done) {
			log_warnx("alert: raised kind=%s subject=%s "
			          "message=\"%s\"",
			    now.v[i].kind, now.v[i].subject, now.v[i].message);
			alert_note(&notes, &now.v[i], true);
		}
	}
	for (i = 0; i < cl.open.n && !unsure; i++) {
		if (alert_set_has(
		        &now, cl.open.v[i].kind, cl.open.v[i].subject))
			continue;
		if (store_alert_clear(st, cl.open.v[i].kind,
		        cl.open.v[i].subject, &done) != STORE_OK)
			goto fail;
		if (done) {
			log_info("alert: cleared kind=%s subject=%s",
			    cl.open.v[i].kind, cl.open.v[i].subject);
			snprintf(cl.open.v[i].message,
			    sizeof(cl.open.v[i].message), "%s %s is clear",
			    cl.open.v[i].kind, cl.open.v[i].subject);
			alert_note(&notes, &cl.open.v[i], false);
		}
	}
	if (store_metrics_expire(st, cf->retention_minutes) != STORE_OK ||
	    store_command_expire(st, cf->command_timeout_s) != STORE_OK)
		goto fail;
	if (store_commit(st) == STORE_OK)
		for (i = 0; i < notes.n; i++)
			(void)webhook_post(cf->webhook,
			    notes.v[i].is_raise ? "raised" : "cleared",
			    notes.v[i].a.kind, notes.v[i].a.subject,
			    notes.v[i].a.message, (int64_t)time(NULL));
	goto out;
fail:
	store_rollback(st);
out:
	if (pol != NULL)
		sluice__policy__free_unpacked(pol, NULL);
	alert_nodes_free(&an);
	free(now.v);
	free(cl.open.v);
	free(notes.v);
}
