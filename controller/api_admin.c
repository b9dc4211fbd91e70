/* api_admin.c - the admin endpoint (sluicectl): one handler per
 * AdminRequest body.  Access control is the endpoint itself (an ipc://
 * socket of mode 0600); the peer uid is recorded with policy changes.
 * Every failure is an error reply with a code from control.proto and one
 * sentence.  Runs on the admin thread only (see controller.c). */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_admin.h"
#include "health.h"
#include "log.h"
#include "policy_check.h"
#include "policy_secret.h"
#include "token.h"

/* Replies stay well under the 8 MiB message cap (lib/rpc.h). */
#define API_ADMIN_EVENTS_MAX   10000
#define API_ADMIN_EVENTS_BYTES (6 * 1024 * 1024)
#define API_ADMIN_CENTURY_S    (100LL * 366 * 86400)

/* Everything a reply points to; api_admin_out_free releases it. */
struct api_admin_out {
	Sluice__AdminReply reply;
	Sluice__NodeAddReply node_add;
	char token[TOKEN_LEN + 1];
	char *name;
	Sluice__NodeListReply node_list;
	Sluice__Empty done;
	Sluice__PolicyGetReply policy_get;
	Sluice__Policy empty;
	Sluice__Policy *policy; /* unpacked, freed after packing */
	Sluice__PolicyApplyReply policy_apply;
	Sluice__PolicyHistoryReply policy_history;
	Sluice__EventsReply events;
	size_t events_cap;
	size_t events_bytes;
	Sluice__StatusReply status;
	struct api_fleet_out fleet;
	struct console_admin_out console;
};

static void
api_admin_out_free(struct api_admin_out *o)
{
	size_t i;

	for (i = 0; i < o->node_list.n_nodes; i++) {
		Sluice__NodeStatus *n = o->node_list.nodes[i];

		free(n->name);
		free(n->address);
		free(n->software_version);
		free(n->shadow_address);
		free(n->state);
		if (n->metrics != NULL)
			sluice__queue_metrics__free_unpacked(n->metrics, NULL);
		free(n);
	}
	free(o->node_list.nodes);
	for (i = 0; i < o->policy_history.n_versions; i++) {
		free(o->policy_history.versions[i]->identity);
		free(o->policy_history.versions[i]->summary);
		free(o->policy_history.versions[i]);
	}
	free(o->policy_history.versions);
	for (i = 0; i < o->events.n_events; i++) {
		free(o->events.events[i]->node);
		if (o->events.events[i]->event != NULL)
			sluice__event__free_unpacked(
			    o->events.events[i]->event, NULL);
		free(o->events.events[i]);
	}
	free(o->events.events);
	if (o->policy != NULL)
		sluice__policy__free_unpacked(o->policy, NULL);
	free(o->name);
	memset(o->token, 0, sizeof(o->token));
	api_fleet_out_free(&o->fleet);
	console_admin_out_free(&o->console);
}

/* "alice (uid 0)", "uid 0", "alice (127.0.0.1)" or "unknown". */
static void
api_admin_identity(
    const char *who, const struct rpc_peer *peer, char *out, size_t len)
{
	char name[80], p[96];

	api_printable(who, name, sizeof(name));
	api_peer(peer, p, sizeof(p));
	if (strncmp(p, "local ", 6) == 0)
		memmove(p, p + 6, strlen(p + 6) + 1);
	if (name[0] != '\0')
		snprintf(out, len, "%s (%s)", name, p);
	else
		snprintf(out, len, "%s", p);
}

static int
api_admin_node_add(struct api *a, const struct rpc_peer *peer,
    const Sluice__NodeAddRequest *req, struct api_admin_out *o,
    struct api_error *e)
{
	char digest[TOKEN_DIGEST_LEN + 1], name[80], who[96];
	int rc;

	if (policy_check_name(req->name) == -1) {
		api_error_set(e, "invalid",
		    "Node name '%s' must be 1-64 characters of letters, digits "
		    "and ._@+-.",
		    api_printable(req->name, name, sizeof(name)));
		return -1;
	}
	if (token_new(o->token) == -1 || token_digest(o->token, digest) == -1) {
		api_error_set(e, "internal",
		    "The controller cannot generate a token; see its log.");
		return -1;
	}
	if ((rc = store_node_add(a->store, req->name, digest)) != STORE_OK) {
		if (rc == STORE_EXISTS)
			api_error_set(e, "exists", "Node '%s' already exists.",
			    req->name);
		else
			api_error_store(e, rc);
		return -1;
	}
	log_info("admin: node added name=%s by=%s", req->name,
	    api_peer(peer, who, sizeof(who)));
	if ((o->name = strdup(req->name)) == NULL) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		return -1;
	}
	sluice__node_add_reply__init(&o->node_add);
	o->node_add.name = o->name;
	o->node_add.token = o->token;
	o->reply.body_case = SLUICE__ADMIN_REPLY__BODY_NODE_ADD;
	o->reply.node_add = &o->node_add;
	return 0;
}

struct api_admin_list {
	struct api *a;
	Sluice__NodeListReply *out;
	size_t cap;
	bool is_oom;
};

static int
api_admin_list_cb(void *arg, const struct store_node_row *r)
{
	struct api_admin_list *l = arg;
	Sluice__NodeListReply *out = l->out;
	Sluice__NodeStatus *n, **nv;

	if (out->n_nodes == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		if ((nv = realloc(out->nodes, l->cap * sizeof(*nv))) == NULL)
			goto oom;
		out->nodes = nv;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		goto oom;
	sluice__node_status__init(n);
	out->nodes[out->n_nodes++] = n;
	n->name = strdup(r->name);
	n->address = strdup(r->address);
	n->software_version = strdup(r->software_version);
	if (r->metrics != NULL)
		n->metrics = sluice__queue_metrics__unpack(
		    NULL, r->metrics_len, r->metrics);
	n->state =
	    strdup(r->lost_at != 0
	               ? "lost"
	               : health_state(r->last_heartbeat_at, r->heartbeat_age_ms,
	                     health_silent_after(
	                         l->a->silent_after_ms, r->heartbeat_ms),
	                     r->is_draining, n->metrics));
	n->lost_at = r->lost_at;
	n->shadow_address = strdup(r->shadow_address);
	if (n->shadow_address == NULL)
		goto oom;
	if (!n->name || !n->address || !n->software_version || !n->state)
		goto oom;
	n->accepted_per_min = r->accepted_per_min;
	n->delivered_per_min = r->delivered_per_min;
	n->heartbeat_age_ms = r->heartbeat_age_ms;
	n->id = r->id;
	n->policy_version = r->policy_version;
	n->last_heartbeat_at = r->last_heartbeat_at;
	n->created_at = r->created_at;
	n->policy_from_cache = r->policy_from_cache;
	return 0;
oom:
	l->is_oom = true;
	return -1;
}

static int
api_admin_node_list(struct api *a, struct api_admin_out *o, struct api_error *e)
{
	struct api_admin_list l = {a, &o->node_list, 0, false};
	uint64_t head;
	int rc;

	sluice__node_list_reply__init(&o->node_list);
	if ((rc = store_node_list(a->store, api_admin_list_cb, &l)) !=
	        STORE_OK ||
	    (rc = store_policy_head(a->store, false, &head)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	if (l.is_oom) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		return -1;
	}
	o->node_list.latest_policy_version = head;
	o->reply.body_case = SLUICE__ADMIN_REPLY__BODY_NODE_LIST;
	o->reply.node_list = &o->node_list;
	return 0;
}

/* The fleet at a glance: every node and the open alerts. */
static int
api_admin_status(struct api *a, struct api_admin_out *o, struct api_error *e)
{
	if (api_admin_node_list(a, o, e) == -1 ||
	    api_fleet_alerts_fill(a, true, 0, &o->fleet, e) == -1)
		return -1;
	sluice__status_reply__init(&o->status);
	o->status.nodes = &o->node_list;
	o->status.alerts = o->fleet.alerts.alerts;
	o->status.n_alerts = o->fleet.alerts.n_alerts;
	o->reply.body_case = SLUICE__ADMIN_REPLY__BODY_STATUS;
	o->reply.status = &o->status;
	return 0;
}

/* remove, drain, resume: one named node, an empty reply. */
static int
api_admin_node_named(struct api *a, const struct rpc_peer *peer,
    const char *verb, const Sluice__NodeNameRequest *req,
    struct api_admin_out *o, struct api_error *e)
{
	char name[80], who[96];
	int rc;

	api_printable(req->name, name, sizeof(name));
	if (strcmp(verb, "removed") == 0)
		rc = store_node_remove(a->store, req->name);
	else if (strcmp(verb, "lost") == 0) {
		/* issue 13: its peers promote its shadow copies */
		bool added;

		rc = store_node_lost(a->store, req->name,
		    "declared by an operator", true, &added);
		if (rc == STORE_OK && added)
			log_warnx(
			    "node %s declared lost: its peers promote the "
			    "shadow copies they hold of its mail",
			    name);
	} else
		rc = store_node_set_draining(a->store, req->name,
		    strcmp(verb, "draining") == 0, req->handoff);
	if (rc == STORE_NOT_FOUND) {
		api_error_set(
		    e, "not_found", "Node '%s' does not exist.", name);
		return -1;
	}
	if (rc != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	log_info("admin: node %s name=%s by=%s", verb, name,
	    api_peer(peer, who, sizeof(who)));
	sluice__empty__init(&o->done);
	o->reply.body_case = SLUICE__ADMIN_REPLY__BODY_DONE;
	o->reply.done = &o->done;
	return 0;
}

/* Loads version v (0: none) into *p, unpacked; NULL for version 0. */
static int
api_admin_load(
    struct api *a, uint64_t v, Sluice__Policy **p, struct api_error *e)
{
	uint8_t *buf;
	size_t len;
	int rc;

	*p = NULL;
	if (v == 0)
		return 0;
	if ((rc = store_policy_snapshot(a->store, v, &buf, &len)) != STORE_OK) {
		if (rc == STORE_NOT_FOUND)
			api_error_set(e, "not_found",
			    "Policy version %" PRIu64 " does not exist.", v);
		else
			api_error_store(e, rc);
		return -1;
	}
	*p = sluice__policy__unpack(NULL, len, buf);
	free(buf);
	if (*p == NULL) {
		log_warnx(
		    "admin: policy version %" PRIu64 " does not decode", v);
		api_error_set(e, "internal",
		    "Policy version %" PRIu64 " does not decode; see the "
		    "controller log.",
		    v);
		return -1;
	}
	return 0;
}

static int
api_admin_policy_get(struct api *a, const Sluice__PolicyGetRequest *req,
    struct api_admin_out *o, struct api_error *e)
{
	uint64_t v = req->version;
	int rc;

	if (v == 0 &&
	    (rc = store_policy_head(a->store, false, &v)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	if (api_admin_load(a, v, &o->policy, e) == -1)
		return -1;
	sluice__policy_get_reply__init(&o->policy_get);
	if (o->policy != NULL) {
		policy_secret_redact(o->policy);
		o->policy_get.policy = o->policy;
	} else {
		/* An empty database: the empty policy, version 0. */
		sluice__policy__init(&o->empty);
		o->policy_get.policy = &o->empty;
	}
	o->reply.body_case = SLUICE__ADMIN_REPLY__BODY_POLICY_GET;
	o->reply.policy_get = &o->policy_get;
	return 0;
}

/* Packed p with version 0: equal bytes mean an identical policy. */
static uint8_t *
api_admin_pack_unversioned(Sluice__Policy *p, size_t *len)
{
	uint64_t v = p->version;
	uint8_t *buf;

	p->version = 0;
	buf = rpc_pack(&p->base, len);
	p->version = v;
	return buf;
}

static int
api_admin_policy_apply(struct api *a, const struct rpc_peer *peer,
    Sluice__PolicyApplyRequest *req, struct api_admin_out *o,
    struct api_error *e)
{
	struct policy_error perr;
	Sluice__Policy *cur = NULL, *p = req->policy, empty;
	uint8_t *nb = NULL, *cb = NULL;
	size_t nlen, clen;
	uint64_t head;
	char who[200], summary[256];
	int rc, rv = -1;

	sluice__policy__init(&empty);
	if (p == NULL) {
		api_error_set(e, "bad_request", "The apply carries no policy.");
		return -1;
	}
	if ((rc = store_begin(a->store)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	/* The head row stays locked until COMMIT: applies are serialised. */
	if ((rc = store_policy_head(a->store, true, &head)) != STORE_OK) {
		api_error_store(e, rc);
		goto done;
	}
	if (req->base_version != head) {
		api_error_set(e, "conflict",
		    "The policy changed since version %" PRIu64 " was read "
		    "(now %" PRIu64 "); retry.",
		    req->base_version, head);
		goto done;
	}
	if (api_admin_load(a, head, &cur, e) == -1)
		goto done;
	memset(&perr, 0, sizeof(perr));
	if (policy_secret_merge(p, cur, &perr) == -1 ||
	    policy_check(p, POLICY_CHECK_SNAPSHOT, &perr) == -1) {
		if (perr.index >= 0)
			api_error_set(e, "invalid", "%s #%d: %s", perr.section,
			    perr.index + 1, perr.msg);
		else
			api_error_set(
			    e, "invalid", "%s: %s", perr.section, perr.msg);
		goto done;
	}
	nb = api_admin_pack_unversioned(p, &nlen);
	cb = cur != NULL ? api_admin_pack_unversioned(cur, &clen)
	                 : rpc_pack(&empty.base, &clen);
	if (nb == NULL || cb == NULL) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		goto done;
	}
	sluice__policy_apply_reply__init(&o->policy_apply);
	o->reply.body_case = SLUICE__ADMIN_REPLY__BODY_POLICY_APPLY;
	o->reply.policy_apply = &o->policy_apply;
	if (nlen == clen && memcmp(nb, cb, nlen) == 0) {
		o->policy_apply.version = head;
		o->policy_apply.changed = 0;
		rv = 0;
		goto done; /* rolls back: nothing was written */
	}
	free(nb);
	p->version = head + 1;
	if ((nb = rpc_pack(&p->base, &nlen)) == NULL) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		goto done;
	}
	api_admin_identity(req->identity, peer, who, sizeof(who));
	snprintf(summary, sizeof(summary), "%s", req->summary);
	summary[strcspn(summary, "\r\n")] = '\0';
	if ((rc = store_policy_insert(
	         a->store, p->version, who, summary, nb, nlen)) != STORE_OK ||
	    (rc = store_commit(a->store)) != STORE_OK) {
		api_error_store(e, rc);
		goto done;
	}
	log_info("admin: policy applied version=%" PRIu64 " by=\"%s\" "
	         "summary=\"%s\"",
	    p->version, who, summary);
	o->policy_apply.version = p->version;
	o->policy_apply.changed = 1;
	rv = 0;
done:
	store_rollback(a->store);
	if (rv == -1)
		o->reply.body_case = SLUICE__ADMIN_REPLY__BODY__NOT_SET;
	if (cur != NULL)
		sluice__policy__free_unpacked(cur, NULL);
	free(nb);
	free(cb);
	return rv;
}

static int
api_admin_history_cb(void *arg, uint64_t version, int64_t created_at,
    const char *identity, const char *summary)
{
	Sluice__PolicyHistoryReply *h = arg;
	Sluice__PolicyVersion *v, **vv;

	if ((vv = realloc(h->versions, (h->n_versions + 1) * sizeof(*vv))) ==
	    NULL)
		return -1;
	h->versions = vv;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return -1;
	sluice__policy_version__init(v);
	h->versions[h->n_versions++] = v;
	v->version = version;
	v->created_at = created_at;
	v->identity = strdup(identity);
	v->summary = strdup(summary);
	return v->identity == NULL || v->summary == NULL ? -1 : 0;
}

static int
api_admin_policy_history(
    struct api *a, struct api_admin_out *o, struct api_error *e)
{
	size_t i;
	int rc;

	sluice__policy_history_reply__init(&o->policy_history);
	if ((rc = store_policy_history(a->store, api_admin_history_cb,
	         &o->policy_history)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	for (i = 0; i < o->policy_history.n_versions; i++)
		if (o->policy_history.versions[i]->identity == NULL ||
		    o->policy_history.versions[i]->summary == NULL) {
			api_error_set(
			    e, "internal", "The controller ran out of memory.");
			return -1;
		}
	o->reply.body_case = SLUICE__ADMIN_REPLY__BODY_POLICY_HISTORY;
	o->reply.policy_history = &o->policy_history;
	return 0;
}

/* Keeps a copy of one event (packed and unpacked: the row goes away). */
static int
api_admin_event_cb(void *arg, const char *node, const Sluice__Event *ev)
{
	struct api_admin_out *o = arg;
	Sluice__EventsReply *er = &o->events;
	Sluice__EventRecord *rec, **rv;
	uint8_t *buf;
	size_t len;

	if (er->n_events == o->events_cap) {
		o->events_cap = o->events_cap ? o->events_cap * 2 : 64;
		if ((rv = realloc(er->events, o->events_cap * sizeof(*rv))) ==
		    NULL)
			return -1;
		er->events = rv;
	}
	if ((rec = calloc(1, sizeof(*rec))) == NULL)
		return -1;
	sluice__event_record__init(rec);
	er->events[er->n_events++] = rec;
	if ((rec->node = strdup(node)) == NULL ||
	    (buf = rpc_pack(&ev->base, &len)) == NULL)
		return -1;
	rec->event = sluice__event__unpack(NULL, len, buf);
	free(buf);
	if (rec->event == NULL)
		return -1;
	o->events_bytes += len + strlen(node) + 16;
	return o->events_bytes > API_ADMIN_EVENTS_BYTES ? 1 : 0;
}

static int
api_admin_events_reply(int rc, struct api_admin_out *o, struct api_error *e)
{
	if (rc != STORE_OK) {
		if (rc == STORE_ERROR && o->events.n_events > 0)
			api_error_set(
			    e, "internal", "The controller ran out of memory.");
		else
			api_error_store(e, rc);
		return -1;
	}
	o->reply.body_case = SLUICE__ADMIN_REPLY__BODY_EVENTS;
	o->reply.events = &o->events;
	return 0;
}

static int
api_admin_trace(struct api *a, const Sluice__TraceRequest *req,
    struct api_admin_out *o, struct api_error *e)
{
	sluice__events_reply__init(&o->events);
	if (req->id[0] == '\0') {
		api_error_set(e, "bad_request",
		    "Give a queue id or a Message-ID to trace.");
		return -1;
	}
	return api_admin_events_reply(
	    store_event_trace(
	        a->store, req->id, API_ADMIN_EVENTS_MAX, api_admin_event_cb, o),
	    o, e);
}

static int
api_admin_log(struct api *a, const Sluice__LogRequest *req,
    struct api_admin_out *o, struct api_error *e)
{
	struct store_event_query q;

	sluice__events_reply__init(&o->events);
	if (req->since_s < 0) {
		api_error_set(e, "bad_request", "since must not be negative.");
		return -1;
	}
	q.sender = req->sender;
	q.recipient = req->recipient;
	q.kind = req->status;
	q.node = req->node;
	/* A century covers "all"; more would overflow an interval. */
	q.since_s = req->since_s > API_ADMIN_CENTURY_S ? API_ADMIN_CENTURY_S
	                                               : req->since_s;
	q.limit = req->limit == 0                     ? 100
	          : req->limit > API_ADMIN_EVENTS_MAX ? API_ADMIN_EVENTS_MAX
	                                              : req->limit;
	return api_admin_events_reply(
	    store_event_log(a->store, &q, api_admin_event_cb, o), o, e);
}

void
api_admin_handle(void *arg, const uint8_t *req, size_t len,
    const struct rpc_peer *peer, uint8_t **out, size_t *outlen)
{
	struct api *a = arg;
	struct api_admin_out o;
	struct api_error e;
	Sluice__AdminRequest *r;
	Sluice__Error err;
	int rv = -1;

	memset(&o, 0, sizeof(o));
	sluice__admin_reply__init(&o.reply);
	memset(&e, 0, sizeof(e));
	if ((r = sluice__admin_request__unpack(NULL, len, req)) == NULL) {
		api_warn(a, peer, "undecodable request of %zu bytes", len);
		api_error_set(&e, "bad_request",
		    "The request is not a valid AdminRequest.");
	} else if (api_ready(a, &e)) {
		switch (r->body_case) {
		case SLUICE__ADMIN_REQUEST__BODY_NODE_ADD:
			rv = api_admin_node_add(a, peer, r->node_add, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_NODE_LIST:
			rv = api_admin_node_list(a, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_NODE_REMOVE:
			rv = api_admin_node_named(
			    a, peer, "removed", r->node_remove, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_NODE_DRAIN:
			rv = api_admin_node_named(
			    a, peer, "draining", r->node_drain, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_NODE_RESUME:
			rv = api_admin_node_named(
			    a, peer, "resumed", r->node_resume, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_NODE_LOST:
			rv = api_admin_node_named(
			    a, peer, "lost", r->node_lost, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_POLICY_GET:
			rv = api_admin_policy_get(a, r->policy_get, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_POLICY_APPLY:
			rv = api_admin_policy_apply(
			    a, peer, r->policy_apply, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_POLICY_HISTORY:
			rv = api_admin_policy_history(a, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_TRACE:
			rv = api_admin_trace(a, r->trace, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_LOG:
			rv = api_admin_log(a, r->log, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_STATUS:
			rv = api_admin_status(a, &o, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_ALERTS:
			rv = api_fleet_alerts(
			    a, r->alerts, &o.reply, &o.fleet, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_QUEUE_COMMAND:
			rv = api_fleet_queue_command(
			    a, peer, r->queue_command, &o.reply, &o.fleet, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_COMMAND_STATUS:
			rv = api_fleet_command_status(
			    a, r->command_status, &o.reply, &o.fleet, &e);
			break;
		case SLUICE__ADMIN_REQUEST__BODY_CONSOLE:
			rv = console_admin(
			    a, peer, r->console, &o.reply, &o.console, &e);
			break;
		default:
			api_warn(
			    a, peer, "request without a body (%zu bytes)", len);
			api_error_set(
			    &e, "bad_request", "The request has no body.");
			break;
		}
	}
	if (rv == -1) {
		sluice__error__init(&err);
		err.code = e.code;
		err.message = e.msg;
		o.reply.error = &err;
		o.reply.body_case = SLUICE__ADMIN_REPLY__BODY__NOT_SET;
	}
	if ((*out = rpc_pack(&o.reply.base, outlen)) == NULL)
		log_warnx("admin: out of memory packing a reply");
	api_admin_out_free(&o);
	if (r != NULL)
		sluice__admin_request__free_unpacked(r, NULL);
}
