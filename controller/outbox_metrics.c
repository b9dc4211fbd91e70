/* outbox_metrics.c - the event webhooks' part of the controller's /metrics
 * and of its health tick (outbox_metrics.h).  The numbers come from the
 * database (webhook_endpoints, webhook_outbox), so every controller shows
 * the fleet-wide view; called by metrics_http.c and alert.c. */
#include "outbox_metrics.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"

struct outbox_metrics_row {
	char name[64];
	uint64_t sent, failed, queued;
	int64_t oldest_age_s, failing_for_s;
};

struct outbox_metrics_set {
	struct outbox_metrics_row *v;
	size_t n, cap;
	bool is_oom;
};

static int
outbox_metrics_cb(void *arg, const struct store_outbox_stats *st)
{
	struct outbox_metrics_set *s = arg;
	struct outbox_metrics_row *nv, *r;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		if ((nv = realloc(s->v, s->cap * sizeof(*nv))) == NULL) {
			s->is_oom = true;
			return 1;
		}
		s->v = nv;
	}
	r = &s->v[s->n++];
	snprintf(r->name, sizeof(r->name), "%s", st->name);
	r->sent = st->sent;
	r->failed = st->failed;
	r->queued = st->queued;
	r->oldest_age_s = st->oldest_age_s;
	r->failing_for_s = st->failing_for_s;
	return 0;
}

int
outbox_metrics(struct store *st, struct evbuffer *b)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
	    {"sluice_webhook_queued_events", "gauge",
	        "Events waiting in the outbox for the endpoint."},
	    {"sluice_webhook_sent_events_total", "counter",
	        "Events the endpoint acknowledged (2xx), fleet-wide."},
	    {"sluice_webhook_failed_posts_total", "counter",
	        "POSTs to the endpoint that failed, fleet-wide."},
	    {"sluice_webhook_oldest_age_seconds", "gauge",
	        "Age of the oldest event waiting for the endpoint."},
	    {"sluice_webhook_failing_seconds", "gauge",
	        "Seconds the endpoint has been failing (0: healthy)."},
	};
	struct outbox_metrics_set s;
	size_t f, i;
	int rc;

	memset(&s, 0, sizeof(s));
	if ((rc = store_outbox_stats(st, outbox_metrics_cb, &s)) != STORE_OK ||
	    s.is_oom) {
		free(s.v);
		return rc != STORE_OK ? rc : STORE_ERROR;
	}
	for (f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n",
		    fam[f].name, fam[f].help, fam[f].name, fam[f].type);
		for (i = 0; i < s.n; i++) {
			const struct outbox_metrics_row *r = &s.v[i];
			uint64_t v[] = {r->queued, r->sent, r->failed,
			    (uint64_t)r->oldest_age_s,
			    r->failing_for_s < 0 ? 0
			                         : (uint64_t)r->failing_for_s};

			/* endpoint names are [A-Za-z0-9_.-]: no escaping */
			evbuffer_add_printf(b,
			    "%s{endpoint=\"%s\"} %" PRIu64 "\n", fam[f].name,
			    r->name, v[f]);
		}
	}
	free(s.v);
	return STORE_OK;
}

struct outbox_alerts_arg {
	int64_t after_s;
	outbox_alert_cb cb;
	void *arg;
};

static int
outbox_alerts_cb(void *arg, const struct store_outbox_stats *st)
{
	struct outbox_alerts_arg *a = arg;
	struct health_alert al;

	if (st->failing_for_s < 0 || st->failing_for_s < a->after_s)
		return 0;
	memset(&al, 0, sizeof(al));
	snprintf(al.kind, sizeof(al.kind), "webhook_failing");
	snprintf(al.subject, sizeof(al.subject), "%s", st->name);
	snprintf(al.message, sizeof(al.message),
	    "event webhook %s failing for %" PRId64 " s (%s); %" PRIu64
	    " events queued",
	    st->name, st->failing_for_s, st->last_error, st->queued);
	a->cb(a->arg, &al);
	return 0;
}

int
outbox_metrics_alerts(
    struct store *st, int64_t after_s, outbox_alert_cb cb, void *arg)
{
	struct outbox_alerts_arg a = {after_s, cb, arg};

	return store_outbox_stats(st, outbox_alerts_cb, &a);
}
