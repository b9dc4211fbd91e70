/* console_auth.c - logging in to the web console: operator accounts
 * (scrypt hashes, lib/passwd.c), lockout after console_lockout_failures
 * refused passwords, sessions (a random cookie; PostgreSQL keeps its
 * sha256 and the session's CSRF token, so every controller accepts it),
 * logout.  Every login, refusal, lockout and logout goes to the audit
 * history.  Called from console_http.c on the console thread. */
#include "console_internal.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "passwd.h"
#include "store_console.h"
#include "token.h"

#define CONSOLE_COOKIE       "sluice_session"
#define CONSOLE_PASSWORD_MAX 1024

struct console_auth_user {
	bool found;
	char role[16];
	char hash[PASSWD_HASH_MAX + 40];
	bool is_locked;
	int64_t locked_until;
};

static int
console_auth_user_cb(void *arg, const struct store_operator_row *row)
{
	struct console_auth_user *u = arg;

	u->found = true;
	snprintf(u->role, sizeof(u->role), "%s", row->role);
	snprintf(u->hash, sizeof(u->hash), "%s", row->password_hash);
	u->is_locked = row->is_locked;
	u->locked_until = row->locked_until;
	return 0;
}

static int
console_auth_session_cb(void *arg, const struct store_session_row *row)
{
	struct console_req *r = arg;

	r->has_session = true;
	snprintf(r->name, sizeof(r->name), "%s", row->operator_name);
	snprintf(r->role, sizeof(r->role), "%s", row->role);
	snprintf(r->csrf, sizeof(r->csrf), "%s", row->csrf);
	return 0;
}

/* The session cookie's value from the Cookie header, or NULL. */
static const char *
console_auth_cookie(struct console_req *r, char *out, size_t len)
{
	const char *h = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "Cookie");
	const char *p;
	size_t n;

	for (p = h; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == ';')
			p++;
		n = strcspn(p, ";");
		if (strncmp(p, CONSOLE_COOKIE "=", sizeof(CONSOLE_COOKIE)) ==
		    0) {
			p += sizeof(CONSOLE_COOKIE);
			n -= sizeof(CONSOLE_COOKIE);
			if (n != TOKEN_LEN || n >= len)
				return NULL;
			memcpy(out, p, n);
			out[n] = '\0';
			return out;
		}
		p += n;
	}
	return NULL;
}

void
console_auth_session(struct console_req *r)
{
	char token[TOKEN_LEN + 1];

	if (console_auth_cookie(r, token, sizeof(token)) == NULL ||
	    token_digest(token, r->token_digest) == -1)
		return;
	explicit_bzero(token, sizeof(token));
	store_console_session_get(r->c->api.store, r->token_digest,
	    r->c->cf.session_idle_s, console_auth_session_cb, r);
}

static void
console_auth_reply_me(struct console_req *r)
{
	struct console_buf b = {0};

	console_buf_add(&b, "{\"name\":", 8);
	console_json_str(&b, r->name);
	console_buf_add(&b, ",\"role\":", 8);
	console_json_str(&b, r->role);
	console_buf_add(&b, ",\"csrf\":", 8);
	console_json_str(&b, r->csrf);
	console_buf_printf(&b, ",\"poll_ms\":%" PRId64 "}", r->c->cf.poll_ms);
	console_reply_json(r, 200, &b);
	console_buf_free(&b);
}

void
console_auth_me(struct console_req *r)
{
	console_auth_reply_me(r);
}

static void
console_auth_refuse(struct console_req *r, const char *name, bool locked_now)
{
	char detail[128], shown[80];

	snprintf(detail, sizeof(detail), "name=%s",
	    api_printable(name, shown, sizeof(shown)));
	console_audit(r,
	    locked_now ? "login refused, account locked" : "login refused",
	    detail);
	console_reply_error(r, 401, "denied", "Wrong name or password.");
}

void
console_auth_login(struct console_req *r)
{
	const char *name = evhttp_find_header(&r->form, "name");
	const char *pw = evhttp_find_header(&r->form, "password");
	struct console_auth_user u;
	char token[TOKEN_LEN + 1], csrf[TOKEN_LEN + 1], cookie[160];
	char digest[TOKEN_DIGEST_LEN + 1], shown[80], detail[128];
	struct console *c = r->c;
	bool locked_now = false, ok;
	int rc;

	if (name == NULL || pw == NULL || name[0] == '\0' ||
	    strlen(name) > 64 || strlen(pw) > CONSOLE_PASSWORD_MAX) {
		console_reply_error(r, 400, "bad_request",
		    "Give a name and a password (at most 1024 bytes).");
		return;
	}
	memset(&u, 0, sizeof(u));
	if ((rc = store_console_user_get(
	         c->api.store, name, console_auth_user_cb, &u)) != STORE_OK &&
	    rc != STORE_NOT_FOUND) {
		console_reply_error(r, 503, "unavailable",
		    "The controller's database is unavailable; try again "
		    "shortly.");
		return;
	}
	if (u.found && u.is_locked) {
		snprintf(detail, sizeof(detail), "name=%s",
		    api_printable(name, shown, sizeof(shown)));
		console_audit(r, "login refused, account locked", detail);
		console_reply_error(r, 403, "locked",
		    "This account is locked after too many failed logins; "
		    "wait, or ask for `sluicectl console user unlock`.");
		return;
	}
	if (!u.found && c->dummy_hash[0] == '\0' &&
	    passwd_hash("sluice-console-dummy", c->dummy_hash,
	        sizeof(c->dummy_hash)) == -1)
		c->dummy_hash[0] = '\0';
	/* An unknown name costs one scrypt too: no timing oracle. */
	ok = passwd_verify(pw, u.found ? u.hash : c->dummy_hash) && u.found;
	explicit_bzero(u.hash, sizeof(u.hash));
	if (!ok) {
		if (u.found && store_console_login_failed(c->api.store, name,
		                   (uint32_t)c->cf.lockout_failures,
		                   c->cf.lockout_s, &locked_now) != STORE_OK)
			log_warnx("console: failed login not counted");
		console_auth_refuse(r, name, locked_now);
		return;
	}
	if (token_new(token) == -1 || token_new(csrf) == -1 ||
	    token_digest(token, digest) == -1) {
		console_reply_error(
		    r, 500, "internal", "The controller cannot make a token.");
		return;
	}
	if (store_console_login_ok(c->api.store, name) != STORE_OK ||
	    store_console_session_add(c->api.store, digest, name, csrf, r->peer,
	        c->cf.session_max_s) != STORE_OK) {
		explicit_bzero(token, sizeof(token));
		console_reply_error(r, 503, "unavailable",
		    "The controller's database is unavailable; try again "
		    "shortly.");
		return;
	}
	snprintf(cookie, sizeof(cookie),
	    CONSOLE_COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Strict; "
	                   "Max-Age=%" PRId64,
	    token, c->cf.session_max_s);
	explicit_bzero(token, sizeof(token));
	evhttp_add_header(
	    evhttp_request_get_output_headers(r->req), "Set-Cookie", cookie);
	explicit_bzero(cookie, sizeof(cookie));
	r->has_session = true;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->role, sizeof(r->role), "%s", u.role);
	snprintf(r->csrf, sizeof(r->csrf), "%s", csrf);
	snprintf(detail, sizeof(detail), "role=%s", u.role);
	console_audit(r, "login", detail);
	console_auth_reply_me(r);
}

void
console_auth_logout(struct console_req *r)
{
	struct console_buf b = {0};

	store_console_session_del(r->c->api.store, r->token_digest);
	console_audit(r, "logout", "");
	evhttp_add_header(evhttp_request_get_output_headers(r->req),
	    "Set-Cookie",
	    CONSOLE_COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Strict; "
	                   "Max-Age=0");
	console_buf_add(&b, "{}", 2);
	console_reply_json(r, 200, &b);
	console_buf_free(&b);
}

void
console_auth_expire(struct console *c)
{
	int64_t now = (int64_t)time(NULL);
	struct api_error e;

	if (now - c->expired_at < 60 || !api_ready(&c->api, &e))
		return;
	c->expired_at = now;
	store_console_session_expire(c->api.store, c->cf.session_idle_s);
}
