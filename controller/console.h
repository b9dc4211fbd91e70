/* console.h - the web console: an HTTPS listener of its own (libevent
 * evhttp over bufferevent_openssl) on its own thread with its own store
 * connection, off unless console_listen is set.  It serves the front end
 * (controller/console/, embedded at build time) and a JSON API that goes
 * through api_admin_handle, the same function sluicectl's admin endpoint
 * runs, so the admin API's redaction of secrets holds.  Operators log in
 * with accounts kept in PostgreSQL (`sluicectl console user add`).
 * docs/console.md describes the API and its rules. */
#ifndef SLUICE_CONSOLE_H
#define SLUICE_CONSOLE_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct console;
struct config;

struct console_config {
	const char *listen; /* HOST:PORT */
	const char *cert;   /* PEM chain */
	const char *key;    /* PEM private key */
	const char *ca;     /* optional: clients need a certificate */
	int64_t session_idle_s;
	int64_t session_max_s;
	int64_t lockout_failures;
	int64_t lockout_s;
	int64_t poll_ms; /* how often the pages refresh */
};

/* The console_* keys of the controller config, checked; -1 with err.
 * cf->listen stays NULL when the console is off. */
int console_config_read(
    const struct config *, struct console_config *, char *err, size_t errlen);
/* Binds and starts the thread; NULL with err.  Stops when *stop is set. */
struct console *console_start(const struct console_config *,
    const char *database, int64_t silent_after_ms, const atomic_bool *is_ready,
    volatile sig_atomic_t *stop, char *err, size_t errlen);
/* Joins the thread (after *stop is set) and frees. */
void console_stop(struct console *);

#endif
