/* console_api.c - the web console's JSON endpoints.  Each builds an
 * AdminRequest and runs it through api_admin_handle, the function
 * sluicectl's admin endpoint runs (so its checks and its redaction of
 * secrets hold), then writes the AdminReply as JSON (console_json.c).
 * Viewers read; only operators act on queues.  Actions are written to the
 * audit history with the operator's name.  Console thread only. */
#include "console_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_console.h"

#define CONSOLE_IDS_MAX  256
#define CONSOLE_LIST_MAX 1000

/* Runs req through the admin handler as this operator; NULL (and the
 * error reply sent) on failure, else the reply to free. */
static Sluice__AdminReply *
console_call(struct console_req *r, const Sluice__AdminRequest *req)
{
	struct rpc_peer peer;
	Sluice__AdminReply *rep;
	uint8_t *in, *out = NULL;
	size_t inlen, outlen = 0;

	memset(&peer, 0, sizeof(peer));
	peer.uid = -1;
	/* Logs say by=console alice@127.0.0.1. */
	snprintf(peer.addr, sizeof(peer.addr), "console %.30s@%.40s", r->name,
	    r->peer);
	if ((in = rpc_pack(&req->base, &inlen)) == NULL) {
		console_reply_error(r, 500, "internal", "out of memory");
		return NULL;
	}
	api_admin_handle(&r->c->api, in, inlen, &peer, &out, &outlen);
	free(in);
	rep =
	    out != NULL ? sluice__admin_reply__unpack(NULL, outlen, out) : NULL;
	free(out);
	if (rep == NULL) {
		console_reply_error(r, 500, "internal",
		    "The controller failed to run the request; see its log.");
		return NULL;
	}
	if (rep->error != NULL) {
		console_reply_error(r, console_status_of(rep->error->code),
		    rep->error->code, rep->error->message);
		sluice__admin_reply__free_unpacked(rep, NULL);
		return NULL;
	}
	return rep;
}

/* The reply as JSON, then freed. */
static void
console_send(struct console_req *r, Sluice__AdminReply *rep)
{
	struct console_buf b = {0};

	console_json_msg(&b, &rep->base);
	console_reply_json(r, 200, &b);
	console_buf_free(&b);
	sluice__admin_reply__free_unpacked(rep, NULL);
}

static void
console_run(struct console_req *r, const Sluice__AdminRequest *req)
{
	Sluice__AdminReply *rep;

	if ((rep = console_call(r, req)) != NULL)
		console_send(r, rep);
}

static const char *
console_param(struct console_req *r, const char *key)
{
	const char *v = evhttp_find_header(
	    evhttp_request_get_command(r->req) == EVHTTP_REQ_POST ? &r->form
	                                                          : &r->query,
	    key);

	return v != NULL ? v : "";
}

/* A non-negative number up to max, def when absent; -1 if bad. */
static int
console_number(struct console_req *r, const char *key, uint64_t def,
    uint64_t max, uint64_t *out)
{
	const char *v = console_param(r, key);
	char *end;

	*out = def;
	if (v[0] == '\0')
		return 0;
	if (!isdigit((unsigned char)v[0]))
		return -1;
	*out = strtoull(v, &end, 10);
	if (*end != '\0' || *out > max)
		return -1;
	return 0;
}

/* "90", "30m", "1h", "2d" as seconds; -1 if bad. */
static int64_t
console_since(const char *v)
{
	char *end;
	long long n;

	if (v[0] == '\0')
		return 0;
	if (!isdigit((unsigned char)v[0]))
		return -1;
	n = strtoll(v, &end, 10);
	if (n < 0 || n > 100LL * 366 * 86400)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return n;
	if (strcmp(end, "m") == 0)
		return n * 60;
	if (strcmp(end, "h") == 0)
		return n * 3600;
	if (strcmp(end, "d") == 0)
		return n * 86400;
	return -1;
}

/* Queue ids are the node's (hex); anything else is refused here. */
static bool
console_is_queue_id(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) || i >= 64)
			return false;
	return i > 0;
}

static void
console_bad(struct console_req *r, const char *msg)
{
	console_reply_error(r, 400, "bad_request", msg);
}

static void
console_get_status(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__Empty empty = SLUICE__EMPTY__INIT;

	req.body_case = SLUICE__ADMIN_REQUEST__BODY_STATUS;
	req.status = &empty;
	console_run(r, &req);
}

static void
console_get_alerts(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__AlertsRequest a = SLUICE__ALERTS_REQUEST__INIT;
	uint64_t limit;

	if (console_number(r, "limit", 50, 1000, &limit) == -1) {
		console_bad(r, "limit: a number up to 1000.");
		return;
	}
	a.limit = (uint32_t)limit;
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_ALERTS;
	req.alerts = &a;
	console_run(r, &req);
}

static void
console_get_policy(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__PolicyGetRequest g = SLUICE__POLICY_GET_REQUEST__INIT;
	uint64_t v;

	if (console_number(r, "version", 0, INT64_MAX, &v) == -1) {
		console_bad(r, "version: a number.");
		return;
	}
	g.version = v;
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_POLICY_GET;
	req.policy_get = &g;
	console_run(r, &req);
}

static void
console_get_history(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__Empty empty = SLUICE__EMPTY__INIT;

	req.body_case = SLUICE__ADMIN_REQUEST__BODY_POLICY_HISTORY;
	req.policy_history = &empty;
	console_run(r, &req);
}

static void
console_get_audit(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__ConsoleRequest cr = SLUICE__CONSOLE_REQUEST__INIT;
	uint64_t limit;

	if (console_number(r, "limit", 100, 1000, &limit) == -1) {
		console_bad(r, "limit: a number up to 1000.");
		return;
	}
	cr.op = (char *)(uintptr_t) "audit";
	cr.limit = (uint32_t)limit;
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_CONSOLE;
	req.console = &cr;
	console_run(r, &req);
}

static void
console_get_trace(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__TraceRequest t = SLUICE__TRACE_REQUEST__INIT;

	t.id = (char *)(uintptr_t)console_param(r, "id");
	if (strlen(t.id) > 998) {
		console_bad(r, "id: at most 998 characters.");
		return;
	}
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_TRACE;
	req.trace = &t;
	console_run(r, &req);
}

static void
console_get_log(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__LogRequest l = SLUICE__LOG_REQUEST__INIT;
	uint64_t limit;
	int64_t since;

	if ((since = console_since(console_param(r, "since"))) < 0) {
		console_bad(r, "since: seconds, or 30m, 1h, 2d.");
		return;
	}
	if (console_number(r, "limit", 100, 10000, &limit) == -1) {
		console_bad(r, "limit: a number up to 10000.");
		return;
	}
	l.sender = (char *)(uintptr_t)console_param(r, "sender");
	l.recipient = (char *)(uintptr_t)console_param(r, "recipient");
	l.status = (char *)(uintptr_t)console_param(r, "status");
	l.node = (char *)(uintptr_t)console_param(r, "node");
	if (strlen(l.sender) > 320 || strlen(l.recipient) > 320 ||
	    strlen(l.status) > 32 || strlen(l.node) > 64) {
		console_bad(r, "A filter is too long.");
		return;
	}
	l.since_s = since;
	l.limit = (uint32_t)limit;
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_LOG;
	req.log = &l;
	console_run(r, &req);
}

/* POST /api/queue/list: a CMD_LIST to one node or all; any role. */
static void
console_post_list(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__QueueCommandRequest q = SLUICE__QUEUE_COMMAND_REQUEST__INIT;
	uint64_t limit;

	if (console_number(r, "limit", 100, CONSOLE_LIST_MAX, &limit) == -1) {
		console_bad(r, "limit: a number up to 1000.");
		return;
	}
	q.kind = SLUICE__COMMAND_KIND__CMD_LIST;
	q.node = (char *)(uintptr_t)console_param(r, "node");
	q.state = (char *)(uintptr_t)console_param(r, "state");
	q.domain = (char *)(uintptr_t)console_param(r, "domain");
	q.limit = (uint32_t)limit;
	if (q.state[0] != '\0' && strcmp(q.state, "active") != 0 &&
	    strcmp(q.state, "deferred") != 0 && strcmp(q.state, "held") != 0) {
		console_bad(r, "state: active, deferred or held.");
		return;
	}
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_QUEUE_COMMAND;
	req.queue_command = &q;
	console_run(r, &req);
}

/* POST /api/queue/action: hold, release, retry, delete, flush;
 * operators only, audited. */
static void
console_post_action(struct console_req *r)
{
	static const struct {
		const char *name;
		Sluice__CommandKind kind;
	} acts[] = {
	    {"hold", SLUICE__COMMAND_KIND__CMD_HOLD},
	    {"release", SLUICE__COMMAND_KIND__CMD_RELEASE},
	    {"retry", SLUICE__COMMAND_KIND__CMD_RETRY},
	    {"delete", SLUICE__COMMAND_KIND__CMD_DELETE},
	    {"flush", SLUICE__COMMAND_KIND__CMD_FLUSH},
	};
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__QueueCommandRequest q = SLUICE__QUEUE_COMMAND_REQUEST__INIT;
	Sluice__AdminReply *rep;
	const char *act = console_param(r, "action");
	char action[80], detail[256], node[80];
	size_t i;

	if (strcmp(r->role, "operator") != 0) {
		/* peer text: printable, at most 64 characters */
		console_audit(r, "queue action refused (viewer)",
		    api_printable(act, action, sizeof(action)));
		console_reply_error(r, 403, "denied",
		    "Only operators act on queues; this account is a "
		    "viewer.");
		return;
	}
	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (strcmp(act, acts[i].name) == 0)
			break;
	if (i == sizeof(acts) / sizeof(acts[0])) {
		console_bad(
		    r, "action: hold, release, retry, delete or flush.");
		return;
	}
	q.kind = acts[i].kind;
	q.node = (char *)(uintptr_t)console_param(r, "node");
	q.queue_id = (char *)(uintptr_t)console_param(r, "queue_id");
	if (q.kind != SLUICE__COMMAND_KIND__CMD_FLUSH &&
	    !console_is_queue_id(q.queue_id)) {
		console_bad(r, "queue_id: the node's queue id.");
		return;
	}
	if (q.kind == SLUICE__COMMAND_KIND__CMD_FLUSH)
		q.queue_id = (char *)(uintptr_t) "";
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_QUEUE_COMMAND;
	req.queue_command = &q;
	if ((rep = console_call(r, &req)) == NULL)
		return;
	snprintf(action, sizeof(action), "queue %s", acts[i].name);
	snprintf(detail, sizeof(detail), "queue_id=%s node=%s commands=%zu",
	    q.queue_id[0] ? q.queue_id : "-",
	    q.node[0] ? api_printable(q.node, node, sizeof(node)) : "all",
	    rep->commands != NULL ? rep->commands->n_commands : 0);
	console_audit(r, action, detail);
	console_send(r, rep);
}

struct console_replies {
	struct console_buf *b;
	bool first;
};

static int
console_reply_cb(void *arg, const struct store_last_reply_row *row)
{
	struct console_replies *cr = arg;

	if (!cr->first)
		console_buf_add(cr->b, ",", 1);
	cr->first = false;
	console_json_str(cr->b, row->queue_id);
	console_buf_add(cr->b, ":{\"kind\":", 9);
	console_json_str(cr->b, row->kind);
	console_buf_add(cr->b, ",\"hop\":", 7);
	console_json_str(cr->b, row->hop);
	console_buf_add(cr->b, ",\"reply\":", 9);
	console_json_str(cr->b, row->reply);
	console_buf_printf(cr->b, ",\"at_ms\":%" PRId64 "}", row->at_ms);
	return 0;
}

/* GET /api/commands?ids=1,2: command status, and for listed messages
 * their last delivery reply from the record ("last_replies"). */
static void
console_get_commands(struct console_req *r)
{
	Sluice__AdminRequest req = SLUICE__ADMIN_REQUEST__INIT;
	Sluice__CommandIdsRequest c = SLUICE__COMMAND_IDS_REQUEST__INIT;
	uint64_t ids[CONSOLE_IDS_MAX];
	const char *qids[CONSOLE_LIST_MAX];
	const char *p = console_param(r, "ids");
	struct console_buf b = {0};
	struct console_replies cr = {&b, true};
	Sluice__AdminReply *rep;
	size_t n = 0, nq = 0, i, k;
	char *end;

	while (*p != '\0') {
		if (n == CONSOLE_IDS_MAX || !isdigit((unsigned char)*p)) {
			console_bad(r, "ids: up to 256 numbers, "
			               "comma-separated.");
			return;
		}
		ids[n++] = strtoull(p, &end, 10);
		p = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0') {
			console_bad(r, "ids: numbers, comma-separated.");
			return;
		}
	}
	c.ids = ids;
	c.n_ids = n;
	req.body_case = SLUICE__ADMIN_REQUEST__BODY_COMMAND_STATUS;
	req.command_status = &c;
	if ((rep = console_call(r, &req)) == NULL)
		return;
	for (i = 0; rep->commands != NULL && i < rep->commands->n_commands;
	     i++) {
		const Sluice__CommandResult *res =
		    rep->commands->commands[i]->result;

		for (k = 0; res != NULL && k < res->n_messages &&
		            nq < CONSOLE_LIST_MAX;
		     k++)
			if (console_is_queue_id(res->messages[k]->queue_id))
				qids[nq++] = res->messages[k]->queue_id;
	}
	console_json_msg(&b, &rep->base);
	/* {...} becomes {...,"last_replies":{...}} */
	if (b.len > 0 && !b.is_oom)
		b.p[--b.len] = '\0';
	console_buf_add(&b, ",\"last_replies\":{", 17);
	if (nq > 0 && store_console_last_replies(r->c->api.store, qids, nq,
	                  console_reply_cb, &cr) != STORE_OK)
		log_warnx("console: last replies not read");
	console_buf_add(&b, "}}", 2);
	sluice__admin_reply__free_unpacked(rep, NULL);
	console_reply_json(r, 200, &b);
	console_buf_free(&b);
}

void
console_api_dispatch(struct console_req *r)
{
	static const struct {
		const char *path;
		enum evhttp_cmd_type method;
		void (*fn)(struct console_req *);
	} routes[] = {
	    {"/api/status", EVHTTP_REQ_GET, console_get_status},
	    {"/api/alerts", EVHTTP_REQ_GET, console_get_alerts},
	    {"/api/policy", EVHTTP_REQ_GET, console_get_policy},
	    {"/api/history", EVHTTP_REQ_GET, console_get_history},
	    {"/api/audit", EVHTTP_REQ_GET, console_get_audit},
	    {"/api/trace", EVHTTP_REQ_GET, console_get_trace},
	    {"/api/log", EVHTTP_REQ_GET, console_get_log},
	    {"/api/commands", EVHTTP_REQ_GET, console_get_commands},
	    {"/api/queue/list", EVHTTP_REQ_POST, console_post_list},
	    {"/api/queue/action", EVHTTP_REQ_POST, console_post_action},
	};
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(r->path, routes[i].path) == 0) {
			if (evhttp_request_get_command(r->req) !=
			    routes[i].method)
				console_reply_error(r, 405, "bad_request",
				    routes[i].method == EVHTTP_REQ_GET
				        ? "Use GET."
				        : "Use POST.");
			else
				routes[i].fn(r);
			return;
		}
	console_reply_error(r, 404, "not_found", "No such API path.");
}
