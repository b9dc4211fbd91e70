/* api_fleet.c - the admin endpoint's fleet operations: alerts, queue
 * commands (one row per target node, delivered with heartbeats) and their
 * status.  Called from api_admin_handle (api_admin.c), one handler per
 * AdminRequest body; the reply parts live in struct api_fleet_out and are
 * released by api_fleet_out_free after packing. */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define API_FLEET_ALERTS_MAX   1000
#define API_FLEET_COMMANDS_MAX 256 /* ids per status request, nodes */

void
api_fleet_out_free(struct api_fleet_out *o)
{
	size_t i;

	for (i = 0; i < o->alerts.n_alerts; i++) {
		free(o->alerts.alerts[i]->kind);
		free(o->alerts.alerts[i]->subject);
		free(o->alerts.alerts[i]->message);
		free(o->alerts.alerts[i]);
	}
	free(o->alerts.alerts);
	for (i = 0; i < o->commands.n_commands; i++) {
		free(o->commands.commands[i]->node);
		if (o->commands.commands[i]->result != NULL)
			sluice__command_result__free_unpacked(
			    o->commands.commands[i]->result, NULL);
		free(o->commands.commands[i]);
	}
	free(o->commands.commands);
}

struct api_fleet_alerts {
	Sluice__AlertsReply *out;
	size_t cap;
	bool is_oom;
};

static int
api_fleet_alert_cb(void *arg, const struct store_alert_row *r)
{
	struct api_fleet_alerts *l = arg;
	Sluice__AlertsReply *out = l->out;
	Sluice__Alert *al, **nv;

	if (out->n_alerts >= API_FLEET_ALERTS_MAX)
		return 1;
	if (out->n_alerts == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		if ((nv = realloc(out->alerts, l->cap * sizeof(*nv))) == NULL)
			goto oom;
		out->alerts = nv;
	}
	if ((al = calloc(1, sizeof(*al))) == NULL)
		goto oom;
	sluice__alert__init(al);
	out->alerts[out->n_alerts++] = al;
	al->id = r->id;
	al->kind = strdup(r->kind);
	al->subject = strdup(r->subject);
	al->message = strdup(r->message);
	al->raised_at = r->raised_at;
	al->cleared_at = r->cleared_at;
	if (al->kind == NULL || al->subject == NULL || al->message == NULL)
		goto oom;
	return 0;
oom:
	l->is_oom = true;
	return 1;
}

int
api_fleet_alerts_fill(struct api *a, bool open_only, uint32_t recent,
    struct api_fleet_out *o, struct api_error *e)
{
	struct api_fleet_alerts l = {&o->alerts, 0, false};
	int rc;

	sluice__alerts_reply__init(&o->alerts);
	if ((rc = store_alert_list(a->store, open_only,
	         recent > API_FLEET_ALERTS_MAX ? API_FLEET_ALERTS_MAX : recent,
	         api_fleet_alert_cb, &l)) != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	if (l.is_oom) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		return -1;
	}
	return 0;
}

int
api_fleet_alerts(struct api *a, const Sluice__AlertsRequest *req,
    Sluice__AdminReply *reply, struct api_fleet_out *o, struct api_error *e)
{
	if (api_fleet_alerts_fill(
	        a, req->open_only, req->limit ? req->limit : 50, o, e) == -1)
		return -1;
	reply->body_case = SLUICE__ADMIN_REPLY__BODY_ALERTS;
	reply->alerts = &o->alerts;
	return 0;
}

/* Adds one CommandStatus to the reply from a store row. */
static int
api_fleet_command_cb(void *arg, const struct store_command_row *r)
{
	struct api_fleet_out *o = arg;
	Sluice__CommandStatus *cs;

	if (o->commands.n_commands >= API_FLEET_COMMANDS_MAX ||
	    (cs = calloc(1, sizeof(*cs))) == NULL) {
		o->is_oom = true;
		return 1;
	}
	sluice__command_status__init(cs);
	o->commands.commands[o->commands.n_commands++] = cs;
	cs->id = r->id;
	cs->kind = (Sluice__CommandKind)r->kind;
	cs->done = r->done;
	cs->created_at = r->created_at;
	if ((cs->node = strdup(r->node)) == NULL) {
		o->is_oom = true;
		return 1;
	}
	if (r->result != NULL)
		cs->result = sluice__command_result__unpack(
		    NULL, r->result_len, r->result);
	else if (r->done) {
		/* Done without a result: it expired unanswered. */
		if ((cs->result = calloc(1, sizeof(*cs->result))) == NULL) {
			o->is_oom = true;
			return 1;
		}
		sluice__command_result__init(cs->result);
		cs->result->id = r->id;
		cs->result->text = strdup("the node did not answer in time");
		if (cs->result->text == NULL) {
			free(cs->result);
			cs->result = NULL;
			o->is_oom = true;
			return 1;
		}
	}
	return 0;
}

static int
api_fleet_commands_init(struct api_fleet_out *o, struct api_error *e)
{
	sluice__commands_reply__init(&o->commands);
	o->commands.commands =
	    calloc(API_FLEET_COMMANDS_MAX, sizeof(*o->commands.commands));
	if (o->commands.commands == NULL) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		return -1;
	}
	return 0;
}

struct api_fleet_targets {
	char names[API_FLEET_COMMANDS_MAX][72];
	size_t n;
};

static int
api_fleet_target_cb(void *arg, const struct store_command_row *r)
{
	struct api_fleet_targets *t = arg;

	if (t->n == API_FLEET_COMMANDS_MAX)
		return 1;
	snprintf(t->names[t->n++], sizeof(t->names[0]), "%s", r->node);
	return 0;
}

int
api_fleet_queue_command(struct api *a, const struct rpc_peer *peer,
    const Sluice__QueueCommandRequest *req, Sluice__AdminReply *reply,
    struct api_fleet_out *o, struct api_error *e)
{
	struct api_fleet_targets *t;
	char who[96], qid[80];
	uint64_t id;
	size_t i;
	int rc, rv = -1;

	switch (req->kind) {
	case SLUICE__COMMAND_KIND__CMD_RETRY:
	case SLUICE__COMMAND_KIND__CMD_HOLD:
	case SLUICE__COMMAND_KIND__CMD_RELEASE:
	case SLUICE__COMMAND_KIND__CMD_DELETE:
		if (req->queue_id[0] == '\0' || strlen(req->queue_id) > 64) {
			api_error_set(
			    e, "bad_request", "This command needs a queue id.");
			return -1;
		}
		break;
	case SLUICE__COMMAND_KIND__CMD_FLUSH:
	case SLUICE__COMMAND_KIND__CMD_LIST:
		break;
	default:
		/* drain and resume are node drain/resume: a flag, not a row */
		api_error_set(e, "bad_request", "Unknown queue command %d.",
		    (int)req->kind);
		return -1;
	}
	if (strlen(req->state) > 16 || strlen(req->domain) > 255) {
		api_error_set(e, "bad_request", "Filter too long.");
		return -1;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		return -1;
	}
	if (req->node[0] != '\0') {
		snprintf(t->names[0], sizeof(t->names[0]), "%s", req->node);
		t->n = 1;
	} else if ((rc = store_command_live_nodes(a->store, a->silent_after_ms,
	                api_fleet_target_cb, t)) != STORE_OK) {
		api_error_store(e, rc);
		goto out;
	}
	if (t->n == 0) {
		api_error_set(e, "unavailable",
		    "No node has sent a heartbeat recently; nothing to ask.");
		goto out;
	}
	if (api_fleet_commands_init(o, e) == -1)
		goto out;
	for (i = 0; i < t->n; i++) {
		if ((rc = store_command_add(a->store, t->names[i],
		         (int)req->kind, req->queue_id, req->state, req->domain,
		         req->limit, &id)) != STORE_OK) {
			if (rc == STORE_NOT_FOUND)
				api_error_set(e, "not_found",
				    "Node '%s' does not exist.",
				    api_printable(
				        t->names[i], who, sizeof(who)));
			else
				api_error_store(e, rc);
			goto out;
		}
		if ((rc = store_command_get(
		         a->store, id, api_fleet_command_cb, o)) != STORE_OK) {
			api_error_store(e, rc);
			goto out;
		}
	}
	if (o->is_oom) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		goto out;
	}
	log_info("admin: queue command kind=%d queue_id=%s nodes=%zu by=%s",
	    (int)req->kind, api_printable(req->queue_id, qid, sizeof(qid)),
	    t->n, api_peer(peer, who, sizeof(who)));
	reply->body_case = SLUICE__ADMIN_REPLY__BODY_COMMANDS;
	reply->commands = &o->commands;
	rv = 0;
out:
	free(t);
	return rv;
}

int
api_fleet_command_status(struct api *a, const Sluice__CommandIdsRequest *req,
    Sluice__AdminReply *reply, struct api_fleet_out *o, struct api_error *e)
{
	size_t i;
	int rc;

	if (req->n_ids > API_FLEET_COMMANDS_MAX) {
		api_error_set(e, "bad_request",
		    "At most %d command ids at once.", API_FLEET_COMMANDS_MAX);
		return -1;
	}
	if (api_fleet_commands_init(o, e) == -1)
		return -1;
	for (i = 0; i < req->n_ids; i++) {
		rc = store_command_get(
		    a->store, req->ids[i], api_fleet_command_cb, o);
		if (rc == STORE_NOT_FOUND) {
			api_error_set(e, "not_found", "No command %" PRIu64 ".",
			    req->ids[i]);
			return -1;
		}
		if (rc != STORE_OK) {
			api_error_store(e, rc);
			return -1;
		}
	}
	if (o->is_oom) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		return -1;
	}
	reply->body_case = SLUICE__ADMIN_REPLY__BODY_COMMANDS;
	reply->commands = &o->commands;
	return 0;
}
