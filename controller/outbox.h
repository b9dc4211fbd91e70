/* outbox.h - sluice's outbound event webhooks (docs/webhooks.md): one
 * worker thread per `event_webhook` endpoint of the controller config,
 * each with its own PostgreSQL connection and HTTPS client, delivering the
 * endpoint's rows of the durable outbox (store_outbox.c) as signed,
 * batched JSON POSTs, at least once, with backoff.  Every controller of a
 * database runs the same endpoints; row locks keep them from sending the
 * same rows at once. */
#ifndef SLUICE_OUTBOX_H
#define SLUICE_OUTBOX_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox_format.h"

struct outbox;

struct outbox_config {
	int64_t retry_max_ms; /* backoff ceiling */
	int timeout_s;        /* per POST */
	int poll_ms;          /* an idle endpoint looks for rows this often */
};

/* Reads each endpoint's secret file and prepares its TLS client: NULL
 * with a one-line reason when one cannot be (config errors fail the start
 * at once).  Starts nothing. */
struct outbox *outbox_new(const struct outbox_endpoint *, size_t n,
    const struct outbox_config *, char *err, size_t errlen);
/* One thread per endpoint: writes its filters to the database, then
 * delivers until *stop.  Call once the schema is migrated. */
void outbox_start(
    struct outbox *, const char *conninfo, volatile sig_atomic_t *stop);
/* Joins the threads (*stop must be set) and frees.  NULL is fine. */
void outbox_free(struct outbox *);

#endif
