/* hooks_parse.c - provider webhook bodies into delivery events
 * (hooks_parse.h).  Pure: jansson parses, nothing else is touched.  Every
 * string copied out is bounded (HP_FIELD_MAX) and every request's event
 * count too (HOOKS_MAX_EVENTS); what does not fit a provider's documented
 * shape is a one-line error, never a crash. */
#include "hooks_parse.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define HP_FIELD_MAX 2048 /* longest text kept from one field */

static void
hp_event_free(struct hook_event *e)
{
	free(e->event_id);
	free(e->recipient);
	free(e->provider_id);
	free(e->message_id);
	free(e->queue_id);
	free(e->type);
	free(e->diagnostic);
}

void
hooks_batch_free(struct hook_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		hp_event_free(&b->v[i]);
	free(b->v);
	memset(b, 0, sizeof(*b));
}

void
hooks_batch_remove(struct hook_batch *b, size_t i)
{
	hp_event_free(&b->v[i]);
	b->v[i] = b->v[--b->n];
	b->ignored++;
}

static char *
hp_dup(const char *s, bool lower)
{
	size_t n, i;
	char *out;

	if (s == NULL)
		s = "";
	n = strnlen(s, HP_FIELD_MAX);
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		out[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	out[n] = '\0';
	return out;
}

/* "<id>" from "id" or "<id>"; "" stays "". */
static char *
hp_angle(const char *s)
{
	size_t n;
	char *out;

	if (s == NULL || *s == '\0')
		return hp_dup("", false);
	n = strnlen(s, HP_FIELD_MAX);
	if (s[0] == '<')
		return hp_dup(s, false);
	if ((out = malloc(n + 3)) == NULL)
		return NULL;
	snprintf(out, n + 3, "<%.*s>", (int)n, s);
	return out;
}

static const char *
hp_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

/* sluice's queue id in a metadata object, "" if none. */
static const char *
hp_qid(const json_t *o)
{
	static const char *const keys[] = HOOKS_QID_KEYS;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (*hp_str(o, keys[i]) != '\0')
			return hp_str(o, keys[i]);
	return "";
}

/* A number or a numeric string, in seconds (fractions kept as ms). */
static int64_t
hp_time_ms(const json_t *v)
{
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v) * 1000;
	if (json_is_real(v))
		return (int64_t)(json_real_value(v) * 1000.0);
	if (json_is_string(v)) {
		int64_t t = hooks_iso_time(json_string_value(v));

		if (t >= 0)
			return t * 1000;
		t = hooks_unix_time(json_string_value(v));
		return t >= 0 ? t * 1000 : 0;
	}
	return 0;
}

/* Appends one event; the strings are copied. */
static int
hp_add(struct hook_batch *b, const char *id, const char *kind, const char *rcpt,
    const char *provider_id, const char *message_id, const char *queue_id,
    const char *type, const char *diag, int64_t at_ms, bool is_hard, char *err,
    size_t errlen)
{
	struct hook_event *e, *nv;

	if (b->n >= HOOKS_MAX_EVENTS) {
		snprintf(err, errlen, "more than %d events in one request",
		    HOOKS_MAX_EVENTS);
		return -1;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		if ((nv = realloc(b->v, b->cap * sizeof(*nv))) == NULL)
			goto oom;
		b->v = nv;
	}
	e = &b->v[b->n];
	memset(e, 0, sizeof(*e));
	b->n++;
	e->kind = kind;
	e->at_ms = at_ms;
	e->is_hard = is_hard;
	if ((e->event_id = hp_dup(id, false)) == NULL ||
	    (e->recipient = hp_dup(rcpt, true)) == NULL ||
	    (e->provider_id = hp_dup(provider_id, false)) == NULL ||
	    (e->message_id = hp_angle(message_id)) == NULL ||
	    (e->queue_id = hp_dup(queue_id, false)) == NULL ||
	    (e->type = hp_dup(type, false)) == NULL ||
	    (e->diagnostic = hp_dup(diag, false)) == NULL)
		goto oom;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static json_t *
hp_load(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;

	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je)) == NULL)
		snprintf(
		    err, errlen, "not JSON: %s (line %d)", je.text, je.line);
	return root;
}

/* ----------------------------------------------------------- SendGrid */

static const char *
hp_sendgrid_kind(const char *ev, const char *type, bool *is_hard)
{
	*is_hard = false;
	if (strcmp(ev, "delivered") == 0)
		return "provider_delivered";
	if (strcmp(ev, "bounce") == 0) {
		/* "bounce" is the recipient's server refusing for good;
		 * "blocked" a temporary block (SendGrid's docs). */
		*is_hard = strcmp(type, "blocked") != 0;
		return "provider_bounced";
	}
	if (strcmp(ev, "deferred") == 0)
		return "provider_deferred";
	if (strcmp(ev, "dropped") == 0)
		return "provider_dropped";
	if (strcmp(ev, "spamreport") == 0) {
		*is_hard = true;
		return "complaint";
	}
	if (strcmp(ev, "open") == 0)
		return "opened";
	if (strcmp(ev, "click") == 0)
		return "clicked";
	return NULL;
}

int
hooks_parse_sendgrid(const char *body, size_t len, struct hook_batch *b,
    char *err, size_t errlen)
{
	json_t *root, *e;
	size_t i;
	int rc = -1;

	if ((root = hp_load(body, len, err, errlen)) == NULL)
		return -1;
	if (!json_is_array(root)) {
		snprintf(err, errlen, "SendGrid posts a JSON array of events");
		goto out;
	}
	json_array_foreach(root, i, e)
	{
		char pid[256], diag[HP_FIELD_MAX];
		const char *kind, *type, *sg;
		bool hard;

		if (!json_is_object(e)) {
			snprintf(err, errlen, "event %zu is not an object", i);
			goto out;
		}
		type = hp_str(e, "type");
		if ((kind = hp_sendgrid_kind(
		         hp_str(e, "event"), type, &hard)) == NULL) {
			b->ignored++;
			continue;
		}
		if (*hp_str(e, "sg_event_id") == '\0') {
			snprintf(
			    err, errlen, "event %zu has no sg_event_id", i);
			goto out;
		}
		/* sg_message_id is "<the id of '250 queued as'>.<filter>" */
		sg = hp_str(e, "sg_message_id");
		snprintf(pid, sizeof(pid), "%.*s", (int)strcspn(sg, "."), sg);
		snprintf(diag, sizeof(diag), "%s%s%s", hp_str(e, "status"),
		    *hp_str(e, "status") ? " " : "",
		    *hp_str(e, "reason") ? hp_str(e, "reason")
		                         : hp_str(e, "response"));
		if (hp_add(b, hp_str(e, "sg_event_id"), kind,
		        hp_str(e, "email"), pid, hp_str(e, "smtp-id"),
		        hp_qid(e),
		        *type ? type : hp_str(e, "bounce_classification"), diag,
		        hp_time_ms(json_object_get(e, "timestamp")), hard, err,
		        errlen) == -1)
			goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------ Mailgun */

int
hooks_parse_mailgun(const char *body, size_t len, struct hook_batch *b,
    struct hooks_mailgun_sig *sig, char *err, size_t errlen)
{
	const char *ev, *sev, *kind = NULL, *mid;
	json_t *root, *s, *d, *ds, *uv;
	char diag[HP_FIELD_MAX], ts[32];
	bool hard = false;
	int rc = -1;

	memset(sig, 0, sizeof(*sig));
	if ((root = hp_load(body, len, err, errlen)) == NULL)
		return -1;
	s = json_object_get(root, "signature");
	d = json_object_get(root, "event-data");
	if (!json_is_object(s) || !json_is_object(d)) {
		snprintf(err, errlen,
		    "Mailgun posts {\"signature\": ..., \"event-data\": ...}");
		goto out;
	}
	/* the timestamp is a string in Mailgun's examples; a number too */
	if (json_is_integer(json_object_get(s, "timestamp")))
		snprintf(ts, sizeof(ts), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(s, "timestamp")));
	else
		snprintf(ts, sizeof(ts), "%s", hp_str(s, "timestamp"));
	snprintf(sig->timestamp, sizeof(sig->timestamp), "%s", ts);
	snprintf(sig->token, sizeof(sig->token), "%s", hp_str(s, "token"));
	snprintf(sig->signature, sizeof(sig->signature), "%s",
	    hp_str(s, "signature"));
	ev = hp_str(d, "event");
	sev = hp_str(d, "severity");
	if (strcmp(ev, "delivered") == 0)
		kind = "provider_delivered";
	else if (strcmp(ev, "failed") == 0 && strcmp(sev, "permanent") == 0) {
		kind = "provider_bounced";
		hard = true;
	} else if (strcmp(ev, "failed") == 0)
		kind = "provider_deferred";
	else if (strcmp(ev, "rejected") == 0)
		kind = "provider_dropped";
	else if (strcmp(ev, "complained") == 0) {
		kind = "complaint";
		hard = true;
	} else if (strcmp(ev, "opened") == 0)
		kind = "opened";
	else if (strcmp(ev, "clicked") == 0)
		kind = "clicked";
	if (kind == NULL) {
		b->ignored++;
		rc = 0;
		goto out;
	}
	if (*hp_str(d, "id") == '\0') {
		snprintf(err, errlen, "event-data has no id");
		goto out;
	}
	ds = json_object_get(d, "delivery-status");
	if (json_is_integer(json_object_get(ds, "code")))
		snprintf(diag, sizeof(diag), "%" JSON_INTEGER_FORMAT " %s",
		    json_integer_value(json_object_get(ds, "code")),
		    *hp_str(ds, "message") ? hp_str(ds, "message")
		                           : hp_str(ds, "description"));
	else
		snprintf(diag, sizeof(diag), "%s", hp_str(d, "reason"));
	mid = hp_str(json_object_get(json_object_get(d, "message"), "headers"),
	    "message-id");
	uv = json_object_get(d, "user-variables");
	rc = hp_add(b, hp_str(d, "id"), kind, hp_str(d, "recipient"), "", mid,
	    hp_qid(uv), sev, diag, hp_time_ms(json_object_get(d, "timestamp")),
	    hard, err, errlen);
out:
	json_decref(root);
	return rc;
}

/* ----------------------------------------------------------- Postmark */

int
hooks_parse_postmark(const char *body, size_t len, struct hook_batch *b,
    char *err, size_t errlen)
{
	const char *rt, *type, *kind = NULL, *rcpt, *at;
	char id[512], diag[HP_FIELD_MAX];
	json_t *root, *md;
	bool hard = false;
	int rc = -1;

	if ((root = hp_load(body, len, err, errlen)) == NULL)
		return -1;
	if (!json_is_object(root) ||
	    *(rt = hp_str(root, "RecordType")) == '\0') {
		snprintf(
		    err, errlen, "Postmark posts one object with RecordType");
		goto out;
	}
	type = hp_str(root, "Type");
	rcpt = *hp_str(root, "Recipient") ? hp_str(root, "Recipient")
	                                  : hp_str(root, "Email");
	at = hp_str(root, "DeliveredAt");
	if (strcmp(rt, "Delivery") == 0)
		kind = "provider_delivered";
	else if (strcmp(rt, "Bounce") == 0) {
		at = hp_str(root, "BouncedAt");
		if (strcmp(type, "SpamComplaint") == 0) {
			kind = "complaint";
			hard = true;
		} else {
			kind = "provider_bounced";
			hard = strcmp(type, "HardBounce") == 0 ||
			       strcmp(type, "BadEmailAddress") == 0 ||
			       strcmp(type, "ManuallyDeactivated") == 0;
		}
	} else if (strcmp(rt, "SpamComplaint") == 0) {
		at = hp_str(root, "BouncedAt");
		kind = "complaint";
		hard = true;
	} else if (strcmp(rt, "Open") == 0) {
		at = hp_str(root, "ReceivedAt");
		kind = "opened";
	} else if (strcmp(rt, "Click") == 0) {
		at = hp_str(root, "ReceivedAt");
		kind = "clicked";
	}
	if (kind == NULL) {
		b->ignored++;
		rc = 0;
		goto out;
	}
	/* Bounces carry their own ID; other records are one per message,
	 * recipient and record type. */
	if (json_is_integer(json_object_get(root, "ID")))
		snprintf(id, sizeof(id), "%s:%" JSON_INTEGER_FORMAT, rt,
		    json_integer_value(json_object_get(root, "ID")));
	else
		snprintf(id, sizeof(id), "%s:%.200s:%.200s:%.40s", rt,
		    hp_str(root, "MessageID"), rcpt, at);
	snprintf(diag, sizeof(diag), "%s%s%s", hp_str(root, "Description"),
	    *hp_str(root, "Details") ? " " : "", hp_str(root, "Details"));
	md = json_object_get(root, "Metadata");
	rc = hp_add(b, id, kind, rcpt, hp_str(root, "MessageID"), "",
	    hp_qid(md), type, diag,
	    hooks_iso_time(at) > 0 ? hooks_iso_time(at) * 1000 : 0, hard, err,
	    errlen);
out:
	json_decref(root);
	return rc;
}

/* -------------------------------------------------------------- Brevo */

static int
hp_brevo_one(struct hook_batch *b, const json_t *e, char *err, size_t errlen)
{
	const char *ev = hp_str(e, "event"), *kind = NULL, *custom, *q;
	static const char *const keys[] = HOOKS_QID_KEYS;
	char id[768], qid[64] = "", key[32];
	json_t *ts;
	size_t k;
	bool hard = false;

	if (strcmp(ev, "delivered") == 0)
		kind = "provider_delivered";
	else if (strcmp(ev, "hard_bounce") == 0 ||
	         strcmp(ev, "invalid_email") == 0) {
		kind = "provider_bounced";
		hard = true;
	} else if (strcmp(ev, "soft_bounce") == 0)
		kind = "provider_bounced";
	else if (strcmp(ev, "deferred") == 0)
		kind = "provider_deferred";
	else if (strcmp(ev, "blocked") == 0 || strcmp(ev, "error") == 0)
		kind = "provider_dropped";
	else if (strcmp(ev, "spam") == 0 || strcmp(ev, "complaint") == 0) {
		kind = "complaint";
		hard = true;
	} else if (strcmp(ev, "opened") == 0 ||
	           strcmp(ev, "unique_opened") == 0)
		kind = "opened";
	else if (strcmp(ev, "click") == 0)
		kind = "clicked";
	if (kind == NULL) {
		b->ignored++;
		return 0;
	}
	ts = json_object_get(e, "ts_event");
	if (ts == NULL)
		ts = json_object_get(e, "ts");
	/* Brevo has no event id: message, event, address and time are one. */
	snprintf(id, sizeof(id), "%.300s:%.40s:%.300s:%" PRId64,
	    hp_str(e, "message-id"), ev, hp_str(e, "email"), hp_time_ms(ts));
	/* X-Mailin-custom: the node's "sluice_qid=<id>" */
	custom = hp_str(e, "X-Mailin-custom");
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]) && qid[0] == '\0'; k++) {
		snprintf(key, sizeof(key), "%s=", keys[k]);
		if ((q = strstr(custom, key)) != NULL) {
			q += strlen(key);
			snprintf(qid, sizeof(qid), "%.*s",
			    (int)strcspn(q, ";|, "), q);
		}
	}
	return hp_add(b, id, kind, hp_str(e, "email"), "",
	    hp_str(e, "message-id"), qid, ev, hp_str(e, "reason"),
	    hp_time_ms(ts), hard, err, errlen);
}

int
hooks_parse_brevo(const char *body, size_t len, struct hook_batch *b, char *err,
    size_t errlen)
{
	json_t *root, *e;
	size_t i;
	int rc = -1;

	if ((root = hp_load(body, len, err, errlen)) == NULL)
		return -1;
	if (json_is_object(root))
		rc = hp_brevo_one(b, root, err, errlen);
	else if (json_is_array(root)) {
		rc = 0;
		json_array_foreach(root, i, e)
		{
			if (!json_is_object(e) ||
			    hp_brevo_one(b, e, err, errlen) == -1) {
				if (!json_is_object(e))
					snprintf(err, errlen,
					    "event %zu is not an object", i);
				rc = -1;
				break;
			}
		}
	} else
		snprintf(err, errlen, "Brevo posts a JSON object");
	json_decref(root);
	return rc;
}

/* ---------------------------------------------------------------- SNS */

void
hooks_sns_free(struct hooks_sns_doc *d)
{
	json_decref(d->root);
	memset(d, 0, sizeof(*d));
}

static const char *
hp_opt(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int
hooks_parse_sns(const char *body, size_t len, struct hooks_sns_doc *d,
    char *err, size_t errlen)
{
	json_t *root;

	memset(d, 0, sizeof(*d));
	if ((root = hp_load(body, len, err, errlen)) == NULL)
		return -1;
	if (!json_is_object(root) || hp_opt(root, "Type") == NULL) {
		snprintf(err, errlen, "SNS posts one object with Type");
		json_decref(root);
		return -1;
	}
	d->root = root;
	d->f.type = hp_opt(root, "Type");
	d->f.message_id = hp_opt(root, "MessageId");
	d->f.token = hp_opt(root, "Token");
	d->f.topic_arn = hp_opt(root, "TopicArn");
	d->f.subject = hp_opt(root, "Subject");
	d->f.message = hp_opt(root, "Message");
	d->f.timestamp = hp_opt(root, "Timestamp");
	d->f.signature_version = hp_opt(root, "SignatureVersion");
	d->f.signature = hp_opt(root, "Signature");
	d->f.signing_cert_url = hp_opt(root, "SigningCertURL");
	if (d->f.signing_cert_url == NULL) /* older name in SNS's docs */
		d->f.signing_cert_url = hp_opt(root, "SigningCertUrl");
	d->f.subscribe_url = hp_opt(root, "SubscribeURL");
	return 0;
}

/* One event per recipient of an SES notification section. */
static int
hp_ses_rcpts(struct hook_batch *b, const char *sns_id, const char *kind,
    const json_t *list, const char *field, const char *pid, const char *qid,
    const char *type, const char *diag_all, int64_t at, bool hard, char *err,
    size_t errlen)
{
	const json_t *r;
	char id[512];
	size_t i;

	json_array_foreach(list, i, r)
	{
		const char *addr =
		    json_is_string(r) ? json_string_value(r) : hp_str(r, field);
		const char *diag =
		    json_is_object(r) && *hp_str(r, "diagnosticCode")
		        ? hp_str(r, "diagnosticCode")
		        : diag_all;

		snprintf(id, sizeof(id), "%.200s:%.300s", sns_id, addr);
		if (hp_add(b, id, kind, addr, pid, "", qid, type, diag, at,
		        hard, err, errlen) == -1)
			return -1;
	}
	return 0;
}

int
hooks_parse_ses(const char *message, const char *sns_message_id,
    struct hook_batch *b, char *err, size_t errlen)
{
	static const char *const keys[] = HOOKS_QID_KEYS;
	const char *t, *pid, *qid = "", *mid = "";
	json_t *root, *mail, *sec, *tags, *hh;
	size_t k;
	char type[128], diag[HP_FIELD_MAX];
	int64_t at;
	size_t i;
	int rc = -1;

	if (message == NULL || sns_message_id == NULL) {
		snprintf(err, errlen, "SNS notification without Message");
		return -1;
	}
	if ((root = hp_load(message, strlen(message), err, errlen)) == NULL)
		return -1;
	/* Event publishing says eventType, notifications notificationType. */
	t = hp_str(root, "eventType");
	if (*t == '\0')
		t = hp_str(root, "notificationType");
	mail = json_object_get(root, "mail");
	pid = hp_str(mail, "messageId");
	/* tags: {"name": ["value"], ...} */
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]) && *qid == '\0'; k++) {
		tags = json_object_get(json_object_get(mail, "tags"), keys[k]);
		if (json_is_array(tags) && json_array_size(tags) > 0 &&
		    json_is_string(json_array_get(tags, 0)))
			qid = json_string_value(json_array_get(tags, 0));
	}
	hh = json_object_get(mail, "commonHeaders");
	mid = hp_str(hh, "messageId");
	at = hp_time_ms(json_object_get(mail, "timestamp"));
	if (strcmp(t, "Bounce") == 0) {
		sec = json_object_get(root, "bounce");
		snprintf(type, sizeof(type), "%.60s/%.60s",
		    hp_str(sec, "bounceType"), hp_str(sec, "bounceSubType"));
		rc = hp_ses_rcpts(b, sns_message_id, "provider_bounced",
		    json_object_get(sec, "bouncedRecipients"), "emailAddress",
		    pid, qid, type, "",
		    hp_time_ms(json_object_get(sec, "timestamp")),
		    strcmp(hp_str(sec, "bounceType"), "Permanent") == 0, err,
		    errlen);
	} else if (strcmp(t, "Complaint") == 0) {
		sec = json_object_get(root, "complaint");
		rc = hp_ses_rcpts(b, sns_message_id, "complaint",
		    json_object_get(sec, "complainedRecipients"),
		    "emailAddress", pid, qid,
		    hp_str(sec, "complaintFeedbackType"), "",
		    hp_time_ms(json_object_get(sec, "timestamp")), true, err,
		    errlen);
	} else if (strcmp(t, "Delivery") == 0) {
		sec = json_object_get(root, "delivery");
		rc = hp_ses_rcpts(b, sns_message_id, "provider_delivered",
		    json_object_get(sec, "recipients"), "", pid, qid, "",
		    hp_str(sec, "smtpResponse"),
		    hp_time_ms(json_object_get(sec, "timestamp")), false, err,
		    errlen);
	} else if (strcmp(t, "DeliveryDelay") == 0) {
		sec = json_object_get(root, "deliveryDelay");
		rc = hp_ses_rcpts(b, sns_message_id, "provider_deferred",
		    json_object_get(sec, "delayedRecipients"), "emailAddress",
		    pid, qid, hp_str(sec, "delayType"), "",
		    hp_time_ms(json_object_get(sec, "timestamp")), false, err,
		    errlen);
	} else if (strcmp(t, "Reject") == 0 ||
	           strcmp(t, "Rendering Failure") == 0) {
		sec = json_object_get(root, "reject");
		snprintf(diag, sizeof(diag), "%s", hp_str(sec, "reason"));
		rc = hp_ses_rcpts(b, sns_message_id, "provider_dropped",
		    json_object_get(mail, "destination"), "", pid, qid, t, diag,
		    at, false, err, errlen);
	} else if (strcmp(t, "Open") == 0 || strcmp(t, "Click") == 0) {
		rc = hp_ses_rcpts(b, sns_message_id,
		    strcmp(t, "Open") == 0 ? "opened" : "clicked",
		    json_object_get(mail, "destination"), "", pid, qid, "", "",
		    at, false, err, errlen);
	} else {
		b->ignored++;
		rc = 0;
	}
	/* the RFC Message-ID joins too, where SES repeats it */
	for (i = 0; rc == 0 && *mid != '\0' && i < b->n; i++)
		if (b->v[i].message_id[0] == '\0') {
			char *m = hp_angle(mid);

			if (m == NULL) {
				rc = -1;
				break;
			}
			free(b->v[i].message_id);
			b->v[i].message_id = m;
		}
	json_decref(root);
	return rc;
}
