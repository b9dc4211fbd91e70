/* uplink.h - the node's link to the controller(s): Hello, heartbeats with
 * metrics, policy pull on version change, policy cache, event reports.
 * Runs on its own thread with blocking nng calls; everything it hands the
 * loop (a new policy, a fatal refusal) is posted, never called directly. */
#ifndef SLUICE_UPLINK_H
#define SLUICE_UPLINK_H

#include <stddef.h>

struct config;
struct node;
struct uplink;
struct policy;

/* Config keys the uplink reads (node.c accepts them). */
extern const char *const uplink_config_keys[];

/* Loads <spool>/policy.cache if present and valid: the policy to start
 * with when no controller answers.  NULL when there is none. */
struct policy *uplink_load_cache(const char *spool_dir);
/* Starts the thread.  NULL with err on bad configuration. */
struct uplink *uplink_start(struct node *, char *err, size_t errlen);
/* --check-config: the controller endpoints as uplink_start() would refuse
 * them (plain tcp:// off loopback, TLS files), without a socket. */
int uplink_check_config(const struct config *, char *err, size_t errlen);
/* Stops and joins the thread. */
void uplink_stop(struct uplink *);
/* Non-zero when the controller refused this node: node.c exits with it. */
int uplink_refused(const struct uplink *);

#endif
