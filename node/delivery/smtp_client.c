/* smtp_client.c - the outbound SMTP state machine.  One struct per
 * connection; replies are parsed line by line as they arrive and drive a
 * table of states.  Every command group is written with one evbuffer add
 * and TCP_NODELAY is set, so pipelined MAIL/RCPT/DATA leave in one
 * segment.  Error policy: the world fails politely - every failure is a
 * struct smtp_reply handed to the owner, classified once here. */
#include "smtp_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mime8.h"
#include "oauth.h"
#include "oauth_jwt.h"
#include "tls_client.h"

#define SMTP_CLIENT_LINE_MAX 2048  /* RFC 5321 4.5.3.1.5 says 512 */
#define SMTP_CLIENT_CHUNK    65536 /* body read size */

enum sc_state {
	SC_CONNECTING,
	SC_GREETING,
	SC_EHLO,
	SC_HELO,
	SC_STARTTLS,
	SC_HANDSHAKE,
	SC_AUTH_PLAIN,
	SC_AUTH_LOGIN_USER,
	SC_AUTH_LOGIN_PASS,
	SC_AUTH_LOGIN_DONE,
	SC_AUTH_TOKEN,       /* waiting for an XOAUTH2 token (oauth.h) */
	SC_AUTH_XOAUTH2,     /* AUTH XOAUTH2 sent */
	SC_AUTH_XOAUTH2_ERR, /* 334 error challenge answered */
	SC_IDLE,
	SC_TXN,  /* waiting for MAIL/RCPT/DATA replies */
	SC_BODY, /* streaming data */
	SC_DOT,  /* waiting for the final reply */
	SC_RSET,
	SC_QUIT,
	SC_DEAD,
};

struct smtp_client {
	struct event_base *base;
	struct bufferevent *bev;
	struct smtp_client_params p;
	struct smtp_client_cb cb;
	void *arg;
	char *helo, *host, *user, *secret;
	char peer[64];
	enum sc_state state;
	struct smtp_reply_parser rp;
	/* ESMTP capabilities of the current EHLO. */
	bool esmtp, pipelining, starttls;
	bool auth_plain, auth_login, eightbitmime;
	bool auth_xoauth2;
	/* XOAUTH2: the token waited for, the token sent (to discard it when
	 * refused), and whether a refused one was retried already. */
	struct oauth_wait *wait;
	char *token;
	bool token_retried;
	bool smtputf8;
	uint64_t size_max;
	bool tls_on;
	bool quitting;
	/* Callbacks may free the session: the free waits until the
	 * outermost libevent callback unwinds. */
	int depth;
	bool free_pending;
	/* The transaction in flight. */
	struct smtp_txn *txn;
	size_t step;     /* next reply: 0 MAIL,
	                  * 1..n RCPT, n+1 DATA */
	size_t sent;     /* commands sent */
	size_t accepted; /* RCPTs with 2xx */
	uint64_t body_off;
	bool bol;           /* at line start */
	char last2[2];      /* last octets sent */
	bool downgrade;     /* this transaction goes out as 7 bit */
	struct mime8 *down; /* its converter (kept for the next one) */
};

static void smtp_client_on_read(struct bufferevent *, void *);
static void smtp_client_on_write(struct bufferevent *, void *);
static void smtp_client_on_event(struct bufferevent *, short, void *);

const char *
smtp_client_failure_name(enum smtp_client_failure f)
{
	switch (f) {
	case SMTP_CLIENT_OK:
		return "ok";
	case SMTP_CLIENT_CONNECT:
		return "connect";
	case SMTP_CLIENT_TIMEOUT:
		return "timeout";
	case SMTP_CLIENT_TLS:
		return "tls";
	case SMTP_CLIENT_AUTH:
		return "auth";
	case SMTP_CLIENT_REJECTED:
		return "rejected";
	case SMTP_CLIENT_DROPPED:
		return "dropped";
	}
	return "?";
}

/* ------------------------------------------------------------ session */

static void
smtp_client_fail(struct smtp_client *c, enum smtp_client_failure f,
    const struct smtp_reply *why)
{
	struct smtp_txn *txn = c->txn;

	if (c->state == SC_DEAD)
		return;
	c->state = SC_DEAD;
	c->txn = NULL;
	oauth_cancel(c->wait);
	c->wait = NULL;
	if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->quitting) {
		smtp_client_free(c);
		return;
	}
	c->cb.failed(c, f, why, txn, c->arg);
}

static void smtp_client_failf(struct smtp_client *c, enum smtp_client_failure f,
    int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
smtp_client_failf(struct smtp_client *c, enum smtp_client_failure f, int code,
    const char *enh, const char *fmt, ...)
{
	struct smtp_reply r;
	char text[SMTP_REPLY_TEXT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	smtp_reply_set(&r, code, enh, "%s", text);
	smtp_client_fail(c, f, &r);
}

static void
smtp_client_write(struct smtp_client *c, const char *s, size_t len)
{
	bufferevent_write(c->bev, s, len);
}

static void smtp_client_printf(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
smtp_client_printf(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

static void
smtp_client_timeouts(struct smtp_client *c, bool waiting)
{
	struct timeval tv = {
	    c->p.timeout_ms / 1000, (c->p.timeout_ms % 1000) * 1000};

	/* Idle sessions wait without a deadline; the cache closes them. */
	bufferevent_set_timeouts(c->bev, waiting ? &tv : NULL, &tv);
}

static void
smtp_client_nodelay(struct smtp_client *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	int one = 1;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

struct smtp_client *
smtp_client_new(struct event_base *base, const struct smtp_client_params *p,
    const struct smtp_client_cb *cb, void *arg)
{
	struct smtp_client *c;
	struct timeval tv;
	char addr[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	c->p = *p;
	c->cb = *cb;
	c->arg = arg;
	c->helo = strdup(p->helo ? p->helo : "localhost");
	c->host = strdup(p->host ? p->host : "");
	c->user = strdup(p->auth_user ? p->auth_user : "");
	c->secret = strdup(p->secret ? p->secret : "");
	if (c->helo == NULL || c->host == NULL || c->user == NULL ||
	    c->secret == NULL)
		goto fail;
	if (c->p.timeout_ms <= 0)
		c->p.timeout_ms = 300000;
	if (c->p.connect_timeout_ms <= 0)
		c->p.connect_timeout_ms = 30000;
	if (p->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&p->addr;

		inet_ntop(AF_INET, &s->sin_addr, addr, sizeof(addr));
		port = ntohs(s->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%d", addr, port);
	} else if (p->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)&p->addr;

		inet_ntop(AF_INET6, &s->sin6_addr, addr, sizeof(addr));
		port = ntohs(s->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%d", addr, port);
	}
	if (p->tls == SMTP_TLS_SMTPS) {
		struct ssl_st *ssl =
		    tls_client_ssl_new(p->ssl_ctx, c->host, p->verify);

		if (ssl == NULL)
			goto fail;
		c->bev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		c->tls_on = true;
	} else
		c->bev = bufferevent_socket_new(
		    base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL)
		goto fail;
	bufferevent_setcb(c->bev, smtp_client_on_read, smtp_client_on_write,
	    smtp_client_on_event, c);
	tv.tv_sec = c->p.connect_timeout_ms / 1000;
	tv.tv_usec = (c->p.connect_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = SC_CONNECTING;
	c->bol = true;
	if (p->oauth != NULL)
		oauth_prefetch(p->oauth);
	if (bufferevent_socket_connect(
	        c->bev, (const void *)&p->addr, (int)p->addrlen) == -1) {
		/* Reported from the loop, never re-entrantly from here. */
		bufferevent_free(c->bev);
		c->bev = NULL;
		goto fail;
	}
	return c;
fail:
	smtp_client_free(c);
	return NULL;
}

static void
smtp_client_release(struct smtp_client *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->secret != NULL)
		explicit_bzero(c->secret, strlen(c->secret));
	if (c->token != NULL)
		explicit_bzero(c->token, strlen(c->token));
	oauth_cancel(c->wait);
	free(c->token);
	free(c->helo);
	free(c->host);
	free(c->user);
	free(c->secret);
	free(c->down);
	free(c);
}

void
smtp_client_free(struct smtp_client *c)
{
	if (c == NULL)
		return;
	if (c->depth > 0) {
		c->free_pending = true;
		c->state = SC_DEAD;
		oauth_cancel(c->wait);
		c->wait = NULL;
		if (c->bev != NULL)
			bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	smtp_client_release(c);
}

static void
smtp_client_enter(struct smtp_client *c)
{
	c->depth++;
}

/* True when the session is gone and the caller must not touch it. */
static bool
smtp_client_leave(struct smtp_client *c)
{
	if (--c->depth == 0 && c->free_pending) {
		smtp_client_release(c);
		return true;
	}
	return false;
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c == NULL)
		return;
	if (c->state != SC_IDLE) {
		smtp_client_free(c);
		return;
	}
	c->quitting = true;
	c->state = SC_QUIT;
	smtp_client_write(c, "QUIT\r\n", 6);
	smtp_client_timeouts(c, true);
}

bool
smtp_client_is_idle(const struct smtp_client *c)
{
	return c->state == SC_IDLE;
}

bool
smtp_client_has_tls(const struct smtp_client *c)
{
	return c->tls_on;
}

const char *
smtp_client_host(const struct smtp_client *c)
{
	return c->host;
}

const char *
smtp_client_peer(const struct smtp_client *c)
{
	return c->peer;
}

static void
smtp_client_ehlo(struct smtp_client *c)
{
	c->esmtp = c->pipelining = c->starttls = false;
	c->auth_plain = c->auth_login = c->eightbitmime = c->smtputf8 = false;
	c->auth_xoauth2 = false;
	c->size_max = 0;
	c->state = SC_EHLO;
	smtp_client_printf(c, "EHLO %s\r\n", c->helo);
}

static void
smtp_client_ehlo_line(struct smtp_client *c, const char *s, size_t len)
{
	char kw[64];
	size_t i;

	for (i = 0; i < len && i < sizeof(kw) - 1 && s[i] != ' ' && s[i] != '=';
	     i++)
		kw[i] = (char)toupper((unsigned char)s[i]);
	kw[i] = '\0';
	if (strcmp(kw, "PIPELINING") == 0)
		c->pipelining = true;
	else if (strcmp(kw, "STARTTLS") == 0)
		c->starttls = true;
	else if (strcmp(kw, "8BITMIME") == 0)
		c->eightbitmime = true;
	else if (strcmp(kw, "SMTPUTF8") == 0)
		c->smtputf8 = true;
	else if (strcmp(kw, "SIZE") == 0 && i < len)
		c->size_max = strtoull(s + i + 1, NULL, 10);
	else if (strcmp(kw, "AUTH") == 0) {
		/* "AUTH PLAIN LOGIN" or the old "AUTH=LOGIN". */
		for (; i < len; i++) {
			if (len - i > 5 &&
			    strncasecmp(s + i + 1, "PLAIN", 5) == 0)
				c->auth_plain = true;
			if (len - i > 5 &&
			    strncasecmp(s + i + 1, "LOGIN", 5) == 0)
				c->auth_login = true;
			if (len - i > 7 &&
			    strncasecmp(s + i + 1, "XOAUTH2", 7) == 0 &&
			    (len - i == 8 || s[i + 8] == ' '))
				c->auth_xoauth2 = true;
		}
	}
}

static void
smtp_client_b64(struct evbuffer *out, const unsigned char *in, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
	                          "opqrstuvwxyz0123456789+/";
	char q[4];
	size_t i;

	for (i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? tab[v & 63] : '=';
		evbuffer_add(out, q, 4);
	}
}

static void smtp_client_xoauth2(struct smtp_client *);

/* After EHLO (and TLS): AUTH if configured, else idle. */
static void
smtp_client_after_ehlo(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (!c->tls_on && c->p.tls == SMTP_TLS_REQUIRE && !c->starttls) {
		smtp_client_failf(c, SMTP_CLIENT_TLS, 0, "4.7.5",
		    "TLS required but STARTTLS not offered by %s", c->host);
		return;
	}
	if (!c->tls_on && c->starttls && c->p.tls != SMTP_TLS_NONE &&
	    c->state != SC_HELO) {
		c->state = SC_STARTTLS;
		smtp_client_write(c, "STARTTLS\r\n", 10);
		return;
	}
	/* A hop secret never goes out in clear: credentials require TLS
	 * whatever the hop's tls mode, so a man in the middle that strips
	 * STARTTLS from the EHLO reply gets no AUTH (as Postfix's default
	 * smtp_sasl_security_options = noplaintext).  RFC 5248: X.7.10
	 * "Encryption Needed".  A deferral: the next hop is tried. */
	if (c->user[0] != '\0' && !c->tls_on) {
		if (c->starttls)
			smtp_client_failf(c, SMTP_CLIENT_AUTH, 0, "4.7.10",
			    "TLS required for AUTH: not sending credentials "
			    "to %s without TLS",
			    c->host);
		else
			smtp_client_failf(c, SMTP_CLIENT_AUTH, 0, "4.7.10",
			    "TLS required for AUTH but STARTTLS not offered "
			    "by %s",
			    c->host);
		return;
	}
	if (c->user[0] != '\0' && c->p.oauth != NULL) {
		if (!c->auth_xoauth2) {
			smtp_client_failf(c, SMTP_CLIENT_AUTH, 0, "4.7.0",
			    "%s offers no AUTH XOAUTH2", c->host);
			return;
		}
		smtp_client_xoauth2(c);
		return;
	}
	if (c->user[0] != '\0') {
		if (c->auth_plain) {
			size_t ul = strlen(c->user), sl = strlen(c->secret);
			unsigned char *b = malloc(ul + sl + 2);

			if (b == NULL) {
				smtp_client_failf(c, SMTP_CLIENT_AUTH, 0,
				    "4.3.0", "out of memory");
				return;
			}
			/* RFC 4616: authzid NUL authcid NUL passwd. */
			b[0] = '\0';
			memcpy(b + 1, c->user, ul);
			b[ul + 1] = '\0';
			memcpy(b + ul + 2, c->secret, sl);
			evbuffer_add(out, "AUTH PLAIN ", 11);
			smtp_client_b64(out, b, ul + sl + 2);
			evbuffer_add(out, "\r\n", 2);
			explicit_bzero(b, ul + sl + 2);
			free(b);
			c->state = SC_AUTH_PLAIN;
			return;
		}
		if (c->auth_login) {
			smtp_client_write(c, "AUTH LOGIN\r\n", 12);
			c->state = SC_AUTH_LOGIN_USER;
			return;
		}
		smtp_client_failf(c, SMTP_CLIENT_AUTH, 0, "4.7.0",
		    "%s offers no AUTH PLAIN or LOGIN", c->host);
		return;
	}
	c->state = SC_IDLE;
	smtp_client_timeouts(c, false);
	c->cb.ready(c, c->arg);
}

/* ------------------------------------------------------------ XOAUTH2 */

static void
smtp_client_xoauth2_send(struct smtp_client *c, const char *token)
{
	char *ir;

	if (c->token != NULL)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	if ((c->token = strdup(token)) == NULL ||
	    (ir = oauth_xoauth2(c->user, token)) == NULL) {
		smtp_client_failf(
		    c, SMTP_CLIENT_AUTH, 0, "4.3.0", "out of memory");
		return;
	}
	smtp_client_printf(c, "AUTH XOAUTH2 %s\r\n", ir);
	explicit_bzero(ir, strlen(ir));
	free(ir);
	c->state = SC_AUTH_XOAUTH2;
}

static void
smtp_client_on_token(void *arg, const char *token, const char *err)
{
	struct smtp_client *c = arg;

	c->wait = NULL;
	smtp_client_enter(c);
	if (c->state == SC_AUTH_TOKEN && !c->free_pending) {
		if (token != NULL)
			smtp_client_xoauth2_send(c, token);
		else
			/* The hop fails over like one refusing AUTH. */
			smtp_client_failf(
			    c, SMTP_CLIENT_AUTH, 0, "4.7.0", "%s", err);
	}
	smtp_client_leave(c);
}

/* AUTH XOAUTH2 (Google's and Microsoft's SASL mechanism) with the hop's
 * cached token, or once the token endpoint has answered. */
static void
smtp_client_xoauth2(struct smtp_client *c)
{
	const char *token;

	token = oauth_token(c->p.oauth, smtp_client_on_token, c, &c->wait);
	if (token != NULL)
		smtp_client_xoauth2_send(c, token);
	else if (c->wait != NULL)
		c->state = SC_AUTH_TOKEN;
	else
		smtp_client_failf(
		    c, SMTP_CLIENT_AUTH, 0, "4.3.0", "out of memory");
}

/* A refused token (535 5.7.3 from Microsoft, 535 5.7.8 after Google's
 * 334 challenge) may have been revoked or expired early: it is dropped
 * and a new one tried, once per session. */
static void
smtp_client_xoauth2_refused(struct smtp_client *c, const struct smtp_reply *r)
{
	char text[SMTP_REPLY_TEXT + 32];

	if (smtp_reply_class(r) != 5 || c->token_retried) {
		smtp_client_fail(c, SMTP_CLIENT_AUTH, r);
		return;
	}
	c->token_retried = true;
	smtp_reply_format(r, text, sizeof(text));
	log_info("smtp_client: %s[%s] refused the XOAUTH2 token (%s), "
	         "retrying with a new one",
	    c->host, c->peer, text);
	oauth_discard(c->p.oauth, c->token);
	smtp_client_xoauth2(c);
}

static void
smtp_client_starttls(struct smtp_client *c)
{
	struct ssl_st *ssl;
	struct bufferevent *tb;

	if ((ssl = tls_client_ssl_new(c->p.ssl_ctx, c->host, c->p.verify)) ==
	    NULL) {
		smtp_client_failf(
		    c, SMTP_CLIENT_TLS, 0, "4.7.5", "cannot set up TLS");
		return;
	}
	/* The TCP layer's deadlines are the TLS layer's business now. */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tb == NULL) {
		smtp_client_failf(
		    c, SMTP_CLIENT_TLS, 0, "4.7.5", "cannot set up TLS");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	c->bev = tb;
	c->tls_on = true;
	c->state = SC_HANDSHAKE;
	bufferevent_setcb(tb, smtp_client_on_read, smtp_client_on_write,
	    smtp_client_on_event, c);
	smtp_client_timeouts(c, true);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

/* ------------------------------------------------ 8BITMIME downgrade */

static void
smtp_client_count_cb(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
}

/* RFC 6152 3: never 8-bit data to a server that did not offer 8BITMIME.
 * A dry pass over the data says whether it converts (mime8.h) and how
 * big it then is (the SIZE= we declare); the real pass runs while the
 * body streams.  0, or -1 with t->mail set. */
static int
smtp_client_downgrade_plan(
    struct smtp_client *c, struct smtp_txn *t, uint64_t *size)
{
	static char buf[SMTP_CLIENT_CHUNK]; /* loop thread only */
	struct mime8 m;
	uint64_t off = 0;
	ssize_t n;

	mime8_init(&m);
	while ((n = t->read(t->read_arg, off, buf, sizeof(buf))) > 0) {
		off += (uint64_t)n;
		if (mime8_feed(
		        &m, buf, (size_t)n, smtp_client_count_cb, NULL) == -1)
			break;
	}
	if (n < 0) {
		smtp_reply_set(
		    &t->mail, 451, "4.3.0", "cannot read queued message data");
		return -1;
	}
	if (m.err == MIME8_OK)
		mime8_finish(&m, smtp_client_count_cb, NULL);
	if (m.err != MIME8_OK) {
		/* RFC 3463 5.6.3: conversion required but not supported */
		smtp_reply_set(&t->mail, 554, "5.6.3",
		    "%s does not support 8BITMIME and the message cannot be "
		    "converted to 7 bit: %s",
		    c->host, mime8_error_text(m.err));
		return -1;
	}
	if (c->down == NULL && (c->down = malloc(sizeof(*c->down))) == NULL) {
		smtp_reply_set(&t->mail, 451, "4.3.0", "out of memory");
		return -1;
	}
	mime8_init(c->down);
	*size = m.out_size;
	return 0;
}

/* ------------------------------------------------------- transactions */

int
smtp_client_send(struct smtp_client *c, struct smtp_txn *t)
{
	struct evbuffer *out;
	uint64_t size;
	size_t i;

	if (c->state != SC_IDLE)
		return -1;
	memset(&t->mail, 0, sizeof(t->mail));
	memset(&t->data, 0, sizeof(t->data));
	for (i = 0; i < t->nrcpts; i++)
		memset(&t->rcpt[i], 0, sizeof(t->rcpt[i]));
	size = t->size;
	t->downgraded = t->has8bit && (!c->eightbitmime || t->force7bit);
	if (t->downgraded && smtp_client_downgrade_plan(c, t, &size) == -1) {
		if (!c->eightbitmime)
			return -1;
		/* forced only, and it does not convert: as it is */
		memset(&t->mail, 0, sizeof(t->mail));
		t->downgraded = false;
		size = t->size;
	}
	if (c->size_max != 0 && size > c->size_max) {
		smtp_reply_set(&t->mail, 552, "5.3.4",
		    "message size %llu exceeds the limit of %s (%llu)",
		    (unsigned long long)size, c->host,
		    (unsigned long long)c->size_max);
		return -1;
	}
	if (t->smtputf8 && !c->smtputf8) {
		/* RFC 6531 3.4: no downgrade, bounce. */
		smtp_reply_set(&t->mail, 553, "5.6.7",
		    "%s does not support SMTPUTF8", c->host);
		return -1;
	}
	c->txn = t;
	c->step = 0;
	c->accepted = 0;
	c->body_off = 0;
	c->downgrade = t->downgraded;
	c->bol = true;
	c->last2[0] = '\r';
	c->last2[1] = '\n';
	out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out, "MAIL FROM:<%s>", t->sender);
	if (c->size_max != 0 || c->esmtp)
		evbuffer_add_printf(
		    out, " SIZE=%llu", (unsigned long long)size);
	if (t->eightbit && c->eightbitmime && !t->downgraded)
		evbuffer_add(out, " BODY=8BITMIME", 14);
	if (t->smtputf8)
		evbuffer_add(out, " SMTPUTF8", 9);
	evbuffer_add(out, "\r\n", 2);
	c->sent = 1;
	if (c->pipelining) {
		/* RFC 2920: MAIL, every RCPT and DATA in one group. */
		for (i = 0; i < t->nrcpts; i++)
			evbuffer_add_printf(
			    out, "RCPT TO:<%s>\r\n", t->rcpts[i]);
		evbuffer_add(out, "DATA\r\n", 6);
		c->sent = t->nrcpts + 2;
	}
	c->state = SC_TXN;
	smtp_client_timeouts(c, true);
	return 0;
}

static void
smtp_client_done(struct smtp_client *c, bool clean)
{
	struct smtp_txn *t = c->txn;

	c->txn = NULL;
	if (clean) {
		c->state = SC_IDLE;
		smtp_client_timeouts(c, false);
	} else {
		/* RFC 5321 4.1.1.5: abandon the transaction. */
		c->state = SC_RSET;
		smtp_client_write(c, "RSET\r\n", 6);
	}
	c->cb.txn_done(c, t, c->arg);
	if (clean && c->state == SC_IDLE && c->txn == NULL)
		c->cb.ready(c, c->arg);
}

/* Dot-stuffs n octets into out (RFC 5321 4.5.2), noting the line start
 * and the last two octets sent.  Lines that start with a dot are rare:
 * memchr() finds the line ends and the data goes out in runs, one
 * evbuffer_add() per run, with the extra dot between two runs. */
static void
smtp_client_stuff(
    struct smtp_client *c, struct evbuffer *out, const char *in, size_t n)
{
	const char *run = in, *p = in, *end = in + n, *nl;

	if (n == 0)
		return;
	if (c->bol && *p == '.') {
		evbuffer_add(out, ".", 1);
		p++;
	}
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p = nl + 1;
		if (p < end && *p == '.') {
			evbuffer_add(out, run, (size_t)(p - run));
			evbuffer_add(out, ".", 1);
			run = p++;
		}
	}
	evbuffer_add(out, run, (size_t)(end - run));
	c->bol = end[-1] == '\n';
	if (n >= 2) {
		c->last2[0] = in[n - 2];
		c->last2[1] = in[n - 1];
	} else {
		c->last2[0] = c->last2[1];
		c->last2[1] = in[0];
	}
}

/* The converter's output (whole lines) goes out dot-stuffed. */
static void
smtp_client_down_cb(void *arg, const char *p, size_t n)
{
	struct smtp_client *c = arg;

	smtp_client_stuff(c, bufferevent_get_output(c->bev), p, n);
}

/* Streams message data with dot-stuffing (RFC 5321 4.5.2) until the
 * output holds a chunk; resumed by the write callback.  Converted to 7
 * bit on the way when the server lacks 8BITMIME (smtp_client_send). */
static void
smtp_client_body(struct smtp_client *c)
{
	struct smtp_txn *t = c->txn;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char in[SMTP_CLIENT_CHUNK];
	ssize_t n;
	int rv = 0;

	while (evbuffer_get_length(out) < SMTP_CLIENT_CHUNK) {
		n = t->read(t->read_arg, c->body_off, in, sizeof(in));
		if (n > 0 && c->downgrade)
			rv = mime8_feed(
			    c->down, in, (size_t)n, smtp_client_down_cb, c);
		else if (n == 0 && c->downgrade)
			rv = mime8_finish(c->down, smtp_client_down_cb, c);
		if (n < 0 || rv == -1) {
			/* a read error, or data that changed since the dry
			 * pass: abandon the session, the message waits */
			smtp_client_failf(c, SMTP_CLIENT_DROPPED, 451, "4.3.0",
			    "cannot read queued message data");
			return;
		}
		if (n == 0) {
			/* The data ends with CRLF; make sure it does. */
			if (c->last2[0] != '\r' || c->last2[1] != '\n')
				evbuffer_add(out, "\r\n", 2);
			evbuffer_add(out, ".\r\n", 3);
			c->state = SC_DOT;
			return;
		}
		if (!c->downgrade)
			smtp_client_stuff(c, out, in, (size_t)n);
		c->body_off += (uint64_t)n;
	}
}

static void
smtp_client_send_next(struct smtp_client *c)
{
	struct smtp_txn *t = c->txn;

	/* Without PIPELINING one command at a time: the next is step. */
	if (c->sent > c->step)
		return;
	if (c->step <= t->nrcpts)
		smtp_client_printf(
		    c, "RCPT TO:<%s>\r\n", t->rcpts[c->step - 1]);
	else
		smtp_client_write(c, "DATA\r\n", 6);
	c->sent++;
}

static void
smtp_client_txn_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct smtp_txn *t = c->txn;
	size_t i;

	if (c->step == 0) {
		t->mail = *r;
		c->step++;
		if (smtp_reply_class(r) != 2 && !c->pipelining) {
			for (i = 0; i < t->nrcpts; i++)
				t->rcpt[i] = *r;
			smtp_client_done(c, false);
			return;
		}
	} else if (c->step <= t->nrcpts) {
		/* A failed MAIL makes every RCPT fail with its reply. */
		t->rcpt[c->step - 1] =
		    smtp_reply_class(&t->mail) != 2 ? t->mail : *r;
		if (smtp_reply_class(r) == 2 && smtp_reply_class(&t->mail) == 2)
			c->accepted++;
		c->step++;
		if (!c->pipelining && c->step > t->nrcpts && c->accepted == 0) {
			smtp_client_done(c, false);
			return;
		}
	} else {
		/* DATA. */
		c->step++;
		if (r->code != 354) {
			t->data = *r;
			smtp_client_done(c, false);
			return;
		}
		if (c->accepted == 0) {
			/* A server that says 354 with no recipient: end the
			 * empty message; its reply is ignored. */
			smtp_reply_set(
			    &t->data, 554, "5.5.1", "no valid recipients");
			smtp_client_write(c, ".\r\n", 3);
			c->state = SC_DOT;
			return;
		}
		c->state = SC_BODY;
		smtp_client_body(c);
		return;
	}
	smtp_client_send_next(c);
}

/* --------------------------------------------------------- the engine */

static void
smtp_client_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	int cls = smtp_reply_class(r);
	char text[SMTP_REPLY_TEXT + 32];

	switch (c->state) {
	case SC_GREETING:
		if (cls != 2) {
			smtp_client_fail(c, SMTP_CLIENT_REJECTED, r);
			return;
		}
		smtp_client_ehlo(c);
		break;
	case SC_EHLO:
		if (cls == 2) {
			c->esmtp = true;
			smtp_client_after_ehlo(c);
		} else if (cls == 5 && !c->tls_on) {
			/* RFC 5321 3.2: HELO for servers without ESMTP. */
			c->state = SC_HELO;
			smtp_client_printf(c, "HELO %s\r\n", c->helo);
		} else
			smtp_client_fail(c, SMTP_CLIENT_REJECTED, r);
		break;
	case SC_HELO:
		if (cls != 2) {
			smtp_client_fail(c, SMTP_CLIENT_REJECTED, r);
			return;
		}
		smtp_client_after_ehlo(c);
		break;
	case SC_STARTTLS:
		if (cls != 2) {
			if (c->p.tls == SMTP_TLS_OPPORTUNISTIC) {
				c->starttls = false;
				c->p.tls = SMTP_TLS_NONE;
				smtp_client_after_ehlo(c);
				return;
			}
			smtp_reply_format(r, text, sizeof(text));
			smtp_client_failf(c, SMTP_CLIENT_TLS, r->code,
			    r->enhanced, "STARTTLS refused: %s", text);
			return;
		}
		smtp_client_starttls(c);
		break;
	case SC_AUTH_PLAIN:
	case SC_AUTH_LOGIN_DONE:
		if (cls != 2) {
			smtp_client_fail(c, SMTP_CLIENT_AUTH, r);
			return;
		}
		c->state = SC_IDLE;
		smtp_client_timeouts(c, false);
		c->cb.ready(c, c->arg);
		break;
	case SC_AUTH_XOAUTH2:
	case SC_AUTH_XOAUTH2_ERR:
		if (cls == 2) {
			c->state = SC_IDLE;
			smtp_client_timeouts(c, false);
			c->cb.ready(c, c->arg);
		} else if (r->code == 334 && c->state == SC_AUTH_XOAUTH2) {
			/* The error challenge (base64 JSON): an empty
			 * response ends the exchange with the 5xx. */
			smtp_client_write(c, "\r\n", 2);
			c->state = SC_AUTH_XOAUTH2_ERR;
		} else
			smtp_client_xoauth2_refused(c, r);
		break;
	case SC_AUTH_LOGIN_USER:
	case SC_AUTH_LOGIN_PASS:
		if (r->code != 334) {
			smtp_client_fail(c, SMTP_CLIENT_AUTH, r);
			return;
		}
		smtp_client_b64(bufferevent_get_output(c->bev),
		    (const unsigned char *)(c->state == SC_AUTH_LOGIN_USER
		                                ? c->user
		                                : c->secret),
		    strlen(
		        c->state == SC_AUTH_LOGIN_USER ? c->user : c->secret));
		smtp_client_write(c, "\r\n", 2);
		c->state = c->state == SC_AUTH_LOGIN_USER ? SC_AUTH_LOGIN_PASS
		                                          : SC_AUTH_LOGIN_DONE;
		break;
	case SC_TXN:
		smtp_client_txn_reply(c, r);
		break;
	case SC_DOT:
		if (c->txn->data.code == 0)
			c->txn->data = *r;
		smtp_client_done(c, c->accepted > 0);
		break;
	case SC_RSET:
		if (cls != 2) {
			smtp_client_fail(c, SMTP_CLIENT_DROPPED, r);
			return;
		}
		c->state = SC_IDLE;
		smtp_client_timeouts(c, false);
		c->cb.ready(c, c->arg);
		break;
	case SC_QUIT:
		smtp_client_free(c);
		return;
	case SC_IDLE:
		/* Unsolicited: typically 421 before an idle close. */
		smtp_client_fail(c, SMTP_CLIENT_DROPPED, r);
		break;
	default:
		smtp_client_failf(c, SMTP_CLIENT_DROPPED, 0, "4.5.0",
		    "unexpected reply from %s", c->host);
		break;
	}
}

static void
smtp_client_on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *lt;
	char *line;
	size_t len;
	int rv;

	smtp_client_enter(c);
	while (!c->free_pending && c->state != SC_DEAD && c->bev == bev) {
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > SMTP_CLIENT_LINE_MAX)
				smtp_client_failf(c, SMTP_CLIENT_DROPPED, 0,
				    "4.5.0", "reply line too long from %s",
				    c->host);
			break;
		}
		rv = smtp_reply_feed(&c->rp, line, len, &lt);
		if (rv >= 0 && c->state == SC_EHLO && c->rp.lines > 1)
			smtp_client_ehlo_line(c, lt, len - (size_t)(lt - line));
		free(line);
		if (rv == -1) {
			smtp_client_failf(c, SMTP_CLIENT_DROPPED, 0, "4.5.0",
			    "malformed reply from %s", c->host);
			break;
		}
		if (rv == 1) {
			struct smtp_reply r = c->rp.r;

			smtp_reply_init(&c->rp);
			smtp_client_reply(c, &r);
		}
	}
	smtp_client_leave(c);
}

static void
smtp_client_on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	smtp_client_enter(c);
	if (c->state == SC_BODY && !c->free_pending)
		smtp_client_body(c);
	smtp_client_leave(c);
}

static void
smtp_client_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;
	char why[256];
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	smtp_client_enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		smtp_client_nodelay(c);
		if (c->state == SC_CONNECTING) {
			c->state = SC_GREETING;
			smtp_client_timeouts(c, true);
		} else if (c->state == SC_HANDSHAKE) {
			/* RFC 3207 4.2: forget everything, EHLO again. */
			smtp_client_ehlo(c);
		}
	} else if (what & BEV_EVENT_TIMEOUT) {
		smtp_client_failf(c, SMTP_CLIENT_TIMEOUT, 0, "4.4.2",
		    "%s with %s[%s] while %s",
		    c->state == SC_CONNECTING ? "connect timeout" : "timeout",
		    c->host, c->peer,
		    c->state <= SC_HANDSHAKE ? "setting up the session"
		    : c->state == SC_BODY    ? "sending message data"
		    : c->state < SC_IDLE     ? "authenticating"
		                             : "waiting for a reply");
	} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		if (c->state == SC_CONNECTING && !c->tls_on)
			smtp_client_failf(c, SMTP_CLIENT_CONNECT, 0, "4.4.1",
			    "connect to %s[%s]: %s", c->host, c->peer,
			    err ? evutil_socket_error_to_string(err)
			        : "connection refused");
		else if (c->state == SC_HANDSHAKE ||
		         (c->state <= SC_GREETING && c->tls_on)) {
			tls_client_describe(c->bev, why, sizeof(why));
			if (c->state == SC_CONNECTING && err != 0 &&
			    strstr(why, "verif") == NULL)
				snprintf(why, sizeof(why), "connect: %s",
				    evutil_socket_error_to_string(err));
			smtp_client_failf(c,
			    c->state == SC_CONNECTING && err != 0
			        ? SMTP_CLIENT_CONNECT
			        : SMTP_CLIENT_TLS,
			    0, "4.7.5", "%s[%s]: %s", c->host, c->peer, why);
		} else if (c->state == SC_QUIT)
			smtp_client_free(c);
		else
			smtp_client_failf(c, SMTP_CLIENT_DROPPED, 0, "4.4.2",
			    "lost connection with %s[%s] while %s", c->host,
			    c->peer,
			    c->state == SC_DOT || c->state == SC_BODY
			        ? "sending message data"
			        : "in SMTP dialog");
	}
	smtp_client_leave(c);
}
