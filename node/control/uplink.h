/* uplink.h - the node's link to the controller(s): transport only.
 *
 * One thread with blocking nng calls.  It reads no node state: the loop
 * (control/control.c) hands it a heartbeat report each period with
 * uplink_send(); the thread sends Hello until it succeeds, then the
 * heartbeat, fetches, checks and caches the policy when the controller's
 * version differs from the one the report says runs, and reports the
 * journal's events, rewinding the journal when the controller lost some
 * (the journal is the one queue shared by design, journal.h).  Everything it receives goes back to the loop through the
 * mailbox (mailbox.h), never by a direct call. */
#ifndef SLUICE_UPLINK_H
#define SLUICE_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct config;
struct journal;
struct mailbox;
struct policy;
struct uplink;

/* Config keys the uplink reads (node.c accepts them). */
extern const char *const uplink_config_keys[];

/* What the loop hands over each heartbeat. */
struct uplink_report {
	uint64_t seq; /* the loop's numbering; given back with the reply */
	uint8_t *hb;  /* packed Sluice__HeartbeatRequest without auth */
	size_t len;
	uint64_t running_version; /* what hb says, for the fetch decision */
	char running_hash[65];
	bool from_cache;
};

/* Called on the loop thread (through the mailbox).  Each takes what it
 * is given. */
struct uplink_hooks {
	/* A heartbeat answered: the reply to report seq. */
	void (*on_reply)(void *arg, uint64_t seq, Sluice__HeartbeatReply *);
	/* A new valid policy from the controller (one reference). */
	void (*on_policy)(void *arg, struct policy *);
	/* The controller refused this node; the thread has stopped. */
	void (*on_refused)(void *arg, const char *why);
	void *arg;
};

struct uplink_conf {
	const struct config *conf; /* controller endpoints, TLS, token */
	const char *name;
	const char *hostname;       /* address shown when none is set */
	const char *spool_dir;      /* policy.cache */
	const char *shadow_address; /* "" none */
	int heartbeat_ms;
	struct journal *journal; /* NULL: no events to report */
	struct mailbox *mailbox;
	struct uplink_hooks hooks;
};

/* Loads <spool>/policy.cache if present and valid: the policy to start
 * with when no controller answers.  NULL when there is none. */
struct policy *uplink_load_cache(const char *spool_dir);
/* Starts the thread (the strings are copied).  NULL with err on bad
 * configuration. */
struct uplink *uplink_start(
    const struct uplink_conf *, char *err, size_t errlen);
/* --check-config: the controller endpoints as uplink_start() would refuse
 * them (plain tcp:// off loopback, TLS files), without a socket. */
int uplink_check_config(const struct config *, char *err, size_t errlen);
/* Loop thread: takes r (malloc'd, r->hb too).  A report not yet taken by
 * the thread is replaced: a slow controller delays one heartbeat, not
 * every later one. */
void uplink_send(struct uplink *, struct uplink_report *r);
void uplink_report_free(struct uplink_report *);
/* Stops and joins the thread.  What it posted may still be queued in the
 * mailbox (it carries no pointer to the uplink). */
void uplink_stop(struct uplink *);
/* Non-zero when the controller refused this node: node.c exits with it. */
int uplink_refused(const struct uplink *);

#endif
