/* console_admin.c - AdminRequest.console (console_admin.h): operator
 * accounts of the web console and the audit history.  sluicectl sends a
 * password only as an scrypt hash (lib/passwd.c), never the password;
 * no reply carries a hash.  Every account change is written to the audit
 * history with who asked. */
#include "console_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policy_check.h"
#include "store_console.h"

#define CONSOLE_ADMIN_AUDIT_MAX 1000

void
console_admin_out_free(struct console_admin_out *o)
{
	size_t i;

	for (i = 0; i < o->console.n_operators; i++) {
		free(o->console.operators[i]->name);
		free(o->console.operators[i]->role);
		free(o->console.operators[i]);
	}
	free(o->console.operators);
	for (i = 0; i < o->console.n_audit; i++) {
		free(o->console.audit[i]->identity);
		free(o->console.audit[i]->action);
		free(o->console.audit[i]->detail);
		free(o->console.audit[i]);
	}
	free(o->console.audit);
}

static int
console_admin_op_cb(void *arg, const struct store_operator_row *r)
{
	struct console_admin_out *o = arg;
	Sluice__ConsoleReply *c = &o->console;
	Sluice__ConsoleOperator *op, **v;

	if (c->n_operators == o->ops_cap) {
		o->ops_cap = o->ops_cap ? o->ops_cap * 2 : 16;
		if ((v = realloc(c->operators, o->ops_cap * sizeof(*v))) ==
		    NULL)
			goto oom;
		c->operators = v;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL)
		goto oom;
	sluice__console_operator__init(op);
	c->operators[c->n_operators++] = op;
	op->name = strdup(r->name);
	op->role = strdup(r->role);
	op->created_at = r->created_at;
	op->last_login_at = r->last_login_at;
	op->failed_logins = r->failed_logins;
	op->locked_until = r->is_locked ? r->locked_until : 0;
	if (op->name == NULL || op->role == NULL)
		goto oom;
	return 0;
oom:
	o->is_oom = true;
	return 1;
}

static int
console_admin_audit_cb(void *arg, const struct store_audit_row *r)
{
	struct console_admin_out *o = arg;
	Sluice__ConsoleReply *c = &o->console;
	Sluice__AuditEntry *a, **v;

	if (c->n_audit == o->audit_cap) {
		o->audit_cap = o->audit_cap ? o->audit_cap * 2 : 64;
		if ((v = realloc(c->audit, o->audit_cap * sizeof(*v))) == NULL)
			goto oom;
		c->audit = v;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto oom;
	sluice__audit_entry__init(a);
	c->audit[c->n_audit++] = a;
	a->id = r->id;
	a->at = r->at;
	a->identity = strdup(r->identity);
	a->action = strdup(r->action);
	a->detail = strdup(r->detail);
	if (a->identity == NULL || a->action == NULL || a->detail == NULL)
		goto oom;
	return 0;
oom:
	o->is_oom = true;
	return 1;
}

/* "alice (uid 0)" as policy history writes it. */
static void
console_admin_who(const Sluice__ConsoleRequest *req,
    const struct rpc_peer *peer, char *out, size_t len)
{
	char name[80], p[96];

	api_printable(req->identity, name, sizeof(name));
	api_peer(peer, p, sizeof(p));
	if (strncmp(p, "local ", 6) == 0)
		memmove(p, p + 6, strlen(p + 6) + 1);
	if (name[0] != '\0')
		snprintf(out, len, "%s (%s)", name, p);
	else
		snprintf(out, len, "%s", p);
}

static int
console_admin_user_add(struct api *a, const Sluice__ConsoleRequest *req,
    const char *who, struct api_error *e)
{
	char name[80], detail[128];
	int rc;

	api_printable(req->name, name, sizeof(name));
	if (policy_check_name(req->name) == -1) {
		api_error_set(e, "invalid",
		    "Operator name '%s' must be 1-64 characters of letters, "
		    "digits and ._@+-.",
		    name);
		return -1;
	}
	if (strcmp(req->role, "viewer") != 0 &&
	    strcmp(req->role, "operator") != 0) {
		api_error_set(
		    e, "invalid", "Role must be 'viewer' or 'operator'.");
		return -1;
	}
	if (strncmp(req->password_hash, "$scrypt$", 8) != 0 ||
	    strlen(req->password_hash) > 200) {
		api_error_set(e, "invalid",
		    "The password must come as an scrypt hash "
		    "($scrypt$...).");
		return -1;
	}
	if ((rc = store_console_user_add(a->store, req->name, req->role,
	         req->password_hash)) != STORE_OK) {
		if (rc == STORE_EXISTS)
			api_error_set(e, "exists",
			    "Console operator '%s' already exists.", name);
		else
			api_error_store(e, rc);
		return -1;
	}
	snprintf(detail, sizeof(detail), "%s role=%s", name, req->role);
	store_console_audit_add(a->store, who, "console user add", detail);
	log_info("admin: console user added name=%s role=%s by=\"%s\"", name,
	    req->role, who);
	return 0;
}

/* del and unlock: one named operator. */
static int
console_admin_user_named(struct api *a, const Sluice__ConsoleRequest *req,
    const char *who, bool is_del, struct api_error *e)
{
	char name[80];
	int rc;

	api_printable(req->name, name, sizeof(name));
	rc = is_del ? store_console_user_del(a->store, req->name)
	            : store_console_user_unlock(a->store, req->name);
	if (rc == STORE_NOT_FOUND) {
		api_error_set(e, "not_found",
		    "Console operator '%s' does not exist.", name);
		return -1;
	}
	if (rc != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	store_console_audit_add(a->store, who,
	    is_del ? "console user del" : "console user unlock", name);
	log_info("admin: console user %s name=%s by=\"%s\"",
	    is_del ? "deleted" : "unlocked", name, who);
	return 0;
}

int
console_admin(struct api *a, const struct rpc_peer *peer,
    const Sluice__ConsoleRequest *req, Sluice__AdminReply *reply,
    struct console_admin_out *o, struct api_error *e)
{
	char who[200];
	int rc = STORE_OK;

	sluice__console_reply__init(&o->console);
	console_admin_who(req, peer, who, sizeof(who));
	if (strcmp(req->op, "user_add") == 0) {
		if (console_admin_user_add(a, req, who, e) == -1)
			return -1;
	} else if (strcmp(req->op, "user_del") == 0 ||
	           strcmp(req->op, "user_unlock") == 0) {
		if (console_admin_user_named(
		        a, req, who, strcmp(req->op, "user_del") == 0, e) == -1)
			return -1;
	} else if (strcmp(req->op, "user_list") == 0) {
		rc = store_console_user_list(a->store, console_admin_op_cb, o);
	} else if (strcmp(req->op, "audit") == 0) {
		rc = store_console_audit_list(a->store,
		    req->limit == 0 ? 100
		    : req->limit > CONSOLE_ADMIN_AUDIT_MAX
		        ? CONSOLE_ADMIN_AUDIT_MAX
		        : req->limit,
		    console_admin_audit_cb, o);
	} else {
		api_error_set(e, "bad_request", "Unknown console operation.");
		return -1;
	}
	if (rc != STORE_OK) {
		api_error_store(e, rc);
		return -1;
	}
	if (o->is_oom) {
		api_error_set(
		    e, "internal", "The controller ran out of memory.");
		return -1;
	}
	reply->body_case = SLUICE__ADMIN_REPLY__BODY_CONSOLE;
	reply->console = &o->console;
	return 0;
}
