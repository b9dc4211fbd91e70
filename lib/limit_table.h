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
	LIMIT_COUNT
};

struct limit_def {
	const char *key;
	int64_t def;
	int64_t min;
	int64_t max;
	const char *help;
};

extern const struct limit_def limit_table[];
extern const size_t limit_count;

const struct limit_def *limit_find(const char *key);
/* The policy's value for key, or the table default. Aborts on unknown key:
 * callers name keys from the table. */
int64_t limit_get(const Sluice__Policy *, const char *key);
/* The same by enum: no unknown key is possible. */
int64_t limit_value(const Sluice__Policy *, enum limit_key);

#endif
