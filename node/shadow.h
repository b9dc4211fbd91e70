/* shadow.h - shadow redundancy (issue 13, docs/redundancy.md).
 *
 * As a primary, the node sends every message accepted under
 * redundancy = peer to the shadow peer the controller names, and the
 * session answers 250 only once the peer's copy is durable too; when the
 * message leaves the queue (delivered, bounced, deleted) the peer is told
 * to drop its copy (batched releases).  As a holder, the node keeps its
 * peers' copies in a separate shadow spool (<spool>/shadow) and, when the
 * controller declares a peer lost, promotes that peer's copies into its
 * own queue.
 *
 * Node config keys (all optional; without shadow_listen the node holds
 * no copies for others, but can still send its own):
 *   shadow_listen = 127.0.0.1:2600     the node-to-node listener
 *   shadow_address = 10.0.0.5:2600     what peers dial (default: listen)
 *   shadow_peer = 10.0.0.6:2600        a fixed peer while the controller
 *                                      names none (benchmarks)
 *   shadow_ca, shadow_cert, shadow_key the fleet CA and this node's
 *     certificate; default controller_ca and controller_cert_key (or
 *     controller_cert + controller_key).  Without them the channel is
 *     plain TCP, refused off loopback unless insecure = yes.
 * Loop thread only, except where a function says otherwise. */
#ifndef SLUICE_SHADOW_H
#define SLUICE_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct config;
struct node;
struct policy;
struct shadow;

extern const char *const shadow_config_keys[];

/* Opens the shadow spool, binds the listener, builds the TLS contexts.
 * NULL with err on bad configuration. */
struct shadow *shadow_open(struct node *, char *err, size_t errlen);
void shadow_close(struct shadow *);
/* --check-config: the keys above, the TLS files load, nothing bound. */
int shadow_check_config(const struct config *, char *err, size_t errlen);

/* Whether a message accepted on a listener of role (enum smtp_role
 * value) needs a peer copy under policy p.  Pure. */
bool shadow_wanted(const struct policy *, int role);

/* The outcome of a copy, given to the session exactly once and never
 * from inside shadow_copy(). */
typedef void (*shadow_done_cb)(
    void *arg, uint64_t cookie, const char *queue_id, bool ok, const char *why);
/* Sends the queued message queue_id to the shadow peer; cb says when the
 * peer has it durably (ok) or not within timeout_ms.  -1 with why when no
 * copy can be made now (no peer, peer unreachable, message too large):
 * the caller applies the no_peer mode at once.  Until cb, the delivery
 * engine leaves the message alone (shadow_gated). */
int shadow_copy(struct shadow *, const char *queue_id, int timeout_ms,
    shadow_done_cb, void *arg, uint64_t cookie, char *why, size_t whylen);
/* The same, sent while the message's own commit is still running (its
 * data still in the session's memory, spool_msg_peek): the 250 waits for
 * both.  If the commit fails, the session calls shadow_on_removed(). */
struct spool_envelope;
int shadow_copy_data(struct shadow *, const char *queue_id,
    const struct spool_envelope *, const uint8_t *data, size_t len,
    int timeout_ms, shadow_done_cb, void *arg, uint64_t cookie, char *why,
    size_t whylen);
/* True while a copy of queue_id is on its way: not due yet. */
bool shadow_gated(struct shadow *, const char *queue_id);
/* The message left this node's queue: its shadow is released (batched).
 * Called from the delivery engine's spool watch. */
void shadow_on_removed(struct shadow *, const char *queue_id);
/* A message was accepted without a peer copy (no_peer = accept): counted
 * and reported to the controller (alert shadow_degraded). */
void shadow_note_unprotected(struct shadow *, const char *why);
void shadow_note_refused(struct shadow *, const char *why);

/* drain --handoff (docs/operations.md): whether this node may dial a
 * peer's shadow channel at addr (TLS configured, or loopback, or
 * insecure = yes). */
bool shadow_can_dial(const struct shadow *, const char *addr);
/* The outcome of a handoff, exactly once and never from inside
 * shadow_handoff(): ok with the message's queue id at the peer, or why
 * not (the peer may still have it when it answered late: at worst a
 * duplicate, docs/operations.md). */
typedef void (*shadow_handoff_cb)(
    void *arg, uint64_t cookie, bool ok, const char *peer_qid, const char *why);
/* Hands the queued message queue_id, with recipients rcpts (its pending
 * ones), to the node whose shadow channel is at addr: the peer queues it
 * as its own with the whole envelope (AUTH user, client, listener, DKIM
 * signature, received time) and acks once that is durable.  The caller
 * removes it here only after an ok.  -1 with why when it cannot be sent
 * now (peer unreachable, message too large). */
int shadow_handoff(struct shadow *, const char *addr, const char *queue_id,
    const char *const *rcpts, size_t nrcpts, int timeout_ms, shadow_handoff_cb,
    void *arg, uint64_t cookie, char *why, size_t whylen);

/* True while a handoff of queue_id waits for its peer's answer. */
bool shadow_handoff_busy(struct shadow *, const char *queue_id);

/* The shadow listener's address for Hello/Heartbeat ("" none; constant
 * after open: the uplink thread gets a copy at start). */
const char *shadow_address(const struct shadow *);
/* A heartbeat reply (control.c, loop thread): the peer to copy to (""
 * none) and its address, and the lost nodes whose shadows to promote;
 * applied at once. */
void shadow_post(struct shadow *, const char *peer, const char *peer_address,
    char *const *promote, size_t npromote);
/* Counters and gauges for the heartbeat; degraded gets "" or why the
 * last messages went unprotected.  Loop thread. */
void shadow_metrics(
    struct shadow *, Sluice__QueueMetrics *, char *degraded, size_t len);

#endif
