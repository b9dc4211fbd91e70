/* cmd_trace.c - `sluicectl trace ID` and `sluicectl log ...`: the delivery
 * record the controller keeps in PostgreSQL, fleet-wide.  A trace is every
 * event of one message (by queue id or Message-ID) across every node, in
 * order: received, each delivery attempt with hop and reply, the outcome. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "output.h"

/* fmt_time() to the millisecond: attempts are often in the same second. */
static void
fmt_ms(int64_t at_ms, char *buf, size_t len)
{
	size_t n;

	fmt_time(at_ms / 1000, buf, len);
	n = strlen(buf);
	snprintf(buf + n, len - n, ".%03d", (int)(at_ms % 1000));
}

static void
json_event(struct json *j, const Sluice__EventRecord *r)
{
	const Sluice__Event *e = r->event;
	size_t i;

	json_object_begin(j, NULL);
	json_str(j, "node", r->node);
	json_uint(j, "seq", e->seq);
	json_int(j, "at_ms", e->at_ms);
	json_str(j, "kind", e->kind);
	json_str(j, "queue_id", e->queue_id);
	json_str(j, "message_id", e->message_id);
	json_str(j, "client", e->client);
	json_str(j, "auth_user", e->auth_user);
	json_str(j, "sender", e->sender);
	json_array_begin(j, "recipients");
	for (i = 0; i < e->n_recipients; i++)
		json_str(j, NULL, e->recipients[i]);
	json_array_end(j);
	json_str(j, "recipient", e->recipient);
	json_uint(j, "size", e->size);
	json_str(j, "hop", e->hop);
	json_str(j, "host", e->host);
	json_uint(j, "code", e->code);
	json_str(j, "enhanced", e->enhanced);
	json_str(j, "reply", e->reply);
	json_uint(j, "duration_ms", e->duration_ms);
	json_bool(j, "tls", e->tls);
	json_str(j, "dkim", e->dkim);
	json_str(j, "provider_id", e->provider_id);
	json_object_end(j);
}

/* Peer text reaches the terminal: control characters (an escape
 * sequence in an upstream's reply) are shown as '?', never sent raw.
 * Octets that were not UTF-8 arrive escaped already (\xHH, by the
 * controller's store). */
static void
trace_escape_controls(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* One line of detail per kind: who sent it, or where it went and what the
 * other side said. */
static void
event_detail(const Sluice__Event *e, char *buf, size_t len)
{
	if (strcmp(e->kind, "received") == 0)
		snprintf(buf, len,
		    "from=<%s> nrcpt=%zu size=%" PRIu64
		    " client=%s%s%s%s%s%s%s%s%s",
		    e->sender, e->n_recipients, e->size, e->client,
		    e->auth_user[0] ? " user=" : "", e->auth_user,
		    e->message_id[0] ? " msgid=" : "", e->message_id,
		    e->dkim[0] ? " dkim=" : "", e->dkim, e->reply[0] ? " " : "",
		    e->reply);
	else if (e->reply[0] != '\0' && (strcmp(e->kind, "promoted") == 0 ||
	                                    strcmp(e->kind, "withdrawn") == 0))
		snprintf(buf, len, "%s", e->reply); /* issue 13 */
	else if (strcmp(e->kind, "handed_off") == 0)
		/* drain --handoff: "250 2.0.0 handed off to n2 as ID" */
		snprintf(buf, len, "hop=%s %.1fs %s", e->hop[0] ? e->hop : "-",
		    (double)e->duration_ms / 1000.0, e->reply);
	else if (strncmp(e->kind, "provider_", 9) == 0 ||
	         strcmp(e->kind, "complaint") == 0 ||
	         strcmp(e->kind, "opened") == 0 ||
	         strcmp(e->kind, "clicked") == 0)
		/* issue 16: what the provider reported after our 250 */
		snprintf(buf, len, "provider=%s hook=%s%s%s %s", e->host,
		    e->hop, e->provider_id[0] ? " id=" : "", e->provider_id,
		    e->reply);
	else if (e->provider_id[0] != '\0')
		snprintf(buf, len, "hop=%s%s%s%s %.1fs id=%s %s",
		    e->hop[0] ? e->hop : "-", e->host[0] ? " host=" : "",
		    e->host, e->tls ? " tls" : "",
		    (double)e->duration_ms / 1000.0, e->provider_id, e->reply);
	else
		snprintf(buf, len, "hop=%s%s%s%s %.1fs %s",
		    e->hop[0] ? e->hop : "-", e->host[0] ? " host=" : "",
		    e->host, e->tls ? " tls" : "",
		    (double)e->duration_ms / 1000.0, e->reply);
	trace_escape_controls(buf);
}

static void
print_events(struct ctl *ctl, const Sluice__EventsReply *ev, bool by_msg)
{
	struct table t;
	struct json j;
	char when[40], detail[1200];
	size_t i;

	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_array_begin(&j, "events");
		for (i = 0; i < ev->n_events; i++)
			json_event(&j, ev->events[i]);
		json_array_end(&j);
		json_object_end(&j);
		return;
	}
	if (by_msg)
		table_init(
		    &t, 5, "TIME", "NODE", "EVENT", "RECIPIENT", "DETAIL");
	else
		table_init(&t, 6, "TIME", "NODE", "QUEUE-ID", "EVENT",
		    "RECIPIENT", "DETAIL");
	for (i = 0; i < ev->n_events; i++) {
		const Sluice__Event *e = ev->events[i]->event;
		char rcpt[600];

		fmt_ms(e->at_ms, when, sizeof(when));
		event_detail(e, detail, sizeof(detail));
		if (e->recipient[0] != '\0')
			snprintf(rcpt, sizeof(rcpt), "<%s>", e->recipient);
		else if (e->n_recipients > 0)
			snprintf(rcpt, sizeof(rcpt), "<%s>%s", e->recipients[0],
			    e->n_recipients > 1 ? " ..." : "");
		else
			snprintf(rcpt, sizeof(rcpt), "-");
		if (by_msg)
			table_row(&t, when, ev->events[i]->node, e->kind, rcpt,
			    detail);
		else
			table_row(&t, when, ev->events[i]->node, e->queue_id,
			    e->kind, rcpt, detail);
	}
	table_print(&t, stdout);
}

int
cmd_trace(struct ctl *ctl, int argc, char **argv)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__TraceRequest tr = SLUICE__TRACE_REQUEST__INIT;
	Sluice__AdminReply *r;

	if (argc != 1 || argv[0][0] == '-')
		ctl_usage("trace QUEUE-ID|MESSAGE-ID");
	tr.id = argv[0];
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_TRACE;
	req.trace = &tr;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_EVENTS ||
	    r->events == NULL)
		ctl_die("controller sent an unexpected reply to trace");
	if (r->events->n_events == 0 && !ctl->json) {
		sluice__admin_reply__free_unpacked(r, NULL);
		ctl_die("no message with queue id or Message-ID '%s' in the "
		        "delivery record",
		    argv[0]);
	}
	print_events(ctl, r->events, true);
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 when malformed. */
static int64_t
parse_duration(const char *s)
{
	uint64_t v;
	char num[32];
	size_t n = strlen(s);
	int64_t mult = 1;

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'd':
		mult *= 24;
		/* FALLTHROUGH */
	case 'h':
		mult *= 60;
		/* FALLTHROUGH */
	case 'm':
		mult *= 60;
		/* FALLTHROUGH */
	case 's':
		num[n - 1] = '\0';
		break;
	default:
		break;
	}
	if (ctl_parse_u64(num, (uint64_t)INT64_MAX / 86400, &v) == -1)
		return -1;
	return (int64_t)v * mult;
}

int
cmd_log(struct ctl *ctl, int argc, char **argv)
{
	static const char *const usage =
	    "log [--from SENDER] [--to RECIPIENT] [--status KIND] "
	    "[--since 1h] [--node NAME] [--limit N]";
	static const char *const kinds[] = {"received", "delivered", "deferred",
	    "bounced", "expired", "promoted", "withdrawn", "handed_off",
	    /* issue 16: what providers reported afterwards */
	    "provider_delivered", "provider_bounced", "provider_deferred",
	    "provider_dropped", "complaint", "opened", "clicked", NULL};
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__LogRequest lr = SLUICE__LOG_REQUEST__INIT;
	Sluice__AdminReply *r;
	uint64_t lim;
	int i, k;

	for (i = 0; i < argc; i++) {
		const char *opt = argv[i],
		           *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (val == NULL)
			ctl_usage(usage);
		if (strcmp(opt, "--from") == 0)
			lr.sender = argv[++i];
		else if (strcmp(opt, "--to") == 0)
			lr.recipient = argv[++i];
		else if (strcmp(opt, "--node") == 0)
			lr.node = argv[++i];
		else if (strcmp(opt, "--status") == 0) {
			for (k = 0; kinds[k] != NULL; k++)
				if (strcmp(kinds[k], val) == 0)
					break;
			if (kinds[k] == NULL)
				ctl_die("--status '%s': use received, "
				        "delivered, deferred, bounced, "
				        "expired, promoted, withdrawn, "
				        "handed_off, "
				        "provider_delivered, provider_bounced, "
				        "provider_deferred, provider_dropped, "
				        "complaint, opened or clicked",
				    val);
			lr.status = argv[++i];
		} else if (strcmp(opt, "--since") == 0) {
			if ((lr.since_s = parse_duration(val)) <= 0)
				ctl_die("--since '%s': use a duration such as "
				        "90s, 15m, 1h or 7d",
				    val);
			i++;
		} else if (strcmp(opt, "--limit") == 0) {
			if (ctl_parse_u64(val, 100000, &lim) == -1 || lim == 0)
				ctl_die("--limit '%s': use 1..100000", val);
			lr.limit = (uint32_t)lim;
			i++;
		} else
			ctl_usage(usage);
	}
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_LOG;
	req.log = &lr;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_EVENTS ||
	    r->events == NULL)
		ctl_die("controller sent an unexpected reply to log");
	print_events(ctl, r->events, false);
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}
