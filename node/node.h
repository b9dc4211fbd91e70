/* node.h - the one context of sluice-node.  Owned by the event-loop thread:
 * everything here is read and written on that thread only.  Other threads
 * (the uplink, the spool's flush worker, the AUTH worker) reach the loop
 * through the mailbox (mailbox.h) or their module's own documented queue
 * (the spool's job lists, the journal).  The node_stats counters are
 * still declared atomic, but only the loop thread touches them now. */
#ifndef SLUICE_NODE_H
#define SLUICE_NODE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct config;
struct policy;
struct spool;
struct journal;
struct uplink;
struct smtp_server;
struct authwatch;
struct delivery;
struct control;
struct mailbox;
struct signer;
struct shadow;

/* Counters since start, reported in every heartbeat (QueueMetrics) and
 * on /metrics, both from control_report() on the loop thread. */
#define NODE_ACCEPT_BUCKETS 13

struct node_stats {
	atomic_uint_fast64_t connections;
	atomic_uint_fast64_t accepted;
	atomic_uint_fast64_t refused;
	atomic_uint_fast64_t delivered;
	atomic_uint_fast64_t deferred_attempts;
	atomic_uint_fast64_t bounced;
	atomic_uint_fast64_t auth_failures;
	/* Queue gauges, kept current by the spool. */
	atomic_uint_fast64_t queue_messages;
	atomic_uint_fast64_t queue_bytes;
	atomic_uint_fast64_t queue_active;
	atomic_uint_fast64_t queue_deferred;
	atomic_uint_fast64_t queue_held;
	atomic_int_fast64_t queue_oldest_at; /* unix s, 0: empty */
	atomic_uint_fast64_t quota_refused;  /* MAIL/RCPT over a quota */
	/* Final "." read -> 250 queued on the socket, a histogram with the
	 * bounds of node_accept_bound_us() (the last bucket: above them). */
	atomic_uint_fast64_t accept_buckets[NODE_ACCEPT_BUCKETS];
	atomic_uint_fast64_t accept_us;
};

/* Upper bound of accept-latency bucket i < NODE_ACCEPT_BUCKETS - 1. */
static inline uint64_t
node_accept_bound_us(size_t i)
{
	static const uint64_t b[NODE_ACCEPT_BUCKETS - 1] = {250, 500, 1000,
	    2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 2500000};

	return b[i];
}

static inline void
node_accept_observe(struct node_stats *st, uint64_t us)
{
	size_t i = 0;

	while (i < NODE_ACCEPT_BUCKETS - 1 && us > node_accept_bound_us(i))
		i++;
	atomic_fetch_add(&st->accept_buckets[i], 1);
	atomic_fetch_add(&st->accept_us, us);
}

struct node {
	struct event_base *base;
	const struct config *conf;
	const char *name;
	const char *hostname; /* EHLO/greeting name */
	const char *spool_dir;
	/* Current policy; never NULL after start (an empty policy relays
	 * nothing).  Replaced only by control_install() on the loop
	 * thread; holders that need it across callbacks take a reference. */
	struct policy *policy;
	struct spool *spool;
	struct journal *journal;
	struct smtp_server *smtp;
	struct delivery *delivery;
	struct mailbox *mailbox; /* the one way in from other threads */
	struct control *control; /* the cluster link, loop side (control.h) */
	struct shadow *shadow;   /* shadow redundancy (shadow.h) */
	/* DKIM keys of the current policy, rebuilt with it (signer.h). */
	struct signer *signer;
	struct node_stats stats;
	/* AUTH failures per IP and user, last minute (thread-safe). */
	struct authwatch *authwatch;
	/* Per-credential quotas (thread-safe; quota.h). */
	struct quota *quota;
	int heartbeat_ms;
	int64_t retention_s, retention_mb; /* of acknowledged journal events */
	int64_t sched_slice_us;            /* lib/sched_slice.c, 0: default */
};

#endif
