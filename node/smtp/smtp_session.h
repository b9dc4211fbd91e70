/* smtp_session.h - one inbound SMTP connection: the ESMTP state machine on
 * a bufferevent (plain, STARTTLS filter, or implicit TLS), from the PROXY
 * header or greeting to QUIT.  Shared between smtp_server.c (listeners,
 * accept) and smtp_session.c (everything after accept).  Loop thread
 * only; sessions are found by id from the spool and auth callbacks. */
#ifndef SLUICE_SMTP_SESSION_H
#define SLUICE_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

struct evconnlistener;
struct node;
struct ratelimit;
struct auth;
struct tls_server;
struct smtp_session;
struct sockaddr;

enum smtp_role {
	SMTP_ROLE_RELAY = 0,  /* port 25: policy networks, or AUTH */
	SMTP_ROLE_SUBMISSION, /* port 587: AUTH required, after STARTTLS */
	SMTP_ROLE_SMTPS,      /* port 465: implicit TLS, AUTH required */
};

const char *smtp_role_name(enum smtp_role);

struct smtp_listener {
	struct smtp_server *srv;
	struct evconnlistener *lev;
	enum smtp_role role;
	bool proxy;    /* PROXY v1/v2 header first */
	char name[80]; /* "127.0.0.1:2525" */
	/* Routes match on this (listen ... name=NAME; default the role) */
	char route_name[65];
};

#define SMTP_SESSION_BUCKETS 1024

struct smtp_server {
	struct node *node;
	struct smtp_listener *listeners;
	size_t nlisteners;
	struct tls_server *tls; /* NULL: no STARTTLS/smtps */
	struct ratelimit *rl;
	struct auth *auth;
	struct smtp_session *sessions[SMTP_SESSION_BUCKETS];
	size_t nsessions;
	uint64_t next_id;
};

/* Takes fd (accepted, non-blocking) and starts a session on it. */
void smtp_session_start(struct smtp_listener *, evutil_socket_t fd,
    const struct sockaddr *, int socklen);
/* Frees every session (shutdown). */
void smtp_session_close_all(struct smtp_server *);
/* The auth worker's result, by session id. */
void smtp_session_on_auth(struct smtp_server *, uint64_t id, bool ok);

#endif
