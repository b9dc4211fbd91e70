/* cmd_status.c - `sluicectl status`: the fleet at a glance, the first
 * thing an operator runs.  One admin call (status: every node's last
 * heartbeat and per-minute history, plus the open alerts), printed to fit
 * an 80-column terminal: a summary line, one row per node, the open
 * alerts.  `--json` gives the same as one document. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "output.h"

#define STATUS_HOPS_WIDTH 22

/* Appends "WORD a,b" for the open (or the throttled) hops, after a
 * space when buf is not empty; returns the new end. */
static size_t
status_hops_add(const Sluice__QueueMetrics *m, char *buf, size_t len,
    size_t off, const char *word, bool throttled)
{
	bool first = true;
	size_t i;

	for (i = 0; i < m->n_hops && off + 1 < len; i++) {
		if (throttled ? !m->hops[i]->throttled
		              : !m->hops[i]->circuit_open)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s%s",
		    first && off > 0 ? " " : "", first ? word : ",",
		    m->hops[i]->name);
		first = false;
	}
	return off < len ? off : len - 1;
}

/* "ok 3" when every reported hop is closed and unthrottled, else
 * "OPEN a,b" and/or "PAUSED c" (throttled: issue 10), cut to fit; "-"
 * when the node has reported no hop yet. */
static void
status_hops(const Sluice__QueueMetrics *m, char *buf, size_t len)
{
	size_t i, off, nbad = 0;

	if (m == NULL || m->n_hops == 0) {
		snprintf(buf, len, "-");
		return;
	}
	for (i = 0; i < m->n_hops; i++)
		nbad += m->hops[i]->circuit_open || m->hops[i]->throttled;
	if (nbad == 0) {
		snprintf(buf, len, "ok %zu", m->n_hops);
		return;
	}
	buf[0] = '\0';
	off = status_hops_add(m, buf, len, 0, "OPEN ", false);
	status_hops_add(m, buf, len, off, "PAUSED ", true);
	if (strlen(buf) > STATUS_HOPS_WIDTH && len > STATUS_HOPS_WIDTH)
		snprintf(buf + STATUS_HOPS_WIDTH - 3, 4, "...");
}

/* Hops paused fleet-wide (issue 10): one line each, from what the up
 * nodes report (the longest time left, the node that met the throttle). */
static void
status_pauses(const Sluice__NodeListReply *l)
{
	const Sluice__HopMetrics *seen[64];
	size_t i, k, s, nseen = 0;

	for (i = 0; i < l->n_nodes; i++) {
		const Sluice__QueueMetrics *m = l->nodes[i]->metrics;

		if (m == NULL ||
		    (strcmp(l->nodes[i]->state, "up") != 0 &&
		        strcmp(l->nodes[i]->state, "draining") != 0))
			continue;
		for (k = 0; k < m->n_hops; k++) {
			const Sluice__HopMetrics *h = m->hops[k];

			if (!h->fleet_paused)
				continue;
			for (s = 0; s < nseen; s++)
				if (strcmp(seen[s]->name, h->name) == 0)
					break;
			if (s == nseen) {
				if (nseen == 64)
					continue;
				seen[nseen++] = h;
			} else if (h->throttled_for_s >
			           seen[s]->throttled_for_s)
				seen[s] = h;
		}
	}
	if (nseen > 0)
		printf("\n");
	for (s = 0; s < nseen; s++) {
		printf("hop %s PAUSED fleet-wide, %" PRIu32 "s left",
		    seen[s]->name, seen[s]->throttled_for_s);
		if (seen[s]->throttle_window_s > 0)
			printf(" (provider window %" PRIu32 "s)",
			    seen[s]->throttle_window_s);
		printf(": throttled on %s\n", seen[s]->fleet_paused_by);
	}
}

void
json_alert(struct json *j, const Sluice__Alert *a)
{
	json_object_begin(j, NULL);
	json_uint(j, "id", a->id);
	json_str(j, "kind", a->kind);
	json_str(j, "subject", a->subject);
	json_str(j, "message", a->message);
	json_int(j, "raised_at", a->raised_at);
	if (a->cleared_at != 0)
		json_int(j, "cleared_at", a->cleared_at);
	else
		json_null(j, "cleared_at");
	json_object_end(j);
}

static void
status_print(const Sluice__StatusReply *st)
{
	const Sluice__NodeListReply *l = st->nodes;
	static const char *const states[] = {
	    "up", "draining", "drained", "silent", "new"};
	struct table t;
	char pol[32], q[24], old[16], in[16], out[16], hops[64], since[16];
	size_t i, k, c;
	int64_t now = (int64_t)time(NULL);

	printf("fleet: %zu node%s", l->n_nodes, l->n_nodes == 1 ? "" : "s");
	for (k = 0, c = 0; k < sizeof(states) / sizeof(states[0]); k++) {
		size_t n = 0;
		for (i = 0; i < l->n_nodes; i++)
			n += strcmp(l->nodes[i]->state, states[k]) == 0;
		if (n > 0)
			printf("%s%zu %s", c++ ? ", " : " (", n, states[k]);
	}
	printf("%s; policy version %" PRIu64 "; %zu open alert%s\n",
	    c ? ")" : "", l->latest_policy_version, st->n_alerts,
	    st->n_alerts == 1 ? "" : "s");
	if (l->n_nodes > 0) {
		printf("\n");
		table_init(&t, 8, "NODE", "STATE", "POLICY", "QUEUE", "OLDEST",
		    "IN/MIN", "OUT/MIN", "HOPS");
		for (i = 0; i < l->n_nodes; i++) {
			const Sluice__NodeStatus *n = l->nodes[i];
			const Sluice__QueueMetrics *m = n->metrics;

			if (n->last_heartbeat_at == 0)
				snprintf(pol, sizeof(pol), "-");
			else
				snprintf(pol, sizeof(pol), "%" PRIu64 "%s",
				    n->policy_version,
				    n->policy_version !=
				            l->latest_policy_version
				        ? " DRIFT"
				        : "");
			snprintf(q, sizeof(q), "%" PRIu64, m ? m->messages : 0);
			if (m != NULL && m->messages > 0)
				fmt_duration(
				    (int64_t)m->oldest_age_s, old, sizeof(old));
			else
				snprintf(old, sizeof(old), "-");
			snprintf(
			    in, sizeof(in), "%" PRIu64, n->accepted_per_min);
			snprintf(
			    out, sizeof(out), "%" PRIu64, n->delivered_per_min);
			status_hops(m, hops, sizeof(hops));
			table_row(
			    &t, n->name, n->state, pol, q, old, in, out, hops);
		}
		table_print(&t, stdout);
		status_pauses(l);
	}
	if (st->n_alerts == 0)
		return;
	printf("\n");
	table_init(&t, 3, "ALERT", "SUBJECT", "SINCE");
	for (i = 0; i < st->n_alerts; i++) {
		fmt_ago(st->alerts[i]->raised_at, now, since, sizeof(since));
		table_row(
		    &t, st->alerts[i]->kind, st->alerts[i]->subject, since);
	}
	table_print(&t, stdout);
	printf("(details: sluicectl alerts)\n");
}

int
cmd_status(struct ctl *ctl, int argc, char **argv)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__Empty empty = SLUICE__EMPTY__INIT;
	Sluice__AdminReply *r;
	const Sluice__StatusReply *st;
	struct json j;
	size_t i;

	(void)argv;
	if (argc != 0)
		ctl_usage("status");
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_STATUS;
	req.status = &empty;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_STATUS ||
	    r->status == NULL || r->status->nodes == NULL)
		ctl_die("controller sent an unexpected reply to status");
	st = r->status;
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "latest_policy_version",
		    st->nodes->latest_policy_version);
		json_array_begin(&j, "nodes");
		for (i = 0; i < st->nodes->n_nodes; i++)
			json_node(&j, st->nodes->nodes[i],
			    st->nodes->latest_policy_version);
		json_array_end(&j);
		json_array_begin(&j, "alerts");
		for (i = 0; i < st->n_alerts; i++)
			json_alert(&j, st->alerts[i]);
		json_array_end(&j);
		json_object_end(&j);
	} else
		status_print(st);
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}
