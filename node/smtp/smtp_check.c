/* smtp_check.c - the inbound policy verdicts (smtp_check.h).  The reply
 * texts are Postfix's where Postfix has one. */
#include "smtp_check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "ratelimit.h"

static const struct smtp_verdict *say(struct smtp_verdict *, const char *fmt,
    ...) __attribute__((format(printf, 2, 3)));

/* A reply that is not logged as a refusal. */
static const struct smtp_verdict *
say(struct smtp_verdict *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reply, sizeof(v->reply), fmt, ap);
	va_end(ap);
	v->refusal[0] = '\0';
	v->reason = NULL;
	v->until = 0;
	return v;
}

/* A refusal: the same text replied and logged. */
static const struct smtp_verdict *
refuse(struct smtp_verdict *v, int code, const char *enh, const char *text)
{
	say(v, "%d %s %s", code, enh, text);
	snprintf(v->refusal, sizeof(v->refusal), "%d %s %s", code, enh, text);
	return v;
}

static const struct smtp_verdict *
refuse_err(struct smtp_verdict *v, const struct smtp_reply *err)
{
	return refuse(v, err->code, err->enhanced, err->text);
}

static const struct smtp_verdict *
say_err(struct smtp_verdict *v, const struct smtp_reply *err)
{
	return say(v, "%d %s %s", err->code, err->enhanced, err->text);
}

static bool
may_relay(const struct smtp_check_client *c)
{
	return c->trusted || c->authed;
}

const struct smtp_verdict *
smtp_check_connect(struct smtp_verdict *v, const struct policy *p,
    struct ratelimit *rl, const struct smtp_check_client *c,
    const char *hostname, size_t nsessions, int64_t now)
{
	int64_t until;

	if (ratelimit_auth_blocked(rl, c->ip, now, &until)) {
		say(v,
		    "421 4.7.0 %s Too many AUTH failures from your address; "
		    "try again later",
		    hostname);
		v->reason = "auth_block";
		v->until = until;
		return v;
	}
	if ((int64_t)nsessions > policy_limit_of(p, LIMIT_MAX_CONNECTIONS)) {
		say(v, "421 4.7.0 %s Too many connections, try again later",
		    hostname);
		v->reason = "max_connections";
		return v;
	}
	if (!ratelimit_conn_open(rl, c->ip,
	        policy_limit_of(p, LIMIT_MAX_CONNECTIONS_PER_IP), now)) {
		say(v, "421 4.7.0 %s Too many connections from your address",
		    hostname);
		v->reason = "max_connections_per_ip";
		return v;
	}
	return NULL;
}

const struct smtp_verdict *
smtp_check_mail(struct smtp_verdict *v, const struct policy *p,
    struct ratelimit *rl, const struct smtp_check_client *c, const char *arg,
    struct smtp_path *from, struct smtp_mail_params *mp, int64_t now)
{
	const Sluice__User *u = NULL;
	struct smtp_reply err;
	char key[RATELIMIT_KEY_MAX];
	int64_t per_user;

	if (c->role != SMTP_ROLE_RELAY && !c->authed)
		return say(v, "530 5.7.0 Authentication required");
	if (smtp_parse_mail(arg, from, mp, &err) == -1)
		return say_err(v, &err);
	if (mp->smtputf8 && !c->esmtp)
		return say(v, "503 5.5.1 Error: SMTPUTF8 requires EHLO");
	if (smtp_path_check(from, may_relay(c), mp->smtputf8, &err) == -1)
		return refuse_err(v, &err);
	if (mp->size > policy_limit_of(p, LIMIT_MAX_MESSAGE_SIZE))
		return refuse(
		    v, 552, "5.3.4", "Message size exceeds fixed limit");
	if (c->authed) {
		u = policy_user(p, c->user);
		if (u == NULL || !policy_sender_allowed(u, from->addr)) {
			say(v,
			    "553 5.7.1 <%s>: Sender address rejected: not "
			    "owned by user %s",
			    from->addr, c->user);
			snprintf(v->refusal, sizeof(v->refusal),
			    "553 5.7.1 Sender address rejected: not owned by "
			    "user %s",
			    c->user);
			return v;
		}
	}
	snprintf(key, sizeof(key), "msg-ip:%s", c->ip);
	if (!ratelimit_msg_allowed(rl, key,
	        policy_limit_of(p, LIMIT_MESSAGES_PER_MINUTE_PER_IP), now))
		return refuse(v, 451, "4.7.1",
		    "Rate limit exceeded for your address, try again later");
	if (u != NULL) {
		per_user = u->rate_per_minute > 0
		               ? (int64_t)u->rate_per_minute
		               : policy_limit_of(
		                     p, LIMIT_MESSAGES_PER_MINUTE_PER_USER);
		snprintf(key, sizeof(key), "msg-user:%s", c->user);
		if (!ratelimit_msg_allowed(rl, key, per_user, now))
			return refuse(v, 451, "4.7.1",
			    "Rate limit exceeded for your user, try again "
			    "later");
	}
	return NULL;
}

const struct smtp_verdict *
smtp_check_rcpt(struct smtp_verdict *v, const struct policy *p,
    const struct smtp_check_client *c, const char *arg, bool smtputf8,
    size_t nrcpts, struct smtp_path *to)
{
	const Sluice__Suppression *s;
	struct smtp_reply err;

	if (smtp_parse_rcpt(arg, to, &err) == -1)
		return say_err(v, &err);
	if (smtp_path_check(to, may_relay(c), smtputf8, &err) == -1)
		return refuse_err(v, &err);
	if (!may_relay(c)) {
		say(v, "554 5.7.1 <%s>: Relay access denied", to->addr);
		snprintf(v->refusal, sizeof(v->refusal),
		    "554 5.7.1 Relay access denied");
		return v;
	}
	/* Issue 16: the provider reported a hard bounce or a complaint for
	 * this address (or an operator suppressed it).  Refused at RCPT so
	 * the client hears it now: 5.1.1 (bad mailbox, RFC 3463) for
	 * bounces, 5.7.1 (delivery not authorized) otherwise.  In the
	 * policy's bounce mode it is accepted here and delivery bounces it
	 * (delivery.c). */
	if ((s = policy_suppressed(p, to->addr)) != NULL &&
	    !policy_suppression_bounces(p)) {
		bool bounce = strcmp(s->reason, "bounce") == 0;

		say(v,
		    "550 %s <%s>: Recipient address rejected: suppressed "
		    "(%s)",
		    bounce ? "5.1.1" : "5.7.1", to->addr,
		    s->reason[0] ? s->reason : "manual");
		snprintf(v->refusal, sizeof(v->refusal),
		    "550 %s Recipient address suppressed (%s)",
		    bounce ? "5.1.1" : "5.7.1",
		    s->reason[0] ? s->reason : "manual");
		return v;
	}
	if ((int64_t)nrcpts >= policy_limit_of(p, LIMIT_MAX_RECIPIENTS))
		return refuse(v, 452, "4.5.3", "Error: too many recipients");
	return NULL;
}
