/* console_internal.h - shared by console_http.c (listener, TLS, static
 * files, sessions and CSRF on the way in), console_auth.c (login,
 * logout, session lookup) and console_api.c (the JSON endpoints). */
#ifndef SLUICE_CONSOLE_INTERNAL_H
#define SLUICE_CONSOLE_INTERNAL_H

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>

#include "api.h"
#include "console.h"
#include "console_json.h"

struct console {
	struct console_config cf;
	struct event_base *base;
	struct evhttp *http;
	struct event *tick;
	SSL_CTX *ssl;
	struct api api;
	volatile sig_atomic_t *stop;
	int64_t expired_at;
	/* verified against for unknown names: same time as a real one */
	char dummy_hash[160];
	pthread_t thread;
};

/* One request on its way through the console. */
struct console_req {
	struct console *c;
	struct evhttp_request *req;
	const char *path;
	struct evkeyvalq query;
	struct evkeyvalq form; /* POST body, x-www-form-urlencoded */
	char peer[64];
	bool has_session;
	char name[72];
	char role[16];
	char csrf[64];
	char token_digest[72];
};

/* Reply helpers (console_http.c): a JSON body, or an error object
 * {"error":{"code":..,"message":..}} with its HTTP status. */
void console_reply_json(struct console_req *, int status, struct console_buf *);
void console_reply_error(
    struct console_req *, int status, const char *code, const char *msg);
/* The HTTP status for an admin error code. */
int console_status_of(const char *code);
/* "alice (console 127.0.0.1)": the identity written to the audit log. */
void console_identity(const struct console_req *, char *out, size_t len);
void console_audit(
    struct console_req *, const char *action, const char *detail);

/* console_auth.c */
/* Looks the cookie up; fills r->name, role, csrf when it is live. */
void console_auth_session(struct console_req *);
void console_auth_login(struct console_req *);
void console_auth_logout(struct console_req *);
void console_auth_me(struct console_req *);
void console_auth_expire(struct console *);

/* console_api.c: every /api/ path but login, logout and me. */
void console_api_dispatch(struct console_req *);

/* Generated from controller/console/ by console/embed.cmake. */
struct console_asset {
	const char *path;
	const char *type;
	const unsigned char *data;
	size_t len;
};
extern const struct console_asset console_assets[];
extern const size_t console_assets_count;

#endif
