/* smtp_session.c - the inbound ESMTP state machine (smtp_session.h), one
 * struct per connection.  Input is processed a batch at a time: every
 * complete command in the buffer is handled and the replies are written
 * in one send at the end (PIPELINING, RFC 2920; TCP_NODELAY is set at
 * accept, so no Nagle/delayed-ACK stall).  Two operations leave the loop
 * thread's hands - the spool's group commit and the AUTH password check -
 * and both come back by session id; reading pauses meanwhile.  Peer
 * errors are SMTP replies and a log line; nothing a peer sends can make
 * a buffer grow past its ceiling. */
#include "smtp_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "auth.h"
#include "authwatch.h"
#include "dkim.h"
#include "journal.h"
#include "log.h"
#include "mime8.h"
#include "node.h"
#include "policy.h"
#include "proxy.h"
#include "quota.h"
#include "ratelimit.h"
#include "received.h"
#include "rewrite.h"
#include "shadow.h"
#include "signer.h"
#include "smtp_check.h"
#include "smtp_parse.h"
#include "spool.h"
#include "tls_server.h"

#define SMTP_MAX_BAD_CMDS    10    /* then 421 and close */
#define SMTP_PROXY_TIMEOUT_S 10    /* PROXY header must come by then */
#define SMTP_HDR_CAPTURE     65536 /* headers kept for Message-ID */
#define SMTP_HDR_FIRST       4096  /* most header blocks fit */
#define SMTP_DATA_CHUNK      16384
#define SMTP_OUT_HIGH        (256 * 1024) /* pause reading above */
#define SMTP_IN_HIGH         (1024 * 1024)

enum smtp_state {
	SS_PROXY = 0, /* waiting for the PROXY header */
	SS_CMD,       /* reading commands */
	SS_SASL,      /* reading a SASL response line */
	SS_DATA,      /* reading message data */
	SS_COMMIT,    /* waiting for the spool's group commit */
	SS_AUTH,      /* waiting for the password check */
	SS_CLOSING,   /* last reply being written */
};

enum smtp_sasl {
	SASL_NONE = 0,
	SASL_PLAIN,
	SASL_LOGIN_USER,
	SASL_LOGIN_PASS,
};

struct smtp_session {
	uint64_t id;
	struct smtp_session *hnext;
	struct smtp_server *srv;
	struct smtp_listener *lst;
	struct policy *policy; /* ref held; refreshed at MAIL */
	struct bufferevent *bev;
	struct evbuffer *out;    /* replies of this batch */
	struct event *ev_total;  /* session_timeout_seconds */
	uint64_t dot_us;         /* when the final "." was read */
	struct event *ev_linger; /* closing: TLS bytes still below us */
	int lingered;            /* linger rounds so far */
	enum smtp_state state;
	int64_t started_at;

	/* the client */
	int family;
	uint8_t addr[16];
	char ip[INET6_ADDRSTRLEN];
	char client[INET6_ADDRSTRLEN + 10];
	bool counted; /* holds a per-IP slot */
	bool trusted; /* in a policy network */
	bool tls;
	bool discard_line; /* over-long line being dropped */
	bool paused;       /* output over SMTP_OUT_HIGH */
	int bad_cmds;
	char helo[256];
	bool has_helo;
	bool esmtp;

	/* AUTH */
	bool authed;
	char user[SMTP_SASL_USER_MAX];
	enum smtp_sasl sasl;
	char sasl_user[SMTP_SASL_USER_MAX];
	const char *sasl_mech; /* "PLAIN" or "LOGIN", for the log */
	bool sasl_known;       /* sasl_user names a credential */

	/* the transaction */
	bool has_mail;
	/* quota.h reservations of this transaction, under user */
	unsigned quota_msgs, quota_rcpts;
	struct smtp_path from;
	struct smtp_mail_params mp;
	char **rcpts;
	size_t nrcpts;
	struct spool_msg *msg;
	struct smtp_data data;
	bool overflow;   /* past max_message_size */
	int write_errno; /* spool_msg_write failed */
	bool committing; /* inside spool_msg_commit() */
	/* Redundancy (docs/redundancy.md): the peer copy, sent beside the
	 * commit when the data is in memory; the 250 waits for both. */
	enum { COPY_NONE, COPY_PENDING, COPY_OK, COPY_FAILED } copy;
	bool committed; /* own commit durable, the copy still on its way */
	char copy_why[256];
	int64_t max_size;
	uint32_t max_hops; /* max_received_headers */
	bool rcv8bit;      /* our Received: has a UTF-8 "for" address */
	char *hdr;         /* the header block (for Message-ID), up to */
	size_t hdrlen;     /* SMTP_HDR_CAPTURE octets; grows from */
	size_t hdrcap;     /* SMTP_HDR_FIRST */
	bool hdr_done;     /* the chunk with its end is in */
	/* DKIM: the message being signed as it streams in (NULL when the
	 * policy has no keys), then the outcome (signer.h) */
	struct dkim_sign *dkim;
	/* A message declared BODY=8BITMIME is also signed in its 7-bit form
	 * (RFC 6376 5.3): mime8 converts as the delivery would, dkim7 hashes
	 * the result; used when the data was 8-bit and converted cleanly. */
	struct dkim_sign *dkim7;
	struct mime8 *m8;
	bool signed7; /* the stored signature covers the 7-bit form */
	struct signer_result dkim_res;
	/* The AUTH user's policy (issue 15), from the policy at DATA:
	 * queued held; envelope sender and From: address rewritten.  While
	 * rw_pending the header block is collected in rwbuf (at most
	 * SMTP_HDR_CAPTURE) to rewrite its From: field before it streams
	 * on. */
	bool hold;
	char rw_sender[SMTP_PATH_MAX];
	char rw_from[SMTP_PATH_MAX];
	bool rw_pending;
	char *rwbuf;
	size_t rwlen;
};

static void session_process(struct smtp_session *);
static void session_settle(struct smtp_session *);
static void session_free(struct smtp_session *);
static void session_on_read(struct bufferevent *, void *);
static void session_on_write(struct bufferevent *, void *);
static void session_on_event(struct bufferevent *, short, void *);

const char *
smtp_role_name(enum smtp_role r)
{
	switch (r) {
	case SMTP_ROLE_RELAY:
		return "relay";
	case SMTP_ROLE_SUBMISSION:
		return "submission";
	case SMTP_ROLE_SMTPS:
		return "smtps";
	}
	return "?";
}

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t
limit(struct smtp_session *s, enum limit_key k)
{
	return policy_limit_of(s->policy, k);
}

static struct node *
node_of(struct smtp_session *s)
{
	return s->srv->node;
}

/* ----------------------------------------------------------- replies */

static void reply(struct smtp_session *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(s->out, fmt, ap);
	va_end(ap);
	evbuffer_add(s->out, "\r\n", 2);
}

/* One send per batch: everything collected goes out together.  On a
 * plain socket with nothing queued the batch is written at once: handed
 * to the bufferevent, a reply costs two epoll_ctl calls (write event on,
 * then off once sent) and a turn of the loop, which were a third of the
 * node's system calls at 100 sessions.  What the socket does not take
 * (and any error, met again there) is left to the bufferevent. */
static void
session_flush(struct smtp_session *s)
{
	if (evbuffer_get_length(s->out) == 0)
		return;
	if (!s->tls && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		(void)evbuffer_write(s->out, bufferevent_getfd(s->bev));
	if (evbuffer_get_length(s->out) > 0)
		bufferevent_write_buffer(s->bev, s->out);
}

/* Says a last thing and closes once it is written. */
static void
session_close(struct smtp_session *s)
{
	s->state = SS_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
}

/* --------------------------------------------------------- the table */

static struct smtp_session *
session_lookup(struct smtp_server *srv, uint64_t id)
{
	struct smtp_session *s;

	for (s = srv->sessions[id % SMTP_SESSION_BUCKETS]; s != NULL;
	     s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

static void
session_link(struct smtp_session *s)
{
	struct smtp_session **b =
	    &s->srv->sessions[s->id % SMTP_SESSION_BUCKETS];

	s->hnext = *b;
	*b = s;
	s->srv->nsessions++;
}

static void
session_unlink(struct smtp_session *s)
{
	struct smtp_session **pp =
	    &s->srv->sessions[s->id % SMTP_SESSION_BUCKETS];

	for (; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			s->srv->nsessions--;
			return;
		}
}

/* ------------------------------------------------------- transaction */

static void
txn_reset(struct smtp_session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = 0;
	if (s->msg != NULL)
		spool_msg_abort(s->msg);
	s->msg = NULL;
	free(s->hdr);
	s->hdr = NULL;
	s->hdrlen = s->hdrcap = 0;
	s->hdr_done = false;
	dkim_sign_free(s->dkim);
	s->dkim = NULL;
	dkim_sign_free(s->dkim7);
	s->dkim7 = NULL;
	free(s->m8);
	s->m8 = NULL;
	s->signed7 = false;
	free(s->dkim_res.headers);
	memset(&s->dkim_res, 0, sizeof(s->dkim_res));
	s->hold = false;
	s->rw_sender[0] = s->rw_from[0] = '\0';
	s->rw_pending = false;
	free(s->rwbuf);
	s->rwbuf = NULL;
	s->rwlen = 0;
	if (s->quota_msgs != 0 || s->quota_rcpts != 0)
		quota_release(
		    node_of(s)->quota, s->user, s->quota_msgs, s->quota_rcpts);
	s->quota_msgs = s->quota_rcpts = 0;
	s->has_mail = false;
	s->overflow = false;
	s->write_errno = 0;
	memset(&s->from, 0, sizeof(s->from));
	memset(&s->mp, 0, sizeof(s->mp));
}

static void log_refused(struct smtp_session *s, const char *to, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* One line per refused transaction step, Postfix style. */
static void
log_refused(struct smtp_session *s, const char *to, const char *fmt, ...)
{
	char r[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r, sizeof(r), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&node_of(s)->stats.refused, 1);
	log_info("smtp refused client=%s%s%s from=<%s>%s%s%s reply=\"%s\"",
	    s->client, s->authed ? " user=" : "", s->authed ? s->user : "",
	    s->from.addr, to != NULL ? " to=<" : "", to != NULL ? to : "",
	    to != NULL ? ">" : "", r);
}

/* Replies with r and logs the refusal. */
static void
refuse(struct smtp_session *s, const char *to, int code, const char *enh,
    const char *text)
{
	reply(s, "%d %s %s", code, enh, text);
	log_refused(s, to, "%d %s %s", code, enh, text);
}

/* The session runs the node's current policy from the next transaction
 * on; a session keeps its reference in between. */
static void
policy_refresh(struct smtp_session *s)
{
	struct policy *cur = node_of(s)->policy;

	if (cur == s->policy)
		return;
	policy_unref(s->policy);
	s->policy = policy_ref(cur);
	s->trusted = policy_client_trusted(s->policy, s->family, s->addr);
	if (s->authed && policy_user(s->policy, s->user) == NULL) {
		log_info(
		    "smtp auth revoked client=%s user=%s", s->client, s->user);
		s->authed = false;
	}
}

/* ---------------------------------------------------------- commands */

/* What the verdicts of smtp_check.c know of this client. */
static const struct smtp_check_client *
check_client(struct smtp_session *s, struct smtp_check_client *c)
{
	c->ip = s->ip;
	c->role = s->lst->role;
	c->trusted = s->trusted;
	c->authed = s->authed;
	c->esmtp = s->esmtp;
	c->user = s->user;
	return c;
}

/* Replies with a verdict and logs it when it is a refusal.  to: the
 * recipient refused, if any. */
static void
reply_verdict(
    struct smtp_session *s, const char *to, const struct smtp_verdict *v)
{
	reply(s, "%s", v->reply);
	if (v->refusal[0] != '\0')
		log_refused(s, to, "%s", v->refusal);
}

static bool
auth_offered(struct smtp_session *s)
{
	return s->tls; /* never in clear text */
}

static void
cmd_helo(struct smtp_session *s, const char *arg, bool esmtp)
{
	struct node *n = node_of(s);

	if (*arg == '\0' || strlen(arg) >= sizeof(s->helo) ||
	    strpbrk(arg, " \t") != NULL) {
		reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	txn_reset(s);
	snprintf(s->helo, sizeof(s->helo), "%s", arg);
	s->has_helo = true;
	s->esmtp = esmtp;
	if (!esmtp) {
		reply(s, "250 %s", n->hostname);
		return;
	}
	reply(s, "250-%s", n->hostname);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %" PRId64, limit(s, LIMIT_MAX_MESSAGE_SIZE));
	reply(s, "250-8BITMIME");
	reply(s, "250-SMTPUTF8");
	if (s->srv->tls != NULL && !s->tls)
		reply(s, "250-STARTTLS");
	if (auth_offered(s))
		reply(s, "250-AUTH PLAIN LOGIN");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

/* The authenticated user's quotas (quota.h); false when it has none. */
static bool
session_quota_limits(struct smtp_session *s, struct quota_limits *l)
{
	const Sluice__User *u;

	memset(l, 0, sizeof(*l));
	if (!s->authed || (u = policy_user(s->policy, s->user)) == NULL)
		return false;
	l->v[QUOTA_HOUR_MSGS] = u->quota_hour_msgs;
	l->v[QUOTA_HOUR_RCPTS] = u->quota_hour_rcpts;
	l->v[QUOTA_DAY_MSGS] = u->quota_day_msgs;
	l->v[QUOTA_DAY_RCPTS] = u->quota_day_rcpts;
	return quota_any(l);
}

/* MAIL (msgs) or RCPT: reserves one against the user's quotas, or
 * refuses with 451 4.7.1 and the reset time. */
static bool
session_quota_take(struct smtp_session *s, const char *to, bool msgs)
{
	struct quota_limits l;
	struct quota_refusal r;
	char text[SMTP_TEXT_MAX];
	bool ok;

	if (!session_quota_limits(s, &l))
		return true;
	ok = msgs ? quota_mail(node_of(s)->quota, s->user, &l, now_s(), &r)
	          : quota_rcpt(node_of(s)->quota, s->user, &l, now_s(), &r);
	if (ok) {
		if (msgs)
			s->quota_msgs++;
		else
			s->quota_rcpts++;
		return true;
	}
	atomic_fetch_add(&node_of(s)->stats.quota_refused, 1);
	quota_refusal_text(&r, s->user, text, sizeof(text));
	reply(s, "%s", text);
	log_refused(s, to, "%s", text);
	return false;
}

static void
cmd_mail(struct smtp_session *s, const char *arg)
{
	struct smtp_check_client c;
	struct smtp_verdict vbuf;
	const struct smtp_verdict *v;

	if (!s->has_helo) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->has_mail) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	policy_refresh(s);
	v = smtp_check_mail(&vbuf, s->policy, s->srv->rl, check_client(s, &c),
	    arg, &s->from, &s->mp, now_s());
	if (v != NULL) {
		reply_verdict(s, NULL, v);
		memset(&s->from, 0, sizeof(s->from));
		return;
	}
	if (!session_quota_take(s, NULL, true)) {
		memset(&s->from, 0, sizeof(s->from));
		return;
	}
	s->has_mail = true;
	reply(s, "250 2.1.0 Ok");
}

static void
cmd_rcpt(struct smtp_session *s, const char *arg)
{
	struct smtp_check_client c;
	struct smtp_verdict vbuf;
	const struct smtp_verdict *v;
	struct smtp_path to;
	char **r;

	if (!s->has_mail) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	v = smtp_check_rcpt(&vbuf, s->policy, check_client(s, &c), arg,
	    s->mp.smtputf8, s->nrcpts, &to);
	if (v != NULL) {
		reply_verdict(s, to.addr, v);
		return;
	}
	if (!session_quota_take(s, to.addr, false))
		return;
	if ((r = reallocarray(s->rcpts, s->nrcpts + 1, sizeof(*r))) == NULL)
		goto oom;
	s->rcpts = r;
	if ((s->rcpts[s->nrcpts] = strdup(to.addr)) == NULL)
		goto oom;
	s->nrcpts++;
	reply(s, "250 2.1.5 Ok");
	return;
oom:
	if (s->quota_rcpts > s->nrcpts) { /* this one's reservation */
		quota_release(node_of(s)->quota, s->user, 0, 1);
		s->quota_rcpts--;
	}
	reply(s, "452 4.3.1 Insufficient system resources");
}

/* Our Received: field (RFC 5321 4.4) goes in front of the data, into the
 * spool before the client's first octet: computed once, here, and
 * delivered with every copy.  Not counted against max_message_size
 * (that limit is what the client may send). */
static int
data_received(struct smtp_session *s)
{
	struct received_info ri;
	char buf[RECEIVED_MAX];
	size_t len;

	memset(&ri, 0, sizeof(ri));
	ri.helo = s->helo;
	ri.ipv6 = s->family == AF_INET6;
	ri.ip = s->ip;
	ri.by = node_of(s)->hostname;
	ri.esmtp = s->esmtp;
	ri.tls = s->tls;
	ri.authed = s->authed;
	ri.smtputf8 = s->mp.smtputf8;
	ri.qid = spool_msg_id(s->msg);
	ri.rcpt = s->nrcpts == 1 ? s->rcpts[0] : NULL;
	ri.at = now_s();
	if ((len = received_format(buf, sizeof(buf), &ri)) == 0) {
		errno = EINVAL;
		return -1;
	}
	s->rcv8bit = false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] > 127)
			s->rcv8bit = true; /* SMTPUTF8 only (RFC 6531) */
	return spool_msg_write(s->msg, buf, len);
}

/* The AUTH user's hold flag and rewrites (issue 15), for this
 * transaction. */
static void
data_user_policy(struct smtp_session *s)
{
	const Sluice__User *u;

	if (!s->authed || (u = policy_user(s->policy, s->user)) == NULL)
		return;
	s->hold = u->hold;
	snprintf(s->rw_sender, sizeof(s->rw_sender), "%s", u->rewrite_sender);
	snprintf(s->rw_from, sizeof(s->rw_from), "%s", u->rewrite_from);
	s->rw_pending = s->rw_from[0] != '\0';
}

static void
cmd_data(struct smtp_session *s, const char *arg)
{
	struct node *n = node_of(s);

	if (!s->has_mail) {
		reply(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (s->nrcpts == 0) {
		/* RFC 2920 3.1: the pipelined RCPTs all failed */
		reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (*arg != '\0') {
		reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	errno = 0;
	if (n->spool == NULL || (s->msg = spool_msg_new(n->spool)) == NULL ||
	    data_received(s) == -1) {
		if (errno == ENOSPC)
			refuse(s, NULL, 452, "4.3.1",
			    "Insufficient system storage");
		else
			refuse(
			    s, NULL, 451, "4.3.0", "Temporary queue failure");
		txn_reset(s);
		return;
	}
	smtp_data_init(&s->data);
	data_user_policy(s);
	if (signer_active(n->signer))
		s->dkim = dkim_sign_new(
		    signer_body_canons(n->signer), DKIM_HEADER_MAX);
	/* Declared 8-bit, not SMTPUTF8 (that cannot go as 7 bit anyway):
	 * sign the 7-bit form too, pick at the dot. */
	if (s->dkim != NULL && s->mp.body == SMTP_BODY_8BITMIME &&
	    !s->mp.smtputf8 &&
	    (s->dkim7 = dkim_sign_new(
	         signer_body_canons(n->signer), DKIM_HEADER_MAX)) != NULL &&
	    (s->m8 = malloc(sizeof(*s->m8))) != NULL)
		mime8_init(s->m8);
	s->max_size = limit(s, LIMIT_MAX_MESSAGE_SIZE);
	s->max_hops = (uint32_t)limit(s, LIMIT_MAX_RECEIVED_HEADERS);
	s->state = SS_DATA;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
auth_block_refuse(struct smtp_session *s, int64_t until)
{
	reply(s, "454 4.7.0 Too many AUTH failures; try again later");
	log_info("auth-block client=%s refused=auth until=%" PRId64, s->client,
	    until);
}

/* The SASL exchange has a user and a password: check them. */
static void
auth_check(struct smtp_session *s, const char *user, const char *pass)
{
	const Sluice__User *u = policy_user(s->policy, user);
	enum auth_start r;

	snprintf(s->sasl_user, sizeof(s->sasl_user), "%s", user);
	s->sasl_mech = s->sasl == SASL_PLAIN ? "PLAIN" : "LOGIN";
	s->sasl_known = u != NULL;
	s->sasl = SASL_NONE;
	r = auth_verify(s->srv->auth, user, pass,
	    u != NULL && u->password_hash[0] != '\0' ? u->password_hash : NULL,
	    s->id);
	switch (r) {
	case AUTH_BUSY:
		s->state = SS_CMD;
		reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	case AUTH_CACHED_OK:
		s->state = SS_CMD;
		smtp_session_on_auth(s->srv, s->id, true); /* replies now */
		break;
	case AUTH_QUEUED:
		s->state = SS_AUTH;
		bufferevent_disable(s->bev, EV_READ);
		break;
	}
}

void
smtp_session_on_auth(struct smtp_server *srv, uint64_t id, bool ok)
{
	struct smtp_session *s = session_lookup(srv, id);
	int64_t block_s, max;
	bool async;

	if (s == NULL || s->state == SS_CLOSING)
		return; /* the client left meanwhile */
	async = s->state == SS_AUTH;
	s->state = SS_CMD;
	if (ok) {
		s->authed = true;
		snprintf(s->user, sizeof(s->user), "%s", s->sasl_user);
		reply(s, "235 2.7.0 Authentication successful");
		log_info("smtp auth client=%s user=%s result=ok", s->client,
		    s->user);
	} else {
		/* A user field that names no credential may well be a
		 * password typed in the wrong box: it goes nowhere, neither
		 * to the log nor to the fleet's AUTH-burst counts (Postfix
		 * logs no user name for failures at all). */
		atomic_fetch_add(&node_of(s)->stats.auth_failures, 1);
		authwatch_failure(node_of(s)->authwatch, s->ip,
		    s->sasl_known ? s->sasl_user : NULL, now_s());
		reply(s, "535 5.7.8 Authentication credentials invalid");
		log_info("smtp auth client=%s mech=%s%s%s result=failed",
		    s->client, s->sasl_mech, s->sasl_known ? " user=" : "",
		    s->sasl_known ? s->sasl_user : "");
		explicit_bzero(s->sasl_user, sizeof(s->sasl_user));
		max = limit(s, LIMIT_AUTH_FAILURES_BEFORE_BLOCK);
		block_s = limit(s, LIMIT_AUTH_BLOCK_SECONDS);
		if (ratelimit_auth_failure(
		        s->srv->rl, s->ip, max, block_s, now_s()))
			log_info("auth-block client=%s failures=%" PRId64
			         " seconds=%" PRId64,
			    s->ip, max, block_s);
	}
	if (async) {
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
		session_settle(s);
	}
}

static void
cmd_auth(struct smtp_session *s, const char *arg)
{
	char mech[16], dec[SMTP_SASL_MAX], user[SMTP_SASL_USER_MAX],
	    pass[SMTP_SASL_PASS_MAX], b64[64];
	const char *init = NULL;
	size_t n = strcspn(arg, " "), declen;
	int64_t until;

	if (!auth_offered(s)) {
		if (s->srv->tls != NULL)
			reply(s, "530 5.7.0 Must issue a STARTTLS command "
			         "first");
		else
			reply(s, "503 5.5.1 Error: authentication not "
			         "enabled");
		return;
	}
	if (!s->has_helo || !s->esmtp) {
		reply(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->authed) {
		reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->has_mail) {
		reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	if (ratelimit_auth_blocked(s->srv->rl, s->ip, now_s(), &until)) {
		auth_block_refuse(s, until);
		return;
	}
	if (n == 0 || n >= sizeof(mech)) {
		reply(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	memcpy(mech, arg, n);
	mech[n] = '\0';
	if (arg[n] == ' ')
		init = arg + n + 1;
	if (strcasecmp(mech, "PLAIN") == 0) {
		if (init == NULL) {
			s->sasl = SASL_PLAIN;
			s->state = SS_SASL;
			reply(s, "334 ");
			return;
		}
		/* RFC 4954 4: "=" is an empty initial response */
		if (strcmp(init, "=") == 0)
			init = "";
		if (smtp_b64_decode(
		        init, strlen(init), dec, sizeof(dec), &declen) == -1) {
			reply(s, "501 5.5.2 Cannot decode response");
			return;
		}
		if (smtp_sasl_plain(dec, declen, user, sizeof(user), pass,
		        sizeof(pass)) == -1) {
			explicit_bzero(dec, sizeof(dec));
			reply(s, "501 5.5.2 Malformed PLAIN response");
			return;
		}
		explicit_bzero(dec, sizeof(dec));
		s->sasl = SASL_PLAIN;
		auth_check(s, user, pass);
		explicit_bzero(pass, sizeof(pass));
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		if (init != NULL) {
			if (smtp_b64_decode(init, strlen(init), dec,
			        sizeof(dec), &declen) == -1 ||
			    smtp_sasl_login_item(dec, declen, s->sasl_user,
			        sizeof(s->sasl_user)) == -1) {
				reply(s, "501 5.5.2 Cannot decode response");
				return;
			}
			s->sasl = SASL_LOGIN_PASS;
			smtp_b64_encode("Password:", 9, b64);
		} else {
			s->sasl = SASL_LOGIN_USER;
			smtp_b64_encode("Username:", 9, b64);
		}
		s->state = SS_SASL;
		reply(s, "334 %s", b64);
	} else
		reply(s, "504 5.5.4 Unrecognized authentication type");
}

/* One SASL response line (already bounded by SMTP_SASL_MAX). */
static void
sasl_line(struct smtp_session *s, const char *line)
{
	char dec[SMTP_SASL_MAX], user[SMTP_SASL_USER_MAX],
	    pass[SMTP_SASL_PASS_MAX], b64[64];
	size_t declen;

	s->state = SS_CMD;
	if (strcmp(line, "*") == 0) {
		s->sasl = SASL_NONE;
		reply(s, "501 5.7.0 Authentication cancelled");
		return;
	}
	if (smtp_b64_decode(line, strlen(line), dec, sizeof(dec), &declen) ==
	    -1) {
		s->sasl = SASL_NONE;
		reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	switch (s->sasl) {
	case SASL_PLAIN:
		if (smtp_sasl_plain(dec, declen, user, sizeof(user), pass,
		        sizeof(pass)) == -1) {
			s->sasl = SASL_NONE;
			reply(s, "501 5.5.2 Malformed PLAIN response");
			break;
		}
		auth_check(s, user, pass);
		break;
	case SASL_LOGIN_USER:
		if (smtp_sasl_login_item(dec, declen, s->sasl_user,
		        sizeof(s->sasl_user)) == -1) {
			s->sasl = SASL_NONE;
			reply(s, "501 5.5.2 Cannot decode response");
			break;
		}
		s->sasl = SASL_LOGIN_PASS;
		s->state = SS_SASL;
		smtp_b64_encode("Password:", 9, b64);
		reply(s, "334 %s", b64);
		break;
	case SASL_LOGIN_PASS:
		if (smtp_sasl_login_item(dec, declen, pass, sizeof(pass)) ==
		    -1) {
			s->sasl = SASL_NONE;
			reply(s, "501 5.5.2 Cannot decode response");
			break;
		}
		snprintf(user, sizeof(user), "%s", s->sasl_user);
		auth_check(s, user, pass);
		break;
	case SASL_NONE:
		break;
	}
	explicit_bzero(dec, sizeof(dec));
	explicit_bzero(pass, sizeof(pass));
}

static void session_start_tls(struct smtp_session *);

static void
bad_command(struct smtp_session *s, const char *text)
{
	if (++s->bad_cmds >= SMTP_MAX_BAD_CMDS) {
		reply(s, "421 4.7.0 %s Error: too many errors",
		    node_of(s)->hostname);
		log_info("smtp disconnect client=%s reason=too-many-errors",
		    s->client);
		session_close(s);
		return;
	}
	reply(s, "%s", text);
}

static void
command(struct smtp_session *s, const char *line)
{
	struct smtp_cmd cmd;

	smtp_cmd_parse(line, &cmd);
	switch (cmd.verb) {
	case SMTP_HELO:
		cmd_helo(s, cmd.arg, false);
		break;
	case SMTP_EHLO:
		cmd_helo(s, cmd.arg, true);
		break;
	case SMTP_MAIL:
		cmd_mail(s, cmd.arg);
		break;
	case SMTP_RCPT:
		cmd_rcpt(s, cmd.arg);
		break;
	case SMTP_DATA:
		cmd_data(s, cmd.arg);
		break;
	case SMTP_RSET:
		txn_reset(s);
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_QUIT:
		reply(s, "221 2.0.0 Bye");
		session_close(s);
		break;
	case SMTP_VRFY:
		/* RFC 5321 3.5.3: neither confirm nor deny */
		reply(s, "252 2.0.0 Cannot VRFY user; send some mail");
		break;
	case SMTP_EXPN:
		reply(s, "502 5.5.1 Error: EXPN not available");
		break;
	case SMTP_HELP:
		reply(s, "214 2.0.0 See RFC 5321");
		break;
	case SMTP_BDAT:
		/* CHUNKING is not offered */
		bad_command(s, "502 5.5.1 Error: BDAT not implemented");
		break;
	case SMTP_STARTTLS:
		if (s->srv->tls == NULL) {
			reply(s, "502 5.5.1 Error: STARTTLS not available");
		} else if (s->tls) {
			reply(s, "503 5.5.1 Error: TLS already active");
		} else if (*cmd.arg != '\0') {
			reply(s, "501 5.5.4 Syntax: STARTTLS");
		} else {
			reply(s, "220 2.0.0 Ready to start TLS");
			session_start_tls(s);
		}
		break;
	case SMTP_AUTH:
		cmd_auth(s, cmd.arg);
		break;
	case SMTP_UNKNOWN:
		bad_command(s, "500 5.5.2 Error: command not recognized");
		break;
	}
}

/* -------------------------------------------------------------- DATA */

static void data_sign7_cb(void *arg, const char *p, size_t n);

static void
data_store(struct smtp_session *s, const char *buf, size_t len)
{
	size_t n;

	if (len == 0)
		return;
	/* The header block only: the body was copied here too (64 KiB of
	 * it, and a 64 KiB buffer per message), a fifth of the extra cost
	 * of a 20 KB message over a 1 KB one. */
	if (!s->hdr_done && s->hdrlen < SMTP_HDR_CAPTURE) {
		n = SMTP_HDR_CAPTURE - s->hdrlen;
		n = n < len ? n : len;
		if (s->hdrlen + n > s->hdrcap) {
			size_t nc = s->hdrcap == 0 ? SMTP_HDR_FIRST : s->hdrcap;
			char *nb;
			while (nc < s->hdrlen + n)
				nc *= 2;
			if ((nb = realloc(s->hdr, nc)) == NULL) {
				n = 0; /* what is in so far is all */
				s->hdr_done = true;
			} else {
				s->hdr = nb;
				s->hdrcap = nc;
			}
		}
		if (n > 0) {
			memcpy(s->hdr + s->hdrlen, buf, n);
			s->hdrlen += n;
		}
	}
	/* This chunk held the blank line that ends the headers, or came
	 * after it: what follows is body. */
	if (s->data.in_body)
		s->hdr_done = true;
	if (s->data.size > (uint64_t)s->max_size)
		s->overflow = true;
	if (s->overflow || s->write_errno != 0 || s->data.bare || s->data.nul ||
	    s->data.toolong || s->data.nreceived >= s->max_hops)
		return; /* refused anyway: read on, write nothing */
	if (s->dkim != NULL)
		dkim_sign_update(s->dkim, buf, len); /* body hash streams */
	if (s->m8 != NULL && s->m8->err == MIME8_OK)
		(void)mime8_feed(s->m8, buf, len, data_sign7_cb, s->dkim7);
	if (spool_msg_write(s->msg, buf, len) == -1)
		s->write_errno = errno != 0 ? errno : EIO;
}

/* The collected header block, its From: rewritten (rewrite.c), goes on
 * to the spool; a header without From: (or over SMTP_HDR_CAPTURE, or no
 * memory) goes on as it is. */
static void
data_rewrite_flush(struct smtp_session *s)
{
	char *out;
	size_t outlen;

	s->rw_pending = false;
	if (s->rwlen == 0)
		return;
	out = rewrite_from(s->rwbuf, s->rwlen, s->rw_from, &outlen);
	if (out != NULL) {
		data_store(s, out, outlen);
		free(out);
	} else
		data_store(s, s->rwbuf, s->rwlen);
	free(s->rwbuf);
	s->rwbuf = NULL;
	s->rwlen = 0;
}

static void
data_write(struct smtp_session *s, const char *buf, size_t len)
{
	size_t n, i, start;

	if (!s->rw_pending) {
		data_store(s, buf, len);
		return;
	}
	if (s->rwbuf == NULL && (s->rwbuf = malloc(SMTP_HDR_CAPTURE)) == NULL) {
		s->rw_pending = false;
		data_store(s, buf, len);
		return;
	}
	/* up to the end of the header block: CRLF CRLF, or a CRLF first */
	start = s->rwlen;
	n = SMTP_HDR_CAPTURE - s->rwlen < len ? SMTP_HDR_CAPTURE - s->rwlen
	                                      : len;
	memcpy(s->rwbuf + s->rwlen, buf, n);
	s->rwlen += n;
	for (i = start > 3 ? start - 3 : 0; i + 1 < s->rwlen; i++) {
		if (s->rwbuf[i] != '\r' || s->rwbuf[i + 1] != '\n')
			continue;
		if (i == 0 || (i >= 2 && s->rwbuf[i - 2] == '\r' &&
		                  s->rwbuf[i - 1] == '\n')) {
			/* i + 2 ends the header block */
			size_t keep = i + 2, extra = s->rwlen - keep;
			s->rwlen = keep;
			data_rewrite_flush(s);
			data_store(s, buf + (n - extra), len - (n - extra));
			return;
		}
	}
	if (s->rwlen == SMTP_HDR_CAPTURE) {
		/* a header block this long is not rewritten */
		data_store(s, s->rwbuf, s->rwlen);
		free(s->rwbuf);
		s->rwbuf = NULL;
		s->rwlen = 0;
		s->rw_pending = false;
		data_store(s, buf + n, len - n);
	}
}

static void smtp_session_on_commit(
    void *arg, uint64_t cookie, const char *qid, bool ok);
static void smtp_session_on_shadow(
    void *arg, uint64_t cookie, const char *qid, bool ok, const char *why);
static void data_copy(
    struct smtp_session *, struct spool_msg *, const struct spool_envelope *);

static void
data_sign7_cb(void *arg, const char *p, size_t n)
{
	dkim_sign_update(arg, p, n);
}

/* The 7-bit form is what gets signed when the data turned out 8-bit (a
 * hop without 8BITMIME would convert it and break a signature over the
 * 8-bit form) and converted cleanly (else no hop gets it converted). */
static bool
data_sign7_usable(struct smtp_session *s)
{
	if (s->m8 == NULL || s->dkim7 == NULL ||
	    !(s->data.body8bit || s->data.hdr8bit || s->rcv8bit))
		return false;
	if (s->m8->err == MIME8_OK)
		(void)mime8_finish(s->m8, data_sign7_cb, s->dkim7);
	return s->m8->err == MIME8_OK;
}

/* Signs the accepted message once, before it is queued: the signatures
 * are stored with it and sent unchanged on every attempt and hop.  -1
 * only when the signing domain requires a signature and none could be
 * made: the client gets a 4xx and sends again later (never lost). */
static int
data_sign(struct smtp_session *s)
{
	struct node *n = node_of(s);
	struct signer_result *r = &s->dkim_res;

	if (s->dkim == NULL) {
		if (!signer_active(n->signer))
			return 0;
		/* dkim_sign_new failed (memory): as a signing failure */
		snprintf(r->err, sizeof(r->err), "out of memory");
		r->outcome = SIGNER_FAILED_OPTIONAL;
	} else if (data_sign7_usable(s)) {
		signer_sign(n->signer, s->dkim7, now_s(), r);
		s->signed7 = r->outcome == SIGNER_SIGNED;
	} else
		signer_sign(n->signer, s->dkim, now_s(), r);
	dkim_sign_free(s->dkim);
	s->dkim = NULL;
	dkim_sign_free(s->dkim7);
	s->dkim7 = NULL;
	free(s->m8);
	s->m8 = NULL;
	if (r->err[0] != '\0')
		log_warn("smtp dkim %s client=%s from=<%s> d=%s: %s",
		    signer_outcome_name(r->outcome), s->client, s->from.addr,
		    r->domain[0] != '\0' ? r->domain : "-", r->err);
	return r->outcome == SIGNER_FAILED_REQUIRED ? -1 : 0;
}

/* Journal octets the events of this message can take, at most: the
 * received event, then one delivery event per recipient and attempt
 * (reply text included); later attempts draw on the journal's floor. */
static size_t
data_journal_need(const struct smtp_session *s, const char *msgid)
{
	size_t i, need = 512 + strlen(msgid) + strlen(s->from.addr) +
	                 strlen(s->client) + (s->authed ? strlen(s->user) : 0);

	for (i = 0; i < s->nrcpts; i++)
		need += 2 * strlen(s->rcpts[i]) + 1024;
	return need;
}

static void dkim_note(const struct smtp_session *, char *, size_t);

/* The message's received event, made durable by the spool together with
 * the message itself (spool_msg_commit_note): an acknowledged message
 * always has it, a message whose record could not be written never.
 * NULL without a journal (or memory: the message goes on without it,
 * logged). */
static struct spool_note *
received_note(struct smtp_session *s, const char *qid, const char *msgid)
{
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char q[SPOOL_QID_MAX], m[512], kind[] = "received", dkim[600];
	struct node *n = node_of(s);
	struct spool_note *note;

	if (n->journal == NULL)
		return NULL;
	snprintf(q, sizeof(q), "%s", qid);
	snprintf(m, sizeof(m), "%s", msgid);
	ev.kind = kind;
	ev.queue_id = q;
	ev.message_id = m;
	ev.client = s->client;
	if (s->authed)
		ev.auth_user = s->user;
	ev.sender = s->from.addr;
	ev.recipients = s->rcpts;
	ev.n_recipients = s->nrcpts;
	ev.size = s->data.size;
	ev.tls = s->tls;
	dkim_note(s, dkim, sizeof(dkim));
	ev.dkim = dkim + (dkim[0] != '\0' ? 6 : 0); /* past " dkim=" */
	if ((note = journal_note_new(n->journal, &ev)) == NULL)
		log_warnx("%s smtp: no memory for the received event", qid);
	return note;
}

/* The client sent CRLF.CRLF: answer or hand to the spool. */
static void
data_end(struct smtp_session *s)
{
	struct spool_envelope env;
	struct spool_msg *msg;
	char msgid[512] = "";
	const char *reason = NULL;
	int code = 554;
	const char *enh = "5.6.0";

	s->state = SS_CMD;
	s->dot_us = mono_us();
	if (s->rw_pending)
		data_rewrite_flush(s); /* a message that is all header */
	if (s->overflow) {
		code = 552;
		enh = "5.3.4";
		reason = "Message size exceeds fixed limit";
	} else if (s->data.bare) {
		/* RFC 5321 2.3.8; the 2023 SMTP smuggling advisories */
		reason = "Message refused: bare CR or LF not allowed";
	} else if (s->data.nul) {
		reason = "Message refused: NUL character not allowed";
	} else if (s->data.toolong) {
		reason = "Message refused: line longer than 1000 octets "
		         "(RFC 5321 4.5.3.1.6)";
	} else if (s->data.nreceived >= s->max_hops) {
		/* RFC 5321 6.3; Postfix's hopcount_limit.  Ours would be one
		 * more: max_hops Received: fields already is a loop. */
		enh = "5.4.6";
		reason = "Message refused: too many Received: fields "
		         "(mail loop)";
	} else if (s->write_errno == ENOSPC) {
		code = 452;
		enh = "4.3.1";
		reason = "Insufficient system storage";
	} else if (s->write_errno != 0) {
		code = 451;
		enh = "4.3.0";
		reason = "Temporary queue failure";
	}
	if (reason != NULL) {
		refuse(
		    s, s->nrcpts > 0 ? s->rcpts[0] : NULL, code, enh, reason);
		txn_reset(s);
		return;
	}
	if (data_sign(s) == -1) {
		refuse(s, s->nrcpts > 0 ? s->rcpts[0] : NULL, 451, "4.7.0",
		    "Temporary failure: the message could not be DKIM-signed");
		txn_reset(s);
		return;
	}
	if (s->hdr != NULL)
		smtp_message_id(s->hdr, s->hdrlen, msgid, sizeof(msgid));
	/* What cannot be journaled is not accepted: the delivery record of
	 * an acknowledged message must never miss its events. */
	if (node_of(s)->journal != NULL &&
	    journal_room(node_of(s)->journal, data_journal_need(s, msgid)) ==
	        -1) {
		log_warnx("smtp refused client=%s from=<%s>: the event journal "
		          "has no room (disk full)",
		    s->client, s->from.addr);
		/* RFC 3463: 4.3.1 mail system full */
		refuse(s, s->nrcpts > 0 ? s->rcpts[0] : NULL, 452, "4.3.1",
		    "Insufficient system storage");
		txn_reset(s);
		return;
	}
	memset(&env, 0, sizeof(env));
	/* routes see the rewritten sender: the verified identity picks
	 * the provider account it is verified on (docs/delivery.md) */
	env.sender = s->rw_sender[0] != '\0' && s->from.addr[0] != '\0'
	                 ? s->rw_sender
	                 : s->from.addr;
	env.listener = s->lst->route_name;
	env.hold = s->hold;
	env.rcpts = (const char *const *)s->rcpts;
	env.nrcpts = s->nrcpts;
	env.client = s->client;
	env.helo = s->helo;
	env.auth_user = s->authed ? s->user : "";
	env.message_id = msgid;
	env.received_at = now_s();
	env.smtputf8 = s->mp.smtputf8;
	env.eightbit = s->mp.body == SMTP_BODY_8BITMIME;
	env.dkim = s->dkim_res.headers;
	env.dkim7 = s->signed7;
	env.body8bit = s->data.body8bit;
	env.hdr8bit = s->data.hdr8bit || s->rcv8bit;
	/* the spool owns msg from here and calls back by id; should it
	 * call back at once, smtp_session_on_commit sees `committing` and
	 * leaves the rest of the batch to the loop we are in */
	msg = s->msg;
	s->msg = NULL;
	s->state = SS_COMMIT;
	data_copy(s, msg, &env);
	/* Reading stays on: session_process() leaves input alone in
	 * SS_COMMIT and the read high-watermark bounds what can pile up,
	 * which saves two epoll_ctl calls per message. */
	s->committing = true;
	spool_msg_commit_note(msg, &env, smtp_session_on_commit, s->srv, s->id,
	    received_note(s, spool_msg_id(msg), msgid));
	s->committing = false;
}

/* Redundancy: the peer copy goes out now, beside our own commit, while
 * the data is still in memory (a spilled message is copied from the
 * spool after its commit instead). */
static void
data_copy(struct smtp_session *s, struct spool_msg *msg,
    const struct spool_envelope *env)
{
	const uint8_t *p;
	size_t len;

	s->copy = COPY_NONE;
	s->committed = false;
	if (!shadow_wanted(s->policy, (int)s->lst->role) ||
	    spool_msg_peek(msg, &p, &len) == -1)
		return;
	s->copy = shadow_copy_data(node_of(s)->shadow, spool_msg_id(msg), env,
	              p, len, (int)limit(s, LIMIT_REDUNDANCY_PEER_TIMEOUT_MS),
	              smtp_session_on_shadow, s->srv, s->id, s->copy_why,
	              sizeof(s->copy_why)) == 0
	              ? COPY_PENDING
	              : COPY_FAILED;
}

/* " dkim=d:s1,s2" (signed), " dkim=none" (a failure sent unsigned) or
 * "" (no key for the From: domain) for the accepted line. */
static void
dkim_note(const struct smtp_session *s, char *buf, size_t len)
{
	const struct signer_result *r = &s->dkim_res;

	if (r->outcome == SIGNER_SIGNED)
		snprintf(buf, len, " dkim=%s:%s", r->domain, r->selectors);
	else if (r->outcome == SIGNER_NONE)
		buf[0] = '\0';
	else
		snprintf(buf, len, " dkim=none");
}

enum commit_outcome {
	COMMIT_OK,      /* 250 */
	COMMIT_FAILED,  /* the spool failed: 452 or 451 */
	COMMIT_NO_PEER, /* redundancy: no peer copy, no_peer = defer */
};

/* The transaction's outcome to the client, then the commands pipelined
 * behind the dot. */
static void
commit_answer(struct smtp_session *s, const char *qid, enum commit_outcome o)
{
	struct node *n = node_of(s);
	char key[RATELIMIT_KEY_MAX], msgid[512] = "", dkim[600];

	s->state = SS_CMD;
	if (o == COMMIT_OK) {
		reply(s, "250 2.0.0 Ok: queued as %s", qid);
		atomic_fetch_add(&n->stats.accepted, 1);
		node_accept_observe(&n->stats, mono_us() - s->dot_us);
		if (s->quota_msgs != 0 || s->quota_rcpts != 0)
			quota_commit(n->quota, s->user, s->quota_msgs,
			    s->quota_rcpts, now_s());
		s->quota_msgs = s->quota_rcpts = 0;
		snprintf(key, sizeof(key), "msg-ip:%s", s->ip);
		ratelimit_msg_count(s->srv->rl, key, now_s());
		if (s->authed) {
			snprintf(key, sizeof(key), "msg-user:%s", s->user);
			ratelimit_msg_count(s->srv->rl, key, now_s());
		}
		if (s->hdr != NULL)
			smtp_message_id(
			    s->hdr, s->hdrlen, msgid, sizeof(msgid));
		dkim_note(s, dkim, sizeof(dkim));
		log_info("%s smtp accepted client=%s%s%s from=<%s> nrcpt=%zu "
		         "size=%" PRIu64 " msgid=%s tls=%s%s%s%s%s%s%s%s%s",
		    qid, s->client, s->authed ? " user=" : "",
		    s->authed ? s->user : "", s->from.addr, s->nrcpts,
		    s->data.size, msgid[0] != '\0' ? msgid : "-",
		    s->tls ? "yes" : "no", dkim,
		    s->rw_sender[0] != '\0' ? " sender_rewritten=<" : "",
		    s->rw_sender, s->rw_sender[0] != '\0' ? ">" : "",
		    s->rw_from[0] != '\0' ? " from_rewritten=<" : "",
		    s->rw_from, s->rw_from[0] != '\0' ? ">" : "",
		    s->hold ? " held=user" : "");
	} else if (o == COMMIT_NO_PEER)
		/* RFC 3463 4.3.0: a temporary condition of this mail
		 * system; the client sends again later */
		refuse(s, s->nrcpts > 0 ? s->rcpts[0] : NULL, 451, "4.3.0",
		    "Temporary failure: no redundant copy possible, try "
		    "again later");
	else if (spool_last_errno(n->spool) == ENOSPC)
		/* RFC 3463: 4.3.1 mail system full */
		refuse(s, s->nrcpts > 0 ? s->rcpts[0] : NULL, 452, "4.3.1",
		    "Insufficient system storage");
	else
		refuse(s, s->nrcpts > 0 ? s->rcpts[0] : NULL, 451, "4.3.0",
		    "Temporary queue failure");
	txn_reset(s);
	if (s->committing)
		return;     /* called from data_end(): its loop goes on */
	session_process(s); /* commands pipelined behind the dot */
	session_settle(s);
}

/* No peer copy (docs/redundancy.md, "Degraded modes"): accept without
 * one (counted, the controller alerts), or withdraw the queued message
 * and answer 451. */
static enum commit_outcome
commit_no_peer(struct smtp_session *s, const char *qid, const char *why)
{
	struct node *n = node_of(s);

	if (limit(s, LIMIT_REDUNDANCY_NO_PEER) == LIMIT_NO_PEER_ACCEPT) {
		log_warnx(
		    "%s smtp accepted without a shadow copy: %s", qid, why);
		shadow_note_unprotected(n->shadow, why);
		return COMMIT_OK;
	}
	(void)spool_remove(n->spool, qid, NULL, 0);
	if (n->journal != NULL) {
		/* its received event is journaled already: say it ended */
		Sluice__Event ev = SLUICE__EVENT__INIT;
		char q[SPOOL_QID_MAX], kind[] = "withdrawn", r[320];

		snprintf(q, sizeof(q), "%s", qid);
		snprintf(r, sizeof(r), "451 4.3.0 no redundant copy: %s", why);
		ev.kind = kind;
		ev.queue_id = q;
		ev.sender = s->from.addr;
		ev.client = s->client;
		ev.code = 451;
		ev.reply = r;
		(void)journal_append(n->journal, &ev);
	}
	log_warnx("%s smtp refused client=%s from=<%s>: no shadow copy (%s); "
	          "withdrawn from the queue",
	    qid, s->client, s->from.addr, why);
	shadow_note_refused(n->shadow, why);
	return COMMIT_NO_PEER;
}

static void
smtp_session_on_shadow(
    void *arg, uint64_t cookie, const char *qid, bool ok, const char *why)
{
	struct smtp_session *s = session_lookup(arg, cookie);

	/* the client left meanwhile: it saw no 250 and sends again; the
	 * queued message is delivered anyway */
	if (s == NULL || s->state != SS_COMMIT)
		return;
	if (!s->committed) {
		/* the copy was faster than our own commit */
		s->copy = ok ? COPY_OK : COPY_FAILED;
		if (!ok)
			snprintf(s->copy_why, sizeof(s->copy_why), "%s", why);
		return;
	}
	commit_answer(s, qid, ok ? COMMIT_OK : commit_no_peer(s, qid, why));
}

static void
smtp_session_on_commit(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	struct smtp_server *srv = arg;
	struct smtp_session *s = session_lookup(srv, cookie);
	char why[256];

	/* a copy sent beside a commit that failed is released */
	if (!ok)
		shadow_on_removed(srv->node->shadow, qid);
	if (s == NULL) {
		/* the client left before the flush: it never saw a 250 and
		 * will send again; the queued copy is delivered anyway */
		if (ok)
			log_info("%s smtp accepted-unacknowledged (client "
			         "gone)",
			    qid);
		return;
	}
	if (s->state != SS_COMMIT)
		return; /* timed out meanwhile; the 421 is on its way */
	s->committed = ok;
	if (ok && s->copy == COPY_PENDING)
		return; /* the 250 waits for the copy */
	if (ok && s->copy == COPY_OK) {
		commit_answer(s, qid, COMMIT_OK);
		return;
	}
	if (ok && s->copy == COPY_FAILED) {
		commit_answer(s, qid, commit_no_peer(s, qid, s->copy_why));
		return;
	}
	if (ok && shadow_wanted(s->policy, (int)s->lst->role)) {
		/* Redundancy: the 250 waits for the peer's durable copy
		 * too, at most the peer timeout (docs/redundancy.md). */
		if (shadow_copy(node_of(s)->shadow, qid,
		        (int)limit(s, LIMIT_REDUNDANCY_PEER_TIMEOUT_MS),
		        smtp_session_on_shadow, s->srv, s->id, why,
		        sizeof(why)) == 0)
			return;
		commit_answer(s, qid, commit_no_peer(s, qid, why));
		return;
	}
	commit_answer(s, qid, ok ? COMMIT_OK : COMMIT_FAILED);
}

/* ----------------------------------------------------------- reading */

/* Drops an over-long line through its LF; true once its end was seen. */
static bool
discard_line(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);

	if (p.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return false;
	}
	evbuffer_drain(in, (size_t)p.pos + 1);
	s->discard_line = false;
	return true;
}

static void
over_long(struct smtp_session *s)
{
	if (s->state == SS_SASL) {
		s->state = SS_CMD;
		s->sasl = SASL_NONE;
		reply(s, "500 5.5.6 Authentication exchange line is too "
		         "long");
		return;
	}
	bad_command(s, "500 5.5.2 Error: line too long");
}

/* One line from the input; false when more input is needed. */
static bool
read_line(struct smtp_session *s, struct evbuffer *in)
{
	char line[SMTP_SASL_MAX + 1];
	size_t len = evbuffer_get_length(in), max = SMTP_CMD_MAX, used, linelen,
	       n;
	const char *p;
	bool bad, ended;
	int rv;

	if (s->discard_line) {
		if (!discard_line(s, in))
			return false;
		over_long(s);
		return true;
	}
	if (len == 0)
		return false;
	/* RFC 4954 4: AUTH lines and SASL responses may reach 12288 */
	p = (const char *)evbuffer_pullup(in, len < 5 ? (ssize_t)len : 5);
	if (s->state == SS_SASL ||
	    (len >= 5 && strncasecmp(p, "AUTH ", 5) == 0))
		max = SMTP_SASL_MAX;
	n = len < max ? len : max;
	p = (const char *)evbuffer_pullup(in, (ssize_t)n);
	rv = smtp_cmd_line(p, n, max, &used, &linelen, &bad, &ended);
	if (rv == 0)
		return false;
	if (rv == -1) {
		evbuffer_drain(in, used);
		s->discard_line = true;
		return true;
	}
	memcpy(line, p, linelen);
	line[linelen] = '\0';
	evbuffer_drain(in, used);
	if (bad) {
		if (s->state == SS_SASL) {
			s->state = SS_CMD;
			s->sasl = SASL_NONE;
		}
		bad_command(
		    s, "500 5.5.2 Error: bare CR or LF or NUL in command");
		return true;
	}
	if (s->state == SS_SASL)
		sasl_line(s, line);
	else if (linelen == 0)
		bad_command(s, "500 5.5.2 Error: bad syntax");
	else
		command(s, line);
	explicit_bzero(line, linelen);
	return true;
}

static bool
read_data(struct smtp_session *s, struct evbuffer *in)
{
	char out[SMTP_DATA_CHUNK + 2];
	struct evbuffer_iovec v;
	size_t used, outlen, n;

	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return false;
	n = v.iov_len < SMTP_DATA_CHUNK ? v.iov_len : SMTP_DATA_CHUNK;
	used = smtp_data_feed(&s->data, v.iov_base, n, out, &outlen);
	data_write(s, out, outlen);
	evbuffer_drain(in, used);
	if (s->data.state == SMTP_DATA_DONE)
		data_end(s);
	return true;
}

static bool proxy_read(struct smtp_session *, struct evbuffer *);

/* Handles everything complete in the input, then sends the replies. */
static void
session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);

	for (;;) {
		if (evbuffer_get_length(out) + evbuffer_get_length(s->out) >
		    SMTP_OUT_HIGH) {
			/* the client does not read its replies: wait */
			s->paused = true;
			bufferevent_disable(s->bev, EV_READ);
			break;
		}
		if (s->state == SS_PROXY) {
			if (!proxy_read(s, in))
				break;
			in = bufferevent_get_input(s->bev);
			out = bufferevent_get_output(s->bev);
			continue;
		}
		if (s->state == SS_DATA) {
			if (!read_data(s, in))
				break;
		} else if (s->state == SS_CMD || s->state == SS_SASL) {
			if (!read_line(s, in))
				break;
		} else
			break; /* COMMIT, AUTH, CLOSING */
	}
	session_flush(s);
}

#define SESSION_LINGER_MS     10
#define SESSION_LINGER_ROUNDS 200 /* 2 s for the last bytes to leave */

static void session_settle(struct smtp_session *);

static void
session_on_linger(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_settle(arg);
}

/* Everything we wrote has left for the socket.  Under STARTTLS the session
 * talks to a TLS filter whose ciphertext waits in the socket bufferevent
 * below it: freeing before that drains would lose the last reply (the 221
 * to QUIT, a 421). */
static bool
session_drained(struct smtp_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);

	return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	       (under == NULL ||
	           evbuffer_get_length(bufferevent_get_output(under)) == 0);
}

/* Called last by every entry point: frees a finished session. */
static void
session_settle(struct smtp_session *s)
{
	struct timeval tv = {0, SESSION_LINGER_MS * 1000};

	if (s->state != SS_CLOSING ||
	    evbuffer_get_length(bufferevent_get_output(s->bev)) != 0)
		return;
	if (session_drained(s) || s->lingered >= SESSION_LINGER_ROUNDS) {
		session_free(s);
		return;
	}
	/* The socket bufferevent writes on its own; look again shortly. */
	if (s->ev_linger == NULL &&
	    (s->ev_linger = evtimer_new(
	         bufferevent_get_base(s->bev), session_on_linger, s)) == NULL) {
		session_free(s);
		return;
	}
	s->lingered++;
	evtimer_add(s->ev_linger, &tv);
}

static void
session_on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	session_process(s);
	session_settle(s);
}

static void
session_on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->state == SS_CLOSING) {
		session_settle(s);
		return;
	}
	if (s->paused) {
		s->paused = false;
		if (s->state == SS_CMD || s->state == SS_SASL ||
		    s->state == SS_DATA)
			bufferevent_enable(s->bev, EV_READ);
		session_process(s);
		session_settle(s);
	}
}

static void
session_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	char buf[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		/* implicit TLS (smtps) handshake done */
		tls_server_describe(s->bev, buf, sizeof(buf));
		log_info("smtp tls client=%s %s", s->client, buf);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == SS_PROXY) {
			log_info("smtp proxy client=%s: no header, dropped",
			    s->client);
			session_free(s);
			return;
		}
		if (s->state != SS_CLOSING) {
			reply(s, "421 4.4.2 %s Error: timeout exceeded",
			    node_of(s)->hostname);
			log_info(
			    "smtp disconnect client=%s reason=idle-timeout",
			    s->client);
			session_close(s);
			session_flush(s);
			/* the write timeout still bounds a client that
			 * does not read */
			bufferevent_enable(s->bev, EV_WRITE);
			session_settle(s);
			return;
		}
		session_free(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		if (s->tls || s->lst->role == SMTP_ROLE_SMTPS) {
			tls_server_error(s->bev, buf, sizeof(buf));
			log_info("smtp disconnect client=%s reason=error "
			         "tls=\"%s\"",
			    s->client, buf);
			tls_server_flush_alert(s->bev);
		} else
			log_info("smtp disconnect client=%s reason=error",
			    s->client);
	} else
		log_debug("smtp disconnect client=%s reason=eof", s->client);
	session_free(s);
}

static void
session_on_total(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->state == SS_CLOSING || s->state == SS_PROXY) {
		session_free(s);
		return;
	}
	reply(s, "421 4.4.2 %s Error: session timeout exceeded",
	    node_of(s)->hostname);
	log_info("smtp disconnect client=%s reason=session-timeout", s->client);
	session_close(s);
	session_flush(s);
	session_settle(s);
}

static void
session_timeouts(struct smtp_session *s)
{
	struct timeval idle = {0, 0};

	idle.tv_sec = s->state == SS_PROXY
	                  ? SMTP_PROXY_TIMEOUT_S
	                  : (time_t)limit(s, LIMIT_IDLE_TIMEOUT_SECONDS);
	bufferevent_set_timeouts(s->bev, &idle, &idle);
}

static void
session_setup_bev(struct smtp_session *s)
{
	bufferevent_setcb(
	    s->bev, session_on_read, session_on_write, session_on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_IN_HIGH);
	session_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* RFC 3207 4.2 and CVE-2011-0411: whatever the client pipelined behind
 * STARTTLS is thrown away, and the session forgets everything it was
 * told in clear text. */
static void
session_start_tls(struct smtp_session *s)
{
	struct event_base *base = node_of(s)->base;
	struct bufferevent *tls;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);

	if (junk > 0) {
		log_info("smtp starttls client=%s discarded=%zu octets "
		         "pipelined after STARTTLS",
		    s->client, junk);
		evbuffer_drain(in, junk);
	}
	session_flush(s); /* the 220 goes out in clear text */
	if ((tls = tls_server_filter(s->srv->tls, base, s->bev)) == NULL) {
		log_warnx(
		    "smtp starttls client=%s: cannot set up TLS", s->client);
		session_close(s);
		return;
	}
	s->bev = tls;
	s->tls = true;
	txn_reset(s);
	s->has_helo = s->esmtp = false;
	s->helo[0] = '\0';
	s->sasl = SASL_NONE;
	s->state = SS_CMD;
	session_setup_bev(s);
	/* the filter bufferevent reports BEV_EVENT_CONNECTED when the
	 * handshake is done; session_on_event logs the version then */
}

/* --------------------------------------------------------- admission */

static void
set_client(struct smtp_session *s, int family, const void *addr, uint16_t port)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
		family = AF_INET;
		addr = (const uint8_t *)addr + 12;
	}
	s->family = family;
	memset(s->addr, 0, sizeof(s->addr));
	memcpy(s->addr, addr, family == AF_INET ? 4 : 16);
	inet_ntop(family, s->addr, s->ip, sizeof(s->ip));
	snprintf(
	    s->client, sizeof(s->client), "[%s]:%u", s->ip, (unsigned)port);
}

/* The client's address is known: limits, then the greeting. */
static void
session_admit(struct smtp_session *s)
{
	struct node *n = node_of(s);
	struct smtp_check_client c;
	struct smtp_verdict vbuf;
	const struct smtp_verdict *v;

	atomic_fetch_add(&n->stats.connections, 1);
	s->trusted = policy_client_trusted(s->policy, s->family, s->addr);
	s->state = SS_CMD;
	session_timeouts(s);
	log_debug("smtp connect client=%s listener=%s role=%s trusted=%s",
	    s->client, s->lst->name, smtp_role_name(s->lst->role),
	    s->trusted ? "yes" : "no");
	v = smtp_check_connect(&vbuf, s->policy, s->srv->rl,
	    check_client(s, &c), n->hostname, s->srv->nsessions, now_s());
	if (v != NULL) {
		reply(s, "%s", v->reply);
		if (strcmp(v->reason, "auth_block") == 0)
			log_info("auth-block client=%s refused=connect "
			         "until=%" PRId64,
			    s->ip, v->until);
		else
			log_info("smtp refused client=%s reason=%s", s->client,
			    v->reason);
		session_close(s);
		return;
	}
	s->counted = true;
	reply(s, "220 %s ESMTP sluice", n->hostname);
}

/* The PROXY header, before anything else; true once it is handled. */
static bool
proxy_read(struct smtp_session *s, struct evbuffer *in)
{
	struct bufferevent *tls;
	struct proxy_info pi;
	size_t len = evbuffer_get_length(in);
	const uint8_t *p;
	int rv;

	if (len > PROXY_V2_MAX)
		len = PROXY_V2_MAX;
	p = evbuffer_pullup(in, (ssize_t)len);
	if ((rv = proxy_parse(p, len, &pi)) == 0 && len < PROXY_V2_MAX)
		return false;
	if (rv <= 0) {
		/* no reply: whoever this is, it is not our balancer */
		log_info("smtp proxy client=%s: invalid PROXY header, dropped",
		    s->client);
		session_close(s);
		return false;
	}
	evbuffer_drain(in, (size_t)rv);
	if (!pi.local)
		set_client(s, pi.family, pi.src, pi.src_port);
	if (s->lst->role == SMTP_ROLE_SMTPS) {
		/* the TLS handshake follows the header; the filter reads
		 * what is already buffered */
		tls = tls_server_filter(s->srv->tls, node_of(s)->base, s->bev);
		if (tls == NULL) {
			session_close(s);
			return false;
		}
		s->bev = tls;
		s->tls = true;
		session_setup_bev(s);
	}
	session_admit(s);
	return true;
}

/* ------------------------------------------------------------ public */

void
smtp_session_start(struct smtp_listener *l, evutil_socket_t fd,
    const struct sockaddr *sa, int socklen)
{
	struct smtp_server *srv = l->srv;
	struct node *n = srv->node;
	struct smtp_session *s;
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->out = evbuffer_new()) == NULL) {
		free(s);
		evutil_closesocket(fd);
		return;
	}
	s->id = ++srv->next_id;
	s->srv = srv;
	s->lst = l;
	s->policy = policy_ref(n->policy);
	s->started_at = now_s();
	if (sa->sa_family == AF_INET6 &&
	    (size_t)socklen >= sizeof(struct sockaddr_in6)) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		set_client(
		    s, AF_INET6, &sin6->sin6_addr, ntohs(sin6->sin6_port));
	} else {
		sin = (const struct sockaddr_in *)(const void *)sa;
		set_client(s, AF_INET, &sin->sin_addr, ntohs(sin->sin_port));
	}
	if (l->role == SMTP_ROLE_SMTPS && !l->proxy) {
		s->bev = tls_server_socket(srv->tls, n->base, fd);
		s->tls = true;
	} else
		s->bev =
		    bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		evutil_closesocket(fd);
		evbuffer_free(s->out);
		policy_unref(s->policy);
		free(s);
		return;
	}
	session_link(s);
	s->ev_total = evtimer_new(n->base, session_on_total, s);
	if (s->ev_total != NULL) {
		struct timeval tv = {0, 0};

		tv.tv_sec = (time_t)limit(s, LIMIT_SESSION_TIMEOUT_SECONDS);
		evtimer_add(s->ev_total, &tv);
	}
	s->state = l->proxy ? SS_PROXY : SS_CMD;
	session_setup_bev(s);
	if (!l->proxy)
		session_admit(s);
	session_flush(s);
	session_settle(s);
}

static void
session_free(struct smtp_session *s)
{
	txn_reset(s);
	if (s->counted)
		ratelimit_conn_close(s->srv->rl, s->ip);
	session_unlink(s);
	if (s->ev_total != NULL)
		event_free(s->ev_total);
	if (s->ev_linger != NULL)
		event_free(s->ev_linger);
	bufferevent_free(s->bev);
	evbuffer_free(s->out);
	policy_unref(s->policy);
	explicit_bzero(s->sasl_user, sizeof(s->sasl_user));
	free(s);
}

void
smtp_session_close_all(struct smtp_server *srv)
{
	struct smtp_session *s;
	size_t i;

	for (i = 0; i < SMTP_SESSION_BUCKETS; i++)
		while ((s = srv->sessions[i]) != NULL)
			session_free(s);
}
