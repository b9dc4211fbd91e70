/* limit_table.c - defaults in the spirit of Postfix (message_size_limit,
 * smtpd_recipient_limit, maximal_queue_lifetime, backoff times). */
#include "limit_table.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *const limit_names_redundancy[] = {"off", "peer", NULL};
static const char *const limit_names_listener[] = {
    "inherit", "off", "peer", NULL};
static const char *const limit_names_no_peer[] = {"accept", "defer", NULL};

const struct limit_def limit_table[] = {
    [LIMIT_MAX_MESSAGE_SIZE] = {"max_message_size", 10240000, 1024,
        INT64_C(1) << 40,
        "largest message accepted, bytes (SIZE; Postfix default)"},
    [LIMIT_MAX_RECIPIENTS] = {"max_recipients", 100, 1, 100000,
        "recipients per message"},
    [LIMIT_MAX_CONNECTIONS_PER_IP] = {"max_connections_per_ip", 20, 1, 100000,
        "concurrent connections per client IP"},
    [LIMIT_MAX_CONNECTIONS] = {"max_connections", 1000, 1, 1000000,
        "concurrent SMTP connections per node"},
    [LIMIT_MESSAGES_PER_MINUTE_PER_IP] = {"messages_per_minute_per_ip", 0, 0,
        10000000, "messages per minute per client IP, 0: unlimited"},
    [LIMIT_MESSAGES_PER_MINUTE_PER_USER] = {"messages_per_minute_per_user", 0,
        0, 10000000, "messages per minute per AUTH user, 0: unlimited"},
    [LIMIT_AUTH_FAILURES_BEFORE_BLOCK] = {"auth_failures_before_block", 5, 1,
        1000, "AUTH failures from one IP before it is blocked"},
    [LIMIT_AUTH_BLOCK_SECONDS] = {"auth_block_seconds", 300, 1, 86400,
        "how long an IP stays blocked after AUTH failures"},
    [LIMIT_IDLE_TIMEOUT_SECONDS] = {"idle_timeout_seconds", 300, 5, 3600,
        "SMTP session idle timeout (RFC 5321 4.5.3.2: 5 minutes)"},
    [LIMIT_SESSION_TIMEOUT_SECONDS] = {"session_timeout_seconds", 1800, 10,
        86400, "total SMTP session time"},
    [LIMIT_RETRY_MIN_SECONDS] = {"retry_min_seconds", 300, 1, 86400,
        "first retry delay (Postfix minimal_backoff_time)"},
    [LIMIT_RETRY_MAX_SECONDS] = {"retry_max_seconds", 4000, 1, 86400,
        "longest retry delay (Postfix maximal_backoff_time)"},
    [LIMIT_MAX_RECEIVED_HEADERS] = {"max_received_headers", 50, 1, 1000,
        "Received: fields a message may carry before it is refused as a "
        "mail loop (Postfix hopcount_limit)"},
    [LIMIT_MAX_QUEUE_LIFETIME_SECONDS] = {"max_queue_lifetime_seconds", 432000,
        60, 8640000, "bounce after this long in the queue (5 days)"},
    [LIMIT_DELAY_WARNING_SECONDS] = {"delay_warning_seconds", 0, 0, 8640000,
        "send a delay DSN after this long, 0: never"},
    /* Fleet alerts, evaluated by the controller (controller/health.c). */
    [LIMIT_ALERT_QUEUE_BACKLOG_MESSAGES] = {"alert_queue_backlog_messages",
        10000, 0, 1000000000,
        "alert when a node queues more messages, 0: never"},
    [LIMIT_ALERT_OLDEST_MESSAGE_SECONDS] = {"alert_oldest_message_seconds",
        3600, 0, 8640000,
        "alert when a node's oldest message is older, 0: never"},
    [LIMIT_ALERT_AUTH_FAILURES_PER_MINUTE] = {"alert_auth_failures_per_minute",
        50, 0, 10000000,
        "alert when a node sees more AUTH failures a minute, 0: never"},
    /* Issue 13, shadow redundancy (docs/redundancy.md). */
    [LIMIT_REDUNDANCY] = {"redundancy", LIMIT_REDUNDANCY_OFF, 0, 1,
        "off, or peer: a message is acknowledged only once a live peer "
        "holds a shadow copy",
        limit_names_redundancy},
    [LIMIT_REDUNDANCY_RELAY] = {"redundancy_relay", LIMIT_LISTENER_INHERIT, 0,
        2, "redundancy of relay listeners: inherit, off or peer",
        limit_names_listener},
    [LIMIT_REDUNDANCY_SUBMISSION] = {"redundancy_submission",
        LIMIT_LISTENER_INHERIT, 0, 2,
        "redundancy of submission listeners: inherit, off or peer",
        limit_names_listener},
    [LIMIT_REDUNDANCY_SMTPS] = {"redundancy_smtps", LIMIT_LISTENER_INHERIT, 0,
        2, "redundancy of smtps listeners: inherit, off or peer",
        limit_names_listener},
    [LIMIT_REDUNDANCY_NO_PEER] = {"redundancy_no_peer", LIMIT_NO_PEER_ACCEPT, 0,
        1, "no peer copy possible: accept (and alert) or defer (451 4.3.0)",
        limit_names_no_peer},
    [LIMIT_REDUNDANCY_PEER_TIMEOUT_MS] = {"redundancy_peer_timeout_ms", 2000,
        10, 60000, "longest wait for the peer's copy before the no_peer mode"},
    [LIMIT_REDUNDANCY_LOST_AFTER_SECONDS] = {"redundancy_lost_after_seconds", 0,
        0, 8640000,
        "a node silent this long is declared lost and its shadows promoted, "
        "0: only by sluicectl node lost / remove"},
};
const size_t limit_count = sizeof(limit_table) / sizeof(limit_table[0]);
_Static_assert(sizeof(limit_table) / sizeof(limit_table[0]) == LIMIT_COUNT,
    "enum limit_key and limit_table[] disagree");

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

int64_t
limit_value(const Sluice__Policy *p, enum limit_key k)
{
	size_t i;

	if (p != NULL)
		for (i = 0; i < p->n_limits; i++)
			if (strcmp(p->limits[i]->key, limit_table[k].key) == 0)
				return p->limits[i]->value;
	return limit_table[k].def;
}

int
limit_parse(const struct limit_def *d, const char *s, int64_t *v, char *err,
    size_t errlen)
{
	char *end;
	long long n;
	size_t i;

	if (d->names != NULL)
		for (i = 0; d->names[i] != NULL; i++)
			if (strcmp(d->names[i], s) == 0) {
				*v = (int64_t)i;
				return 0;
			}
	errno = 0;
	n = s[0] >= '0' && s[0] <= '9' ? strtoll(s, &end, 10) : -1;
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 ||
	    n < d->min || n > d->max) {
		if (d->names != NULL) {
			char names[128] = "";
			size_t off = 0;

			for (i = 0; d->names[i] != NULL && off < sizeof(names);
			     i++)
				off += (size_t)snprintf(names + off,
				    sizeof(names) - off, "%s%s", i ? ", " : "",
				    d->names[i]);
			snprintf(err, errlen,
			    "limit %s must be one of %s, not "
			    "'%.32s'",
			    d->key, names, s);
		} else
			snprintf(err, errlen,
			    "limit %s must be a whole number between %" PRId64
			    " and %" PRId64 ", not '%.32s'",
			    d->key, d->min, d->max, s);
		return -1;
	}
	*v = n;
	return 0;
}

void
limit_format(const struct limit_def *d, int64_t v, char *buf, size_t len)
{
	size_t i;

	if (d->names != NULL && v >= 0)
		for (i = 0; d->names[i] != NULL; i++)
			if ((int64_t)i == v) {
				snprintf(buf, len, "%s", d->names[i]);
				return;
			}
	snprintf(buf, len, "%" PRId64, v);
}
