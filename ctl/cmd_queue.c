/* cmd_queue.c - `sluicectl queue ...`: the fleet's queues.
 *
 *   queue list [--node N] [--state S] [--to DOMAIN] [--limit N]
 *   queue retry|hold|release|delete ID [--node N]
 *   queue flush [--node N]
 *   queue summary [--node N]
 *
 * list, retry... and flush are fleet commands: the controller stores one
 * command per target node (the named one, or every node heard from
 * recently), the nodes pick them up with their next heartbeat and report
 * the result with the one after; sluicectl polls the controller for the
 * results until they are all in or --timeout seconds pass.  summary needs
 * no command: it is the queue shape every node sends with its heartbeats. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "output.h"

#define QUEUE_POLL_MS     100
#define QUEUE_TIMEOUT_S   20
#define QUEUE_AGE_BUCKETS 7

struct queue_opts {
	const char *node;
	const char *state;
	const char *domain;
	const char *id;
	uint32_t limit;
	uint64_t timeout_s;
};

static void
queue_parse(int argc, char **argv, struct queue_opts *o, bool want_id,
    bool filters, const char *usage)
{
	uint64_t v;
	int a;

	memset(o, 0, sizeof(*o));
	o->timeout_s = QUEUE_TIMEOUT_S;
	for (a = 0; a < argc; a++) {
		const char *val = a + 1 < argc ? argv[a + 1] : NULL;

		if (strcmp(argv[a], "--node") == 0 && val != NULL)
			o->node = argv[++a];
		else if (strcmp(argv[a], "--timeout") == 0 && val != NULL &&
		         ctl_parse_u64(val, 3600, &v) == 0 && v > 0) {
			o->timeout_s = v;
			a++;
		} else if (filters && strcmp(argv[a], "--state") == 0 &&
		           val != NULL &&
		           (strcmp(val, "active") == 0 ||
		               strcmp(val, "deferred") == 0 ||
		               strcmp(val, "held") == 0)) {
			o->state = argv[++a];
		} else if (filters && strcmp(argv[a], "--to") == 0 &&
		           val != NULL) {
			o->domain = argv[++a];
			if (strchr(o->domain, '@') != NULL)
				o->domain = strrchr(o->domain, '@') + 1;
		} else if (filters && strcmp(argv[a], "--limit") == 0 &&
		           val != NULL && ctl_parse_u64(val, 1000, &v) == 0 &&
		           v > 0) {
			o->limit = (uint32_t)v;
			a++;
		} else if (want_id && o->id == NULL && argv[a][0] != '-')
			o->id = argv[a];
		else
			ctl_usage(usage);
	}
	if (want_id && o->id == NULL)
		ctl_usage(usage);
}

static void
queue_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static bool
queue_all_done(const Sluice__CommandsReply *c)
{
	size_t i;

	for (i = 0; i < c->n_commands; i++)
		if (!c->commands[i]->done)
			return false;
	return true;
}

/* Sends the command and waits for every node's result (or the timeout).
 * The reply is the last status; the caller frees it. */
static Sluice__AdminReply *
queue_run(struct ctl *ctl, Sluice__CommandKind kind, const struct queue_opts *o)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__QueueCommandRequest qc = SLUICE__QUEUE_COMMAND_REQUEST__INIT;
	Sluice__CommandIdsRequest ids = SLUICE__COMMAND_IDS_REQUEST__INIT;
	Sluice__AdminReply *r;
	uint64_t *idv;
	struct timespec t0, t;
	size_t i;

	qc.kind = kind;
	qc.node = (char *)(uintptr_t)(o->node ? o->node : "");
	qc.queue_id = (char *)(uintptr_t)(o->id ? o->id : "");
	qc.state = (char *)(uintptr_t)(o->state ? o->state : "");
	qc.domain = (char *)(uintptr_t)(o->domain ? o->domain : "");
	qc.limit = o->limit;
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_QUEUE_COMMAND;
	req.queue_command = &qc;
	r = admin_call(ctl, &req, NULL);
	if (r->body_case != SLUICE__ADMIN_REPLY__BODY_COMMANDS ||
	    r->commands == NULL)
		ctl_die("controller sent an unexpected reply to a queue "
		        "command");
	if ((idv = calloc(r->commands->n_commands + 1, sizeof(*idv))) == NULL)
		ctl_die("out of memory");
	for (i = 0; i < r->commands->n_commands; i++)
		idv[i] = r->commands->commands[i]->id;
	ids.ids = idv;
	ids.n_ids = r->commands->n_commands;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (queue_all_done(r->commands))
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= (time_t)o->timeout_s)
			break;
		queue_sleep_ms(QUEUE_POLL_MS);
		sluice__admin_reply__free_unpacked(r, NULL);
		memset(&req, 0, sizeof(req));
		sluice__admin_request__init(&req);
		req.body_case = SLUICE__ADMIN_REQUEST__BODY_COMMAND_STATUS;
		req.command_status = &ids;
		r = admin_call(ctl, &req, NULL);
		if (r->body_case != SLUICE__ADMIN_REPLY__BODY_COMMANDS ||
		    r->commands == NULL)
			ctl_die("controller sent an unexpected reply to a "
			        "command status");
	}
	free(idv);
	return r;
}

static const char *
queue_result_text(const Sluice__CommandStatus *c)
{
	if (!c->done)
		return "no answer yet (timed out waiting)";
	if (c->result == NULL)
		return "no result";
	return c->result->text;
}

static bool
queue_ok(const Sluice__CommandStatus *c)
{
	return c->done && c->result != NULL && c->result->ok;
}

static void
queue_json_results(struct json *j, const Sluice__CommandsReply *c)
{
	size_t i;

	json_array_begin(j, "nodes");
	for (i = 0; i < c->n_commands; i++) {
		json_object_begin(j, NULL);
		json_str(j, "node", c->commands[i]->node);
		json_uint(j, "command", c->commands[i]->id);
		json_bool(j, "done", c->commands[i]->done);
		json_bool(j, "ok", queue_ok(c->commands[i]));
		json_str(j, "text", queue_result_text(c->commands[i]));
		if (c->commands[i]->result != NULL)
			json_uint(j, "total", c->commands[i]->result->total);
		json_object_end(j);
	}
	json_array_end(j);
}

int
cmd_queue_list(struct ctl *ctl, int argc, char **argv)
{
	static const char usage[] =
	    "queue list [--node N] [--state active|deferred|held] "
	    "[--to DOMAIN] [--limit N] [--timeout S]";
	struct queue_opts o;
	Sluice__AdminReply *r;
	const Sluice__CommandsReply *c;
	struct table t;
	struct json j;
	char age[16], size[24], to[96], next[16];
	int64_t now = (int64_t)time(NULL);
	uint64_t total = 0, shown = 0;
	size_t i, k;
	int rv = 0;

	queue_parse(argc, argv, &o, false, true, usage);
	r = queue_run(ctl, SLUICE__COMMAND_KIND__CMD_LIST, &o);
	c = r->commands;
	for (i = 0; i < c->n_commands; i++) {
		if (!queue_ok(c->commands[i]))
			rv = 1;
		else {
			total += c->commands[i]->result->total;
			shown += c->commands[i]->result->n_messages;
		}
	}
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_uint(&j, "total", total);
		json_array_begin(&j, "messages");
		for (i = 0; i < c->n_commands; i++) {
			const Sluice__CommandResult *res =
			    c->commands[i]->result;
			for (k = 0; res != NULL && k < res->n_messages; k++) {
				const Sluice__QueuedMessage *m =
				    res->messages[k];
				size_t x;
				json_object_begin(&j, NULL);
				json_str(&j, "node", c->commands[i]->node);
				json_str(&j, "queue_id", m->queue_id);
				json_str(&j, "state", m->state);
				json_str(&j, "sender", m->sender);
				json_array_begin(&j, "recipients");
				for (x = 0; x < m->n_recipients; x++)
					json_str(&j, NULL, m->recipients[x]);
				json_array_end(&j);
				json_uint(&j, "size", m->size);
				json_int(&j, "committed_at", m->committed_at);
				json_int(
				    &j, "next_attempt_at", m->next_attempt_at);
				json_object_end(&j);
			}
		}
		json_array_end(&j);
		queue_json_results(&j, c);
		json_object_end(&j);
		sluice__admin_reply__free_unpacked(r, NULL);
		return rv;
	}
	if (shown > 0) {
		table_init(&t, 7, "NODE", "QUEUE-ID", "STATE", "AGE", "RETRY",
		    "SIZE", "FROM -> TO");
		for (i = 0; i < c->n_commands; i++) {
			const Sluice__CommandResult *res =
			    c->commands[i]->result;
			for (k = 0; res != NULL && k < res->n_messages; k++) {
				const Sluice__QueuedMessage *m =
				    res->messages[k];
				fmt_duration(
				    now - m->committed_at, age, sizeof(age));
				if (strcmp(m->state, "deferred") == 0)
					fmt_duration(m->next_attempt_at - now,
					    next, sizeof(next));
				else
					snprintf(next, sizeof(next), "-");
				snprintf(
				    size, sizeof(size), "%" PRIu64, m->size);
				snprintf(to, sizeof(to), "<%s> -> %s%s",
				    m->sender,
				    m->n_recipients ? m->recipients[0] : "",
				    m->n_recipients > 1 ? " +" : "");
				table_row(&t, c->commands[i]->node, m->queue_id,
				    m->state, age, next, size, to);
			}
		}
		table_print(&t, stdout);
	}
	printf("%s%" PRIu64 " message%s queued", shown ? "\n" : "", total,
	    total == 1 ? "" : "s");
	if (shown < total)
		printf(" (%" PRIu64 " shown)", shown);
	printf(
	    " on %zu node%s\n", c->n_commands, c->n_commands == 1 ? "" : "s");
	for (i = 0; i < c->n_commands; i++)
		if (!queue_ok(c->commands[i]))
			printf("%s: %s\n", c->commands[i]->node,
			    queue_result_text(c->commands[i]));
	sluice__admin_reply__free_unpacked(r, NULL);
	return rv;
}

/* retry, hold, release, delete: the node that holds the id answers ok,
 * the others "not queued on this node". */
static int
queue_one(struct ctl *ctl, int argc, char **argv, Sluice__CommandKind kind,
    const char *verb)
{
	struct queue_opts o;
	Sluice__AdminReply *r;
	const Sluice__CommandsReply *c;
	char usage[96], why[512];
	struct json j;
	size_t i, nok = 0, pending = 0;

	snprintf(
	    usage, sizeof(usage), "queue %s ID [--node N] [--timeout S]", verb);
	queue_parse(argc, argv, &o, true, false, usage);
	r = queue_run(ctl, kind, &o);
	c = r->commands;
	for (i = 0; i < c->n_commands; i++) {
		nok += queue_ok(c->commands[i]);
		pending += !c->commands[i]->done;
	}
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_str(&j, "queue_id", o.id);
		json_str(&j, "action", verb);
		json_bool(&j, "ok", nok > 0);
		queue_json_results(&j, c);
		json_object_end(&j);
		sluice__admin_reply__free_unpacked(r, NULL);
		return nok > 0 ? 0 : 1;
	}
	for (i = 0; i < c->n_commands; i++)
		if (queue_ok(c->commands[i]))
			printf("%s: %s on %s\n", o.id,
			    queue_result_text(c->commands[i]),
			    c->commands[i]->node);
	if (nok > 0) {
		sluice__admin_reply__free_unpacked(r, NULL);
		return 0;
	}
	/* One line: the most useful reason (the reply is freed first: exit
	 * leaves nothing behind for the leak checker). */
	snprintf(why, sizeof(why), "%s is not queued on any node", o.id);
	for (i = 0; i < c->n_commands; i++)
		if (c->commands[i]->done && c->commands[i]->result != NULL &&
		    strcmp(c->commands[i]->result->text,
		        "not queued on this node") != 0) {
			snprintf(why, sizeof(why), "%s on %s: %s", o.id,
			    c->commands[i]->node, c->commands[i]->result->text);
			pending = 0;
			break;
		}
	if (pending > 0)
		snprintf(why, sizeof(why),
		    "%s: not found on the nodes that answered; %zu node%s "
		    "did not answer within %" PRIu64 "s",
		    o.id, pending, pending == 1 ? "" : "s", o.timeout_s);
	sluice__admin_reply__free_unpacked(r, NULL);
	ctl_die("%s", why);
}

int
cmd_queue_retry(struct ctl *ctl, int argc, char **argv)
{
	return queue_one(
	    ctl, argc, argv, SLUICE__COMMAND_KIND__CMD_RETRY, "retry");
}

int
cmd_queue_hold(struct ctl *ctl, int argc, char **argv)
{
	return queue_one(
	    ctl, argc, argv, SLUICE__COMMAND_KIND__CMD_HOLD, "hold");
}

int
cmd_queue_release(struct ctl *ctl, int argc, char **argv)
{
	return queue_one(
	    ctl, argc, argv, SLUICE__COMMAND_KIND__CMD_RELEASE, "release");
}

int
cmd_queue_delete(struct ctl *ctl, int argc, char **argv)
{
	return queue_one(
	    ctl, argc, argv, SLUICE__COMMAND_KIND__CMD_DELETE, "delete");
}

int
cmd_queue_flush(struct ctl *ctl, int argc, char **argv)
{
	struct queue_opts o;
	Sluice__AdminReply *r;
	const Sluice__CommandsReply *c;
	struct json j;
	size_t i;
	int rv = 0;

	queue_parse(argc, argv, &o, false, false,
	    "queue flush [--node N] [--timeout S]");
	r = queue_run(ctl, SLUICE__COMMAND_KIND__CMD_FLUSH, &o);
	c = r->commands;
	for (i = 0; i < c->n_commands; i++)
		if (!queue_ok(c->commands[i]))
			rv = 1;
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_bool(&j, "ok", rv == 0);
		queue_json_results(&j, c);
		json_object_end(&j);
	} else
		for (i = 0; i < c->n_commands; i++)
			printf("%s: %s\n", c->commands[i]->node,
			    queue_result_text(c->commands[i]));
	sluice__admin_reply__free_unpacked(r, NULL);
	return rv;
}

/* ------------------------------------------------------------ summary */

int
cmd_queue_summary(struct ctl *ctl, int argc, char **argv)
{
	static const char *const heads[QUEUE_AGE_BUCKETS] = {
	    "<5m", "<10m", "<20m", "<40m", "<80m", "<160m", "older"};
	Sluice__AdminReply *r;
	const Sluice__NodeListReply *l;
	struct table t;
	struct json j;
	struct queue_opts o;
	char cell[QUEUE_AGE_BUCKETS + 3][24];
	uint64_t tot[QUEUE_AGE_BUCKETS + 3];
	size_t i, k, b, rows = 0;

	queue_parse(argc, argv, &o, false, false, "queue summary [--node N]");
	r = admin_node_list(ctl);
	l = r->node_list;
	if (ctl->json) {
		json_init(&j, stdout);
		json_object_begin(&j, NULL);
		json_array_begin(&j, "nodes");
		for (i = 0; i < l->n_nodes; i++) {
			const Sluice__QueueMetrics *m = l->nodes[i]->metrics;
			if (o.node != NULL && strcmp(o.node, l->nodes[i]->name))
				continue;
			json_object_begin(&j, NULL);
			json_str(&j, "node", l->nodes[i]->name);
			json_uint(&j, "messages", m ? m->messages : 0);
			json_array_begin(&j, "domains");
			for (k = 0; m != NULL && k < m->n_shape; k++) {
				const Sluice__QueueShape *s = m->shape[k];
				json_object_begin(&j, NULL);
				json_str(&j, "domain", s->domain);
				json_uint(&j, "messages", s->messages);
				json_uint(&j, "deferred", s->deferred);
				json_uint(&j, "held", s->held);
				json_array_begin(&j, "age_buckets");
				for (b = 0; b < s->n_age_buckets; b++)
					json_uint(&j, NULL, s->age_buckets[b]);
				json_array_end(&j);
				json_object_end(&j);
			}
			json_array_end(&j);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
		sluice__admin_reply__free_unpacked(r, NULL);
		return 0;
	}
	table_init(&t, 11, "NODE", "DOMAIN", "TOTAL", "DEFER", "HELD", heads[0],
	    heads[1], heads[2], heads[3], heads[4], "80m+");
	memset(tot, 0, sizeof(tot));
	for (i = 0; i < l->n_nodes; i++) {
		const Sluice__QueueMetrics *m = l->nodes[i]->metrics;
		if (o.node != NULL && strcmp(o.node, l->nodes[i]->name) != 0)
			continue;
		for (k = 0; m != NULL && k < m->n_shape; k++) {
			const Sluice__QueueShape *s = m->shape[k];
			uint64_t v[QUEUE_AGE_BUCKETS + 3];
			v[0] = s->messages;
			v[1] = s->deferred;
			v[2] = s->held;
			for (b = 0; b < QUEUE_AGE_BUCKETS; b++)
				v[3 + b] = b < s->n_age_buckets
				               ? s->age_buckets[b]
				               : 0;
			/* the last two buckets share a column: 80 columns */
			v[3 + 5] += v[3 + 6];
			for (b = 0; b < QUEUE_AGE_BUCKETS + 2; b++) {
				tot[b] += v[b];
				snprintf(
				    cell[b], sizeof(cell[b]), "%" PRIu64, v[b]);
			}
			table_row(&t, l->nodes[i]->name, s->domain, cell[0],
			    cell[1], cell[2], cell[3], cell[4], cell[5],
			    cell[6], cell[7], cell[8]);
			rows++;
		}
	}
	if (rows == 0) {
		table_print(&t, stdout);
		printf("(the queues are empty)\n");
	} else {
		for (b = 0; b < QUEUE_AGE_BUCKETS + 2; b++)
			snprintf(cell[b], sizeof(cell[b]), "%" PRIu64, tot[b]);
		table_row(&t, "TOTAL", "", cell[0], cell[1], cell[2], cell[3],
		    cell[4], cell[5], cell[6], cell[7], cell[8]);
		table_print(&t, stdout);
		printf("(age since arrival; up to 20 domains per node)\n");
	}
	sluice__admin_reply__free_unpacked(r, NULL);
	return 0;
}
