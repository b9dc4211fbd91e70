/* metrics.h - the node's /metrics endpoint: Prometheus text exposition
 * format over libevent's evhttp, from struct node_stats.  Config key:
 *   metrics_listen = 127.0.0.1:9101
 * Loop thread only. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>

struct node;
struct metrics;
struct evbuffer;

extern const char *const metrics_config_keys[];

/* NULL with err when the address is bad or cannot be bound; a node without
 * metrics_listen gets a non-NULL handle that serves nothing. */
struct metrics *metrics_open(struct node *, char *err, size_t errlen);
void metrics_close(struct metrics *);
/* Renders the exposition text (used by the handler and by tests). */
void metrics_render(const struct node *, struct evbuffer *);

#endif
