/* smtp_client.h - one outbound SMTP session (RFC 5321) on a libevent
 * bufferevent: connect, greeting, EHLO (HELO fallback), STARTTLS or
 * implicit TLS, AUTH PLAIN/LOGIN/XOAUTH2, then any number of transactions, each
 * pipelined (RFC 2920) when the server offers it.  Owned by delivery.c
 * (its connection cache); loop thread only.  The session reports through
 * callbacks and never frees itself: the owner calls smtp_client_free(),
 * also from inside a callback. */
#ifndef SLUICE_SMTP_CLIENT_H
#define SLUICE_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "smtp_reply.h"

struct event_base;
struct ssl_ctx_st;
struct smtp_client;
struct oauth_hop;

/* Why a session ended before or between transactions. */
enum smtp_client_failure {
	SMTP_CLIENT_OK = 0,
	SMTP_CLIENT_CONNECT, /* refused, unreachable */
	SMTP_CLIENT_TIMEOUT,
	SMTP_CLIENT_TLS,      /* handshake, verification, STARTTLS missing */
	SMTP_CLIENT_AUTH,     /* 535 and friends, AUTH not offered */
	SMTP_CLIENT_REJECTED, /* greeting or EHLO/HELO refused */
	SMTP_CLIENT_DROPPED,  /* peer closed or protocol garbage */
};
const char *smtp_client_failure_name(enum smtp_client_failure);

enum smtp_client_tls {
	SMTP_TLS_NONE,
	SMTP_TLS_OPPORTUNISTIC, /* STARTTLS when offered */
	SMTP_TLS_REQUIRE,       /* STARTTLS or fail */
	SMTP_TLS_SMTPS,         /* implicit TLS from the first byte */
};

struct smtp_client_params {
	const char *helo; /* our EHLO name */
	const char *host; /* peer name: SNI, verify, logs */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum smtp_client_tls tls;
	bool verify; /* certificate + host name */
	struct ssl_ctx_st *ssl_ctx;
	const char *auth_user; /* NULL/"": no AUTH */
	const char *secret;
	/* XOAUTH2 hop: AUTH XOAUTH2 as auth_user with a token from here
	 * (secret unused).  Outlives the session (delivery.c's oauth). */
	struct oauth_hop *oauth;
	int connect_timeout_ms;
	int timeout_ms; /* per reply */
};

/* A transaction.  The caller owns it and its arrays; results are filled
 * in before txn_done: mail, rcpt[i] for each recipient, data (code 0 if
 * DATA was never reached). */
struct smtp_txn {
	const char *sender; /* "" for <> */
	const char *const *rcpts;
	size_t nrcpts;
	uint64_t size;
	bool eightbit; /* BODY=8BITMIME when the server offers it */
	bool has8bit;  /* octets > 127 in the data: without 8BITMIME the
	                * data is converted to 7 bit (mime8.h) or refused */
	bool smtputf8;
	/* 8-bit data goes converted to 7 bit even to a server offering
	 * 8BITMIME (its DKIM signature covers that form); as it is when it
	 * does not convert and the server takes 8 bit. */
	bool force7bit;
	/* Set by smtp_client_send: the data goes converted to 7 bit (a
	 * stored DKIM signature would not match it unless it was made over
	 * that form: signer.h). */
	bool downgraded;
	/* Reads message data (CRLF lines, not dot-stuffed): octets read,
	 * 0 at the end, -1 on error (the session is aborted). */
	ssize_t (*read)(void *arg, uint64_t off, void *buf, size_t n);
	void *read_arg;
	struct smtp_reply mail;
	struct smtp_reply *rcpt; /* [nrcpts], caller's */
	struct smtp_reply data;
};

struct smtp_client_cb {
	/* Session established, or the last transaction finished: idle. */
	void (*ready)(struct smtp_client *, void *arg);
	/* The transaction has its results (the session stays usable unless
	 * failed() follows). */
	void (*txn_done)(struct smtp_client *, struct smtp_txn *, void *arg);
	/* The session is over.  txn is the one in flight (its replies so
	 * far are filled in) or NULL.  why describes the cause. */
	void (*failed)(struct smtp_client *, enum smtp_client_failure,
	    const struct smtp_reply *why, struct smtp_txn *txn, void *arg);
};

struct smtp_client *smtp_client_new(struct event_base *,
    const struct smtp_client_params *, const struct smtp_client_cb *,
    void *arg);
/* Starts a transaction on an idle session: -1 if not idle or the
 * transaction cannot go to this server (then txn->mail says why, e.g.
 * SIZE exceeded 552 5.3.4, SMTPUTF8 missing 553 5.6.7, 8-bit data that
 * cannot be converted for a server without 8BITMIME 554 5.6.3, its data
 * unreadable 451 4.3.0).  8-bit data for a server without 8BITMIME is
 * read once here to decide and to size the 7-bit version. */
int smtp_client_send(struct smtp_client *, struct smtp_txn *);
/* Polite close of an idle session (QUIT), then frees it: no more
 * callbacks. */
void smtp_client_quit(struct smtp_client *);
/* Immediate close and free: no more callbacks. */
void smtp_client_free(struct smtp_client *);
bool smtp_client_is_idle(const struct smtp_client *);
bool smtp_client_has_tls(const struct smtp_client *);
const char *smtp_client_host(const struct smtp_client *);
/* "127.0.0.1:2525" of the peer. */
const char *smtp_client_peer(const struct smtp_client *);

#endif
