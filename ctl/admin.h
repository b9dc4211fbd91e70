/* admin.h - the admin endpoint as sluicectl sees it: one call, one reply.
 * Transport failures and AdminReply.error end the process with one line on
 * stderr, except the codes a caller asks to handle itself. */
#ifndef SLUICECTL_ADMIN_H
#define SLUICECTL_ADMIN_H

#include "proto.h"
#include "sluicectl.h"

/* Sends req and returns the reply (free with
 * sluice__admin_reply__free_unpacked(r, NULL)).  An error reply whose code
 * is in `handled` (a NULL-terminated list, may be NULL) is returned to the
 * caller; any other error exits 1 with "sluicectl: <message>". */
Sluice__AdminReply *admin_call(
    struct ctl *, Sluice__AdminRequest *req, const char *const *handled);

/* The policy at version (0: latest), secrets redacted.  Caller owns it:
 * sluice__policy__free_unpacked(p, NULL). */
Sluice__Policy *admin_policy_get(struct ctl *, uint64_t version);

enum admin_apply_result {
	ADMIN_APPLIED,  /* *version, *changed set */
	ADMIN_CONFLICT, /* the head moved on: read again and retry */
	ADMIN_INVALID,  /* the controller refused it: why in invalid */
};

/* Applies p, computed from base_version, with ctl->summary and the login
 * name as history entry.  Other errors exit 1. */
enum admin_apply_result admin_policy_apply(struct ctl *, Sluice__Policy *p,
    uint64_t base_version, uint64_t *version, bool *changed, char *invalid,
    size_t invlen);

/* Shared JSON shapes (cmd_node.c): a node as in `node list --json`, its
 * QueueMetrics as "metrics". */
struct json;
void json_node(struct json *, const Sluice__NodeStatus *, uint64_t latest);
void json_metrics(struct json *, const Sluice__QueueMetrics *);
/* An alert (cmd_status.c): cleared_at null while open. */
void json_alert(struct json *, const Sluice__Alert *);
/* The fleet: `node list` (cmd_node.c).  Free the reply. */
Sluice__AdminReply *admin_node_list(struct ctl *);

#endif
