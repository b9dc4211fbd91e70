/* node.h - the one context of sluice-node.  Owned by the event-loop thread:
 * everything here is read and written on that thread only, except the
 * fields marked (atomic) which the uplink thread reads for heartbeats. */
#ifndef SLUICE_NODE_H
#define SLUICE_NODE_H

#include <pthread.h>
#include <stdatomic.h>
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
struct command;
struct signer;
struct shadow;

/* Counters since start, reported in every heartbeat (QueueMetrics). */
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
};

struct node {
	struct event_base *base;
	const struct config *conf;
	const char *name;
	const char *hostname; /* EHLO/greeting name */
	const char *spool_dir;
	/* Current policy; never NULL after start (an empty policy relays
	 * nothing).  Replaced only by node_policy_swap() on the loop
	 * thread; holders that need it across callbacks take a reference. */
	struct policy *policy;
	struct spool *spool;
	struct journal *journal;
	struct uplink *uplink;
	struct smtp_server *smtp;
	struct delivery *delivery;
	struct command *command; /* fleet commands, drain (command.h) */
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
	/* What the uplink reports: the running policy version and whether
	 * it came from the on-disk cache rather than the controller. */
	atomic_uint_fast64_t running_version;
	atomic_bool policy_from_cache;
	/* The running version's content hash ("" unknown): with the number,
	 * its identity (docs/control-plane.md).  Under hash_mu. */
	pthread_mutex_t hash_mu;
	char running_hash[65];
};

/* Installs a new policy (takes the caller's reference).  Loop thread. */
void node_policy_swap(struct node *, struct policy *);
/* Copies the running version's content hash into out (65 bytes). */
void node_running_hash(struct node *, char *out);

#endif
