/* delivery.h - the delivery engine: takes due messages from the spool,
 * groups their recipients by route and hop, delivers through a cache of
 * outbound SMTP sessions per hop (max_conn, rate, PIPELINING), fails over
 * between hops in the same attempt, defers with backoff, bounces with
 * DSNs, and journals one event per recipient per attempt.
 *
 * Node config keys (all optional):
 *   resolver = 127.0.0.1:5353        DNS server(s) for MX delivery
 *   tls_ca_file = /etc/ssl/ca.pem    CA bundle for verified hops
 *   delivery_tick_ms = 100           housekeeping (hop metrics, idle
 *                                    pools); not a queue scan
 *   delivery_timeout_ms = 300000     per SMTP reply
 *   delivery_connect_timeout_ms = 30000
 *   delivery_idle_ms = 5000          cached idle sessions close after
 *   delivery_max_inflight = 5000     messages in delivery at once
 *   circuit_failures = 5             consecutive hop failures to open
 *   circuit_cooldown_ms = 30000      open circuit probed after
 *   throttle_ms = 5000               first back-off after a 454 throttle
 * Loop thread only, except delivery_hop_metrics() (any thread). */
#ifndef SLUICE_DELIVERY_H
#define SLUICE_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node;
struct delivery;

extern const char *const delivery_config_keys[];

/* Starts the engine (after the spool is open).  NULL with err on bad
 * configuration. */
struct delivery *delivery_open(struct node *, char *err, size_t errlen);
/* Drops sessions; messages in flight stay queued for the next start. */
void delivery_close(struct delivery *);

/* Health of a hop for /metrics and heartbeats (HopMetrics). */
struct delivery_hop_metric {
	char name[64];
	bool circuit_open;
	bool throttled;
	uint32_t connections;
	uint32_t recent_failures;
	uint64_t delivered; /* transactions that delivered mail */
	uint64_t failed;
	bool half_open;               /* cool-down over, probing */
	uint32_t throttled_for_s;     /* left of the throttle pause */
	uint32_t throttle_window_s;   /* the provider's window, 0: back-off */
	char alert_scope[16];         /* "hop-config", "account" or "" */
	char alert[200];              /* the reply behind it */
	bool fleet_paused;            /* paused by the controller (issue 10) */
	uint32_t own_throttled_for_s; /* left of this node's own pause */
	char fleet_paused_by[64];     /* the node that met the throttle */
};
/* Copies up to max entries (as of the last tick); returns how many.
 * Thread-safe. */
size_t delivery_hop_metrics(
    struct delivery *, struct delivery_hop_metric *, size_t max);
/* Starts whatever is due now (the spool's changes reach the due-time
 * index by themselves; this only wakes the engine).  Loop thread. */
void delivery_kick(struct delivery *);
/* The shadow copy of queue_id is done (node/shadow.c): the message, held
 * back from delivery while it was on its way, is due now if it is still
 * queued and active.  Loop thread. */
void delivery_ungate(struct delivery *, const char *queue_id);
/* Every deferred message whose route goes through hop (NULL: every
 * deferred message) becomes due now, e.g. when a hop works again after a
 * failed period.  Its backoff schedule is not reset: if this attempt
 * defers it again, the next delay follows from its age as usual.  A few
 * messages of other hops may come along (due_queue.h).  Loop thread. */
void delivery_wake(struct delivery *, const char *hop);
/* Fleet commands (issue 5, node/command.c): true while the message is
 * in a delivery attempt or a handoff of it waits for its peer's answer
 * (shadow_handoff_busy), when hold, release and delete must wait.  Loop
 * thread. */
bool delivery_busy(struct delivery *, const char *queue_id);
/* Fleet hop budgets (issue 5, node/command.c): this node's share of a
 * hop's fleet-wide max_conn / rate (0: the policy's).  Replaces the whole
 * set; applied to the hop's pools now and to pools made later.  Loop
 * thread. */
#define DELIVERY_SHARES_MAX 64
struct delivery_share {
	char hop[64];
	uint32_t max_conn;
	uint32_t rate; /* per minute */
};
void delivery_set_shares(
    struct delivery *, const struct delivery_share *, size_t n);
/* Fleet-wide hop pauses (issue 10, node/command.c): the controller's
 * complete list; each hop goes behind the others for for_ms from now.
 * Replaces the whole set.  Loop thread. */
#define DELIVERY_PAUSES_MAX 64
struct delivery_pause {
	char hop[64];
	char node[64];
	uint32_t for_ms;
	uint32_t window_s;
};
void delivery_set_pauses(
    struct delivery *, const struct delivery_pause *, size_t n);

#endif
