/* limit_table.c - defaults in the spirit of Postfix (message_size_limit,
 * smtpd_recipient_limit, maximal_queue_lifetime, backoff times). */
#include "limit_table.h"

#include <string.h>

#include "log.h"

const struct limit_def limit_table[] = {
    {"max_message_size", 10240000, 1024, INT64_C(1) << 40,
        "largest message accepted, bytes (SIZE; Postfix default)"},
    {"max_recipients", 100, 1, 100000, "recipients per message"},
    {"max_connections_per_ip", 20, 1, 100000,
        "concurrent connections per client IP"},
    {"max_connections", 1000, 1, 1000000,
        "concurrent SMTP connections per node"},
    {"messages_per_minute_per_ip", 0, 0, 10000000,
        "messages per minute per client IP, 0: unlimited"},
    {"messages_per_minute_per_user", 0, 0, 10000000,
        "messages per minute per AUTH user, 0: unlimited"},
    {"auth_failures_before_block", 5, 1, 1000,
        "AUTH failures from one IP before it is blocked"},
    {"auth_block_seconds", 300, 1, 86400,
        "how long an IP stays blocked after AUTH failures"},
    {"idle_timeout_seconds", 300, 5, 3600,
        "SMTP session idle timeout (RFC 5321 4.5.3.2: 5 minutes)"},
    {"session_timeout_seconds", 1800, 10, 86400, "total SMTP session time"},
    {"retry_min_seconds", 300, 1, 86400,
        "first retry delay (Postfix minimal_backoff_time)"},
    {"retry_max_seconds", 4000, 1, 86400,
        "longest retry delay (Postfix maximal_backoff_time)"},
    {"max_received_headers", 50, 1, 1000,
        "Received: fields a message may carry before it is refused as a "
        "mail loop (Postfix hopcount_limit)"},
    {"max_queue_lifetime_seconds", 432000, 60, 8640000,
        "bounce after this long in the queue (5 days)"},
    {"delay_warning_seconds", 0, 0, 8640000,
        "send a delay DSN after this long, 0: never"},
    /* Fleet alerts, evaluated by the controller (controller/health.c). */
    {"alert_queue_backlog_messages", 10000, 0, 1000000000,
        "alert when a node queues more messages, 0: never"},
    {"alert_oldest_message_seconds", 3600, 0, 8640000,
        "alert when a node's oldest message is older, 0: never"},
    {"alert_auth_failures_per_minute", 50, 0, 10000000,
        "alert when a node sees more AUTH failures a minute, 0: never"},
};
const size_t limit_count = sizeof(limit_table) / sizeof(limit_table[0]);

const struct limit_def *
limit_find(const char *key)
{
	size_t i;

	for (i = 0; i < limit_count; i++)
		if (strcmp(limit_table[i].key, key) == 0)
			return &limit_table[i];
	return NULL;
}

int64_t
limit_get(const Sluice__Policy *p, const char *key)
{
	const struct limit_def *d;
	size_t i;

	if ((d = limit_find(key)) == NULL)
		fatalx("limit_get: unknown key %s", key);
	if (p != NULL)
		for (i = 0; i < p->n_limits; i++)
			if (strcmp(p->limits[i]->key, key) == 0)
				return p->limits[i]->value;
	return d->def;
}
