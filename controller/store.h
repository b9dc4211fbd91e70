/* store.h - the controller's PostgreSQL store.  Every SQL statement of the
 * controller lives in store*.c, one function per query; libpq is included
 * by no other file.  One struct store per thread: a connection is never
 * shared.
 *
 * Errors: functions return STORE_OK or a negative enum store_rc.  libpq
 * messages are logged here, once; callers map the rc to a reply code.  When
 * PostgreSQL goes away the failing call returns STORE_UNAVAILABLE and the
 * next call reconnects (with backoff), so the controller never restarts. */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum store_rc {
	STORE_OK = 0,
	STORE_NOT_FOUND = -1,   /* no such row */
	STORE_EXISTS = -2,      /* unique key taken */
	STORE_UNAVAILABLE = -3, /* PostgreSQL unreachable, retry later */
	STORE_INVALID = -4,     /* PostgreSQL refused the data (encoding...) */
	STORE_ERROR = -5,       /* anything else: a bug or a broken schema */
};

struct store;

/* Error code for replies: "not_found", "exists", "unavailable", ... */
const char *store_rc_code(int rc);

/* No connection is made yet; the first call connects.  NULL on ENOMEM. */
struct store *store_new(const char *conninfo, const char *name);
/* How long PostgreSQL lets this store's session sit idle inside a
 * transaction before ending it (idle_in_transaction_session_timeout),
 * from the next connection on.  Default STORE_IDLE_TX_MS: a controller
 * stopped between two statements of a transaction (SIGSTOP, a hung host)
 * must not hold its row and advisory locks - and so the other
 * controllers' work - for longer than that.  0: PostgreSQL's setting. */
#define STORE_IDLE_TX_MS 10000
void store_set_idle_tx_timeout(struct store *, int ms);
/* A lost connection is retried with a backoff doubling up to this (ms),
 * by each thread's store on its own next use: after an outage, a store
 * in use is back at most this long after the server (plus its next use). */
#define STORE_BACKOFF_MAX_MS 2000
/* How many times this store connected again after losing PostgreSQL (a
 * caller that compares it between two uses knows it was away between). */
uint64_t store_reconnects(const struct store *);
void store_free(struct store *);
/* Connects (or reconnects, at most once per backoff step): STORE_OK or
 * STORE_UNAVAILABLE.  Every other call does this first. */
int store_connect(struct store *);

/* Applies every embedded migration the database lacks, in one transaction
 * under an advisory lock: safe with several controllers starting at once. */
int store_migrate(struct store *);

/* Transactions for multi-statement operations (policy apply). */
int store_begin(struct store *);
int store_commit(struct store *);
void store_rollback(struct store *);

/* -------------------------------------------------------------- nodes */

struct store_node_auth {
	uint64_t id;
	char digest[65]; /* sha256 hex of the token */
	bool is_lost;    /* declared lost (issue 13): refused */
};

struct store_node_row {
	uint64_t id;
	const char *name;
	const char *address;
	const char *software_version;
	uint64_t policy_version;
	int64_t last_heartbeat_at; /* unix s, 0: never */
	int64_t heartbeat_age_ms;  /* by the database clock, -1 */
	int64_t created_at;
	bool is_draining;
	bool policy_from_cache;
	const uint8_t *metrics; /* packed QueueMetrics or NULL */
	size_t metrics_len;
	/* From node_minutes: the previous and the current minute. */
	uint64_t accepted_per_min;
	uint64_t delivered_per_min;
	uint64_t auth_failures_per_min; /* the worst of the two minutes */
	int64_t heartbeat_ms;           /* the node's interval, 0: unknown */
	const char *policy_mismatch;    /* "" or why the node's policy is not
	                                   this database's (api_node.c) */
	int64_t lost_at;                /* unix s, 0: not declared lost */
	const char *shadow_address;     /* "" none (issue 13) */
};

/* Row pointers are valid during the callback only; non-zero stops. */
typedef int (*store_node_cb)(void *arg, const struct store_node_row *);

int store_node_auth(struct store *, const char *name, struct store_node_auth *);
int store_node_hello(
    struct store *, uint64_t id, const char *version, const char *address);
/* Sets (why "") or clears the node's policy mismatch; *changed says
 * whether this call changed it. */
int store_node_policy_mismatch(
    struct store *, uint64_t id, const char *why, bool *changed);
/* Records a heartbeat; returns the drain flag and its command id, and
 * the metrics of the heartbeat before (*prev malloc'd or NULL). */
int store_node_heartbeat(struct store *, uint64_t id, uint64_t policy_version,
    bool from_cache, uint32_t heartbeat_ms, const uint8_t *metrics,
    size_t metrics_len, bool *is_draining, bool *handoff, uint64_t *drain_seq,
    uint8_t **prev, size_t *prevlen);
int store_node_add(struct store *, const char *name, const char *digest);
int store_node_remove(struct store *, const char *name);
/* Drain (with handoff: the queue goes to peers) or resume (on false). */
int store_node_set_draining(
    struct store *, const char *name, bool on, bool handoff);
/* The live nodes other than self that are not draining: where a
 * draining node hands its queue.  Their name, SMTP "host:port" and
 * shadow channel address ("" none). */
typedef int (*store_peer_cb)(void *arg, const char *name, const char *address,
    const char *shadow_address);
int store_node_peers(struct store *, uint64_t self, int64_t silent_after_ms,
    store_peer_cb, void *arg);
int store_node_list(struct store *, store_node_cb, void *arg);
/* silent_after_ms 0 in the queries below: three of each node's own
 * heartbeat intervals (health_silent_after()). */
/* Nodes heard from within silent_after_ms: id and latest packed metrics
 * (valid during the callback only; NULL when none). */
typedef int (*store_live_cb)(
    void *arg, uint64_t id, const uint8_t *metrics, size_t len);
int store_node_live(
    struct store *, int64_t silent_after_ms, store_live_cb, void *arg);
/* The same with each node's name and the age of its metrics (ms since
 * its last heartbeat, by the database's clock), for fleet-wide pauses. */
typedef int (*store_aged_cb)(void *arg, const char *name, int64_t age_ms,
    const uint8_t *metrics, size_t len);
int store_node_live_aged(
    struct store *, int64_t silent_after_ms, store_aged_cb, void *arg);

/* --------------------------------------------------------- dkim check */

/* The DKIM DNS check (issue 14, dkim_watch.c): a key's record name, its
 * status ("ok", "mismatch", "missing") and why, in check run `run`; keep
 * marks a row as still wanted without changing it (a DNS error); prune
 * drops the rows of other runs (keys no longer in the policy). */
int store_dkim_dns_set(struct store *, const char *name, const char *status,
    const char *detail, int64_t run);
int store_dkim_dns_keep(struct store *, const char *name, int64_t run);
int store_dkim_dns_prune(struct store *, int64_t run);
typedef int (*store_dkim_dns_cb)(
    void *arg, const char *name, const char *status, const char *detail);
int store_dkim_dns_list(struct store *, store_dkim_dns_cb, void *arg);

/* ------------------------------------- shadow redundancy (store_shadow.c) */

/* Records where the node accepts shadow copies ("" none). */
int store_shadow_address(struct store *, uint64_t id, const char *address);
/* The shadow peer of node self: the next live, not draining, not lost
 * node with a shadow address, in name order around the ring (so every
 * node holds the copies of exactly one other).  name/address "" when
 * there is none. */
int store_shadow_peer(struct store *, uint64_t self, int64_t silent_after_ms,
    char *name, size_t namelen, char *address, size_t addrlen);
/* Names of the nodes declared lost, for their copies' holders. */
typedef int (*store_name_cb)(void *arg, const char *name);
int store_shadow_lost(struct store *, store_name_cb, void *arg);
/* Declares name lost (idempotent; *added false when it already was).
 * STORE_NOT_FOUND when must_exist and no such node. */
int store_node_lost(struct store *, const char *name, const char *reason,
    bool must_exist, bool *added);

/* ------------------------------------------------------------ quotas */

/* One node's count for a user in one window of one quota dimension
 * (store_quota.c, issue 15). */
struct store_quota_row {
	uint64_t node_id;
	const char *user;
	const char *dim; /* hour_msgs hour_rcpts day_msgs day_rcpts */
	int64_t window_start;
	uint64_t used;    /* accepted */
	uint64_t granted; /* the allowance last handed to the node */
	uint64_t refused;
};

/* Row pointers are valid during the callback only; non-zero stops. */
typedef int (*store_quota_cb)(void *arg, const struct store_quota_row *);
/* Every row of windows starting at or after since. */
int store_quota_rows(struct store *, int64_t since, store_quota_cb, void *);
/* Upserts a node's row; its count never goes down within a window. */
int store_quota_put(struct store *, const struct store_quota_row *);
/* Removes the rows of windows that started before before. */
int store_quota_expire(struct store *, int64_t before);

/* ------------------------------------------------------------- policy */

/* Head version (0: none yet); for_update locks the head row until the
 * transaction ends. */
int store_policy_head(struct store *, bool for_update, uint64_t *version);
/* Content hash (hex SHA-256 of the stored snapshot) of one version, into
 * hash[STORE_HASH_LEN]; STORE_NOT_FOUND when this database has no such
 * version.  Version 0 (no policy) has the hash "". */
#define STORE_HASH_LEN 65
int store_policy_hash(struct store *, uint64_t version, char *hash);
/* Packed snapshot of one version into a malloc'd *buf (caller frees). */
int store_policy_snapshot(
    struct store *, uint64_t version, uint8_t **buf, size_t *len);
/* Inserts a version and moves the head to it (inside a transaction). */
int store_policy_insert(struct store *, uint64_t version, const char *identity,
    const char *summary, const uint8_t *snap, size_t len);

typedef int (*store_version_cb)(void *arg, uint64_t version, int64_t created_at,
    const char *identity, const char *summary);
/* Every version, newest first. */
int store_policy_history(struct store *, store_version_cb, void *arg);

/* ------------------------------------------------------------- events */

struct store_event_query {
	const char *sender;    /* substring, "" any */
	const char *recipient; /* substring of recipient(s), "" any */
	const char *kind;      /* exact, "" any */
	const char *node;      /* exact node name, "" any */
	int64_t since_s;       /* only events newer than now - since_s, 0 any */
	uint32_t limit;        /* the newest `limit` events */
};

/* Event fields point into the result: valid during the callback only.
 * The callback returns 0 for more, 1 to stop, -1 on error. */
typedef int (*store_event_cb)(
    void *arg, const char *node, const Sluice__Event *);

/* Inserts a batch in one transaction; replays are ignored (node, seq).
 * Text that is not UTF-8 is stored escaped (\xHH) with the raw event in
 * column raw.  An event PostgreSQL refuses is moved to events_quarantine
 * with the reason and counted in *quarantined (logged): the batch is
 * stored all the same.  Fails only when PostgreSQL is unreachable or
 * broken (the node resends). */
int store_event_insert(struct store *, uint64_t node_id, const char *node_name,
    Sluice__Event *const *events, size_t n, size_t *quarantined);
/* The highest sequence stored for the node (quarantined events count as
 * stored), 0 when none. */
int store_event_max_seq(struct store *, uint64_t node_id, uint64_t *seq);
/* Nodes with events quarantined in the last `seconds`, and how many. */
typedef int (*store_quarantine_cb)(void *arg, const char *node, uint64_t count);
int store_event_quarantined(
    struct store *, int64_t seconds, store_quarantine_cb, void *arg);
/* Every event of the messages with this queue id or Message-ID (with or
 * without <>), oldest first, at most limit. */
int store_event_trace(
    struct store *, const char *id, uint32_t limit, store_event_cb, void *arg);
/* The newest q->limit events matching q, returned oldest first. */
int store_event_log(struct store *, const struct store_event_query *q,
    store_event_cb, void *arg);
/* Day partitions of events: makes today's and the next two, and with
 * retention_days > 0 drops older ones (*dropped: how many). */
int store_event_partitions(
    struct store *, int64_t retention_days, int *dropped);

/* ----------------------------------------------- provider events */

struct hook_batch;
struct store_hook_counts {
	uint64_t stored;    /* new, joined to a message */
	uint64_t unknown;   /* new, message not known (kept) */
	uint64_t duplicate; /* seen before: nothing stored */
};
/* Stores a webhook request's events in one transaction (store_hook.c):
 * sets each event's is_new / is_known. */
int store_hook_insert(struct store *, const char *provider, const char *hook,
    struct hook_batch *, struct store_hook_counts *);
/* Records a Mailgun token; *is_new false: it was used before (replay). */
int store_hook_token(struct store *, const char *provider, const char *hook,
    const char *token, bool *is_new);
/* One re-join pass over at most batch unknown provider events received
 * in the last max_age_s (store_hook.c): *checked looked at, *joined
 * found their message (now in its trace). */
int store_hook_rejoin(struct store *, int64_t max_age_s, int batch,
    uint64_t *checked, uint64_t *joined);
/* Provider events whose message sluice does not know. */
int store_hook_unknown_count(struct store *, uint64_t *n);

/* ------------------------------------------------- metrics history */

/* Increments of one heartbeat and the gauges after it. */
struct store_minute {
	uint64_t connections, accepted, refused, delivered;
	uint64_t deferred_attempts, bounced, auth_failures;
	uint64_t messages, oldest_age_s;
};

/* Adds the increments to the node's row of the current minute. */
int store_metrics_minute(
    struct store *, uint64_t node_id, const struct store_minute *);
/* Deletes history older than minutes. */
int store_metrics_expire(struct store *, int64_t minutes);

/* ------------------------------------------------------------- alerts */

struct store_alert_row {
	uint64_t id;
	const char *kind, *subject, *message;
	int64_t raised_at, cleared_at; /* unix s, cleared 0: open */
};
typedef int (*store_alert_cb)(void *arg, const struct store_alert_row *);

/* Raises (kind, subject) unless it is open already: *raised says whether
 * this call did it (another controller may have). */
int store_alert_raise(struct store *, const char *kind, const char *subject,
    const char *message, const char *by, bool *raised);
/* Clears one open alert; *cleared says whether it was open. */
int store_alert_clear(
    struct store *, const char *kind, const char *subject, bool *cleared);
/* Open alerts first (oldest first), then up to `recent` cleared ones,
 * newest first. */
int store_alert_list(
    struct store *, bool open_only, uint32_t recent, store_alert_cb, void *);
/* Health evaluation runs on one controller at a time: a transaction
 * holding an advisory lock.  *got false: another controller has it. */
int store_health_lock(struct store *, bool *got);

/* ----------------------------------------------------------- commands */

struct store_command_row {
	uint64_t id;
	const char *node;
	int kind;
	const char *queue_id, *state, *domain;
	uint32_t limit;
	int64_t created_at;
	bool done;
	const uint8_t *result; /* packed CommandResult or NULL */
	size_t result_len;
};
typedef int (*store_command_cb)(void *arg, const struct store_command_row *);

/* One command row for node `name`; *id is the new command id. */
int store_command_add(struct store *, const char *node, int kind,
    const char *queue_id, const char *state, const char *domain, uint32_t limit,
    uint64_t *id);
/* Names of the nodes heard from within silent_after_ms (cb gets a row
 * with only node set). */
int store_command_live_nodes(
    struct store *, int64_t silent_after_ms, store_command_cb, void *);
/* Undone commands of a node, oldest first, at most max. */
int store_command_pending(
    struct store *, uint64_t node_id, uint32_t max, store_command_cb, void *);
/* Stores a node's result for one of its commands (ignored when the id is
 * not the node's or already done). */
int store_command_done(struct store *, uint64_t node_id, uint64_t id,
    const uint8_t *result, size_t len);
int store_command_get(struct store *, uint64_t id, store_command_cb, void *);
/* Commands not answered within seconds are done with a failure. */
int store_command_expire(struct store *, int64_t seconds);

/* ------------------------------------- outbound event webhooks (outbox) */

/* Sets one endpoint's filters (kinds and sender domains, each an array of
 * n NUL-terminated strings stride bytes apart; n 0: all).  The events
 * stored from now on that pass them are enqueued (migration 008). */
int store_outbox_endpoint(struct store *, const char *name, const char *kinds,
    size_t kind_stride, size_t n_kinds, const char *senders,
    size_t sender_stride, size_t n_senders);
/* One claimed row: e NULL (and node NULL) when its event is gone
 * (retention); pointers valid during the callback only. */
typedef void (*store_outbox_cb)(void *arg, uint64_t outbox_id, uint64_t node_id,
    const char *node, const Sluice__Event *e);
/* Claims up to batch of the endpoint's oldest rows (FOR UPDATE SKIP
 * LOCKED) and hands them to cb; *failures: the endpoint's consecutive
 * failures so far.  With *n > 0 the transaction stays open until
 * store_outbox_sent() or store_outbox_failed().  STORE_NOT_FOUND: the
 * endpoint is backing off (or unknown); nothing is open. */
int store_outbox_claim(struct store *, const char *endpoint, int batch,
    int *failures, store_outbox_cb cb, void *arg, size_t *n);
/* The claimed rows were delivered (events: how many events they carried):
 * deleted, counted, the endpoint healthy again; commits. */
int store_outbox_sent(struct store *, const char *endpoint, const uint64_t *ids,
    size_t n, size_t events);
/* The POST failed: rows kept (attempts + 1), the endpoint retries after
 * retry_ms; commits. */
int store_outbox_failed(struct store *, const char *endpoint,
    const uint64_t *ids, size_t n, const char *error, int64_t retry_ms);
struct store_outbox_stats {
	const char *name;
	uint64_t sent, failed, queued;
	int64_t oldest_age_s;  /* of the oldest queued row, 0: none */
	int64_t failing_for_s; /* -1: healthy */
	const char *last_error;
};
typedef int (*store_outbox_stats_cb)(
    void *arg, const struct store_outbox_stats *);
/* Every endpoint's counters (fleet-wide, from the database). */
int store_outbox_stats(struct store *, store_outbox_stats_cb cb, void *arg);

#endif
