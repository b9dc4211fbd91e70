/* api.h - the controller's two endpoints.  api_node.c answers nodes
 * (NodeRequest), api_admin.c answers sluicectl (AdminRequest); api.c holds
 * what both need: error sentences and rate-limited warnings.  Each endpoint
 * runs on its own thread with its own struct api and store connection;
 * handlers have the rpc_handler signature (lib/rpc.h) and never crash on
 * peer input: garbage becomes an error reply with code "bad_request". */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hop_pause.h"
#include "rpc.h"
#include "store.h"

struct api {
	struct store *store;
	const char *endpoint;    /* "node" or "admin", for logs */
	int64_t silent_after_ms; /* 0: three of each node's heartbeats */
	/* false until the schema is ready: every request is answered
	 * "unavailable" at once (NULL: ready). */
	const atomic_bool *is_ready;
	int64_t warn_window_at; /* rate limit of peer warnings */
	int warn_count;
	int warn_dropped;
	/* Node endpoint: the head policy for hop budgets, by version. */
	Sluice__Policy *budget_policy;
	uint64_t budget_version;
	/* Node endpoint: fleet-wide hop pauses, folded at most once a
	 * second (api_node.c, hop_pause.c). */
	struct hop_pause_set pauses;
	int64_t pauses_at_ms; /* monotonic; 0: never */
};

/* Frees what an endpoint cached (the budget policy). */
void api_cache_free(struct api *);

/* An error reply: a code from the proto comment list and one sentence. */
struct api_error {
	char code[16];
	char msg[400];
};

/* Reply parts of the fleet handlers (api_fleet.c). */
struct api_fleet_out {
	Sluice__AlertsReply alerts;
	Sluice__CommandsReply commands;
	bool is_oom;
};
void api_fleet_out_free(struct api_fleet_out *);
/* Open alerts, then up to `recent` cleared ones, into o->alerts. */
int api_fleet_alerts_fill(struct api *, bool open_only, uint32_t recent,
    struct api_fleet_out *, struct api_error *);
int api_fleet_alerts(struct api *, const Sluice__AlertsRequest *,
    Sluice__AdminReply *, struct api_fleet_out *, struct api_error *);
int api_fleet_queue_command(struct api *, const struct rpc_peer *,
    const Sluice__QueueCommandRequest *, Sluice__AdminReply *,
    struct api_fleet_out *, struct api_error *);
int api_fleet_command_status(struct api *, const Sluice__CommandIdsRequest *,
    Sluice__AdminReply *, struct api_fleet_out *, struct api_error *);

void api_node_handle(void *arg, const uint8_t *req, size_t len,
    const struct rpc_peer *, uint8_t **out, size_t *outlen);
void api_admin_handle(void *arg, const uint8_t *req, size_t len,
    const struct rpc_peer *, uint8_t **out, size_t *outlen);

void api_error_set(struct api_error *, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The sentence for a failed store call. */
void api_error_store(struct api_error *, int rc);
/* false (with e set to "unavailable") while the store is not ready. */
bool api_ready(const struct api *, struct api_error *e);
/* At most 10 lines a second: a peer sending garbage cannot flood the log. */
void api_warn(struct api *, const struct rpc_peer *, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copy of untrusted text safe for logs and replies: printable ASCII,
 * at most 64 characters. */
const char *api_printable(const char *in, char *out, size_t len);
/* "1.2.3.4", "local uid 0" or "unknown". */
const char *api_peer(const struct rpc_peer *, char *out, size_t len);

#endif
