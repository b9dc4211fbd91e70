/* queue_cmd.c - queue commands (queue_cmd.h).
 *
 * Queue changes are applied in memory at once (the delivery engine sees
 * them through the spool's watch) and made durable by the spool's group
 * commit.  A message in a delivery attempt is not held or deleted under
 * the attempt's feet: the operator is told to try again. */
#include "queue_cmd.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delivery.h"
#include "journal.h"
#include "log.h"
#include "spool.h"

#define QUEUE_CMD_LIST_MAX   1000 /* messages in one listing */
#define QUEUE_CMD_LIST_RCPTS 20   /* recipients shown per message */

static const char *
queue_cmd_state_name(enum spool_state st)
{
	switch (st) {
	case SPOOL_ACTIVE:
		return "active";
	case SPOOL_DEFERRED:
		return "deferred";
	case SPOOL_HELD:
		return "held";
	}
	return "unknown";
}

static const char *
queue_cmd_domain(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	return at != NULL ? at + 1 : "";
}

/* An operator's change to a message, for the delivery record. */
static void
queue_cmd_event(const struct queue_cmd_deps *d, const struct spool_info *si,
    const char *kind)
{
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char reply[64];

	if (d->journal == NULL)
		return;
	snprintf(reply, sizeof(reply), "operator %s", kind);
	ev.kind = (char *)(uintptr_t)kind;
	ev.queue_id = (char *)(uintptr_t)si->queue_id;
	ev.message_id = (char *)(uintptr_t)si->env.message_id;
	ev.sender = (char *)(uintptr_t)si->env.sender;
	ev.recipients = (char **)(uintptr_t)si->env.rcpts;
	ev.n_recipients = si->env.nrcpts;
	ev.size = si->size;
	ev.reply = reply;
	(void)journal_append(d->journal, &ev);
}

struct queue_cmd_list {
	const Sluice__Command *cmd;
	Sluice__CommandResult *res;
	size_t limit;
	bool is_oom;
};

static bool
queue_cmd_matches(const struct spool_info *si, const Sluice__Command *cmd)
{
	size_t i;

	if (cmd->state[0] != '\0' &&
	    strcmp(cmd->state, queue_cmd_state_name(si->state)) != 0)
		return false;
	if (cmd->domain[0] == '\0')
		return true;
	for (i = 0; i < si->env.nrcpts; i++)
		if (si->rcpt_status[i] == SPOOL_RCPT_PENDING &&
		    strcasecmp(
		        queue_cmd_domain(si->env.rcpts[i]), cmd->domain) == 0)
			return true;
	return false;
}

static int
queue_cmd_list_cb(const struct spool_info *si, void *arg)
{
	struct queue_cmd_list *l = arg;
	Sluice__QueuedMessage *q;
	size_t i;

	if (!queue_cmd_matches(si, l->cmd))
		return 0;
	l->res->total++;
	if (l->res->n_messages >= l->limit)
		return 0;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		goto oom;
	sluice__queued_message__init(q);
	l->res->messages[l->res->n_messages++] = q;
	q->queue_id = strdup(si->queue_id);
	q->state = strdup(queue_cmd_state_name(si->state));
	q->sender = strdup(si->env.sender);
	if (q->queue_id == NULL || q->state == NULL || q->sender == NULL ||
	    (q->recipients = calloc(
	         QUEUE_CMD_LIST_RCPTS, sizeof(*q->recipients))) == NULL)
		goto oom;
	for (i = 0;
	     i < si->env.nrcpts && q->n_recipients < QUEUE_CMD_LIST_RCPTS;
	     i++) {
		if (si->rcpt_status[i] != SPOOL_RCPT_PENDING)
			continue;
		if ((q->recipients[q->n_recipients] =
		            strdup(si->env.rcpts[i])) == NULL)
			goto oom;
		q->n_recipients++;
	}
	q->size = si->size;
	q->committed_at = si->committed_at;
	q->next_attempt_at = si->next_attempt_at;
	return 0;
oom:
	l->is_oom = true;
	return 1;
}

static void
queue_cmd_list(const struct queue_cmd_deps *d, const Sluice__Command *cmd,
    Sluice__CommandResult *res)
{
	struct queue_cmd_list l;
	char text[64];

	memset(&l, 0, sizeof(l));
	l.cmd = cmd;
	l.res = res;
	l.limit = cmd->limit == 0 || cmd->limit > QUEUE_CMD_LIST_MAX
	              ? QUEUE_CMD_LIST_MAX
	              : cmd->limit;
	if ((res->messages = calloc(l.limit, sizeof(*res->messages))) == NULL) {
		res->text = strdup("out of memory");
		return;
	}
	spool_foreach(d->spool, queue_cmd_list_cb, &l);
	res->ok = !l.is_oom;
	if (l.is_oom)
		res->text = strdup("out of memory");
	else {
		snprintf(
		    text, sizeof(text), "%" PRIu64 " messages", res->total);
		res->text = strdup(text);
	}
}

struct queue_cmd_ids {
	char (*ids)[SPOOL_QID_MAX];
	size_t n, cap;
};

static int
queue_cmd_deferred_cb(const struct spool_info *si, void *arg)
{
	struct queue_cmd_ids *ids = arg;
	void *nv;

	if (si->state != SPOOL_DEFERRED)
		return 0;
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 256;
		if ((nv = realloc(ids->ids, ids->cap * sizeof(*ids->ids))) ==
		    NULL)
			return 1;
		ids->ids = nv;
	}
	snprintf(ids->ids[ids->n++], SPOOL_QID_MAX, "%s", si->queue_id);
	return 0;
}

size_t
queue_cmd_due_now(struct spool *sp)
{
	struct queue_cmd_ids ids;
	size_t i, done = 0;

	memset(&ids, 0, sizeof(ids));
	spool_foreach(sp, queue_cmd_deferred_cb, &ids);
	for (i = 0; i < ids.n; i++)
		if (spool_set_state(sp, ids.ids[i], SPOOL_ACTIVE, 0, NULL, 0) ==
		    0)
			done++;
	free(ids.ids);
	return done;
}

/* Deferred messages become due now (postqueue -f). */
static void
queue_cmd_flush(const struct queue_cmd_deps *d, Sluice__CommandResult *res)
{
	char text[80];
	size_t done;

	done = queue_cmd_due_now(d->spool);
	delivery_kick(d->delivery);
	res->ok = true;
	snprintf(text, sizeof(text),
	    "%zu deferred messages queued for delivery now", done);
	res->text = strdup(text);
	log_info("node %s: queue flush: %zu deferred messages due now", d->name,
	    done);
}

/* retry, hold, release, delete of one queue id. */
static void
queue_cmd_one(const struct queue_cmd_deps *d, const Sluice__Command *cmd,
    Sluice__CommandResult *res)
{
	struct spool *sp = d->spool;
	struct spool_info si;
	const char *what = "", *fail = NULL;
	int rv = -1;

	if (spool_lookup(sp, cmd->queue_id, &si) == -1) {
		res->text = strdup("not queued on this node");
		return;
	}
	if (delivery_busy(d->delivery, si.queue_id) &&
	    cmd->kind != SLUICE__COMMAND_KIND__CMD_RETRY) {
		res->text =
		    strdup("in a delivery attempt right now; try again");
		return;
	}
	switch (cmd->kind) {
	case SLUICE__COMMAND_KIND__CMD_RETRY:
		what = "retried";
		if (si.state == SPOOL_HELD)
			fail = "held: release it instead";
		else if (si.state == SPOOL_ACTIVE)
			rv = 0; /* already due */
		else
			rv = spool_set_state(
			    sp, si.queue_id, SPOOL_ACTIVE, 0, NULL, 0);
		break;
	case SLUICE__COMMAND_KIND__CMD_HOLD:
		what = "held";
		if (si.state == SPOOL_HELD)
			fail = "already held";
		else
			rv = spool_set_state(sp, si.queue_id, SPOOL_HELD,
			    si.next_attempt_at, NULL, 0);
		break;
	case SLUICE__COMMAND_KIND__CMD_RELEASE:
		what = "released";
		if (si.state != SPOOL_HELD)
			fail = "not held";
		else
			rv = spool_set_state(
			    sp, si.queue_id, SPOOL_ACTIVE, 0, NULL, 0);
		break;
	case SLUICE__COMMAND_KIND__CMD_DELETE:
		what = "deleted";
		/* the record first: si points into the message */
		queue_cmd_event(d, &si, what);
		rv = spool_remove(sp, si.queue_id, NULL, 0);
		break;
	default:
		fail = "unknown command";
		break;
	}
	if (fail != NULL) {
		res->text = strdup(fail);
		return;
	}
	if (rv == -1) {
		res->text = strdup("the spool refused the change; see the log");
		return;
	}
	log_info("%s queue: %s by the operator", cmd->queue_id, what);
	if (cmd->kind != SLUICE__COMMAND_KIND__CMD_DELETE &&
	    spool_lookup(sp, cmd->queue_id, &si) == 0)
		queue_cmd_event(d, &si, what);
	if (cmd->kind == SLUICE__COMMAND_KIND__CMD_RETRY ||
	    cmd->kind == SLUICE__COMMAND_KIND__CMD_RELEASE)
		delivery_kick(d->delivery);
	res->ok = true;
	res->text = strdup(what);
}

void
queue_cmd_run(const struct queue_cmd_deps *d, const Sluice__Command *cmd,
    Sluice__CommandResult *res)
{
	switch (cmd->kind) {
	case SLUICE__COMMAND_KIND__CMD_FLUSH:
		queue_cmd_flush(d, res);
		break;
	case SLUICE__COMMAND_KIND__CMD_LIST:
		queue_cmd_list(d, cmd, res);
		break;
	default:
		queue_cmd_one(d, cmd, res);
		break;
	}
}
