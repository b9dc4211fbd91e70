/* limit_table.h - the table of policy limits: keys, defaults and bounds.  One
 * table for sluicectl (help, validation), the controller (validation) and
 * the node (enforcement).  A policy stores only keys set away from their
 * default. */
#ifndef SLUICE_LIMIT_TABLE_H
#define SLUICE_LIMIT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* The keys, in table order: limit_table[LIMIT_X].key is "x".  Code that
 * enforces a limit names it by this enum, so a misspelt key does not
 * compile. */
enum limit_key {
	LIMIT_MAX_MESSAGE_SIZE,
	LIMIT_MAX_RECIPIENTS,
	LIMIT_MAX_CONNECTIONS_PER_IP,
	LIMIT_MAX_CONNECTIONS,
	LIMIT_MESSAGES_PER_MINUTE_PER_IP,
	LIMIT_MESSAGES_PER_MINUTE_PER_USER,
	LIMIT_AUTH_FAILURES_BEFORE_BLOCK,
	LIMIT_AUTH_BLOCK_SECONDS,
	LIMIT_IDLE_TIMEOUT_SECONDS,
	LIMIT_SESSION_TIMEOUT_SECONDS,
	LIMIT_RETRY_MIN_SECONDS,
	LIMIT_RETRY_MAX_SECONDS,
	LIMIT_MAX_RECEIVED_HEADERS,
	LIMIT_MAX_QUEUE_LIFETIME_SECONDS,
	LIMIT_DELAY_WARNING_SECONDS,
	LIMIT_ALERT_QUEUE_BACKLOG_MESSAGES,
	LIMIT_ALERT_OLDEST_MESSAGE_SECONDS,
	LIMIT_ALERT_AUTH_FAILURES_PER_MINUTE,
	/* Issue 13, shadow redundancy (docs/redundancy.md). */
	LIMIT_REDUNDANCY,
	LIMIT_REDUNDANCY_RELAY,
	LIMIT_REDUNDANCY_SUBMISSION,
	LIMIT_REDUNDANCY_SMTPS,
	LIMIT_REDUNDANCY_NO_PEER,
	LIMIT_REDUNDANCY_PEER_TIMEOUT_MS,
	LIMIT_REDUNDANCY_LOST_AFTER_SECONDS,
	LIMIT_COUNT
};

struct limit_def {
	const char *key;
	int64_t def;
	int64_t min;
	int64_t max;
	const char *help;
	/* A setting with named values: names[v] for v in min..max (NULL
	 * for plain numbers).  Policies store the number. */
	const char *const *names;
};

/* Redundancy settings (docs/redundancy.md). */
enum { LIMIT_REDUNDANCY_OFF = 0, LIMIT_REDUNDANCY_PEER = 1 };
enum {
	LIMIT_LISTENER_INHERIT = 0,
	LIMIT_LISTENER_OFF = 1,
	LIMIT_LISTENER_PEER = 2
};
enum { LIMIT_NO_PEER_ACCEPT = 0, LIMIT_NO_PEER_DEFER = 1 };

extern const struct limit_def limit_table[];
extern const size_t limit_count;

const struct limit_def *limit_find(const char *key);
/* The policy's value for key, or the table default. Aborts on unknown key:
 * callers name keys from the table. */
int64_t limit_get(const Sluice__Policy *, const char *key);
/* The same by enum: no unknown key is possible. */
int64_t limit_value(const Sluice__Policy *, enum limit_key);
/* A value as an operator writes it: a name of a named setting or a whole
 * number, within min..max.  0, or -1 with a one-line reason in err. */
int limit_parse(const struct limit_def *, const char *s, int64_t *v, char *err,
    size_t errlen);
/* The value as limit_parse reads it back ("peer", "300"). */
void limit_format(const struct limit_def *, int64_t v, char *buf, size_t len);

#endif
