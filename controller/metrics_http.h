/* metrics_http.h - the controller's /metrics: Prometheus text exposition
 * (version 0.0.4) of the fleet as PostgreSQL knows it, served by libevent's
 * evhttp on its own thread with its own store connection.  Config key:
 *   metrics_listen = 127.0.0.1:9102 */
#ifndef SLUICE_METRICS_HTTP_H
#define SLUICE_METRICS_HTTP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct metrics_http;
struct store;

/* Binds addr ("HOST:PORT"); NULL with err.  The thread starts at once
 * and stops when *stop becomes non-zero (checked every 200 ms). */
struct metrics_http *metrics_http_start(const char *addr, struct store *,
    int64_t silent_after_ms, volatile sig_atomic_t *stop, char *err,
    size_t errlen);
/* Joins the thread (after *stop is set) and frees. */
void metrics_http_stop(struct metrics_http *);

#endif
