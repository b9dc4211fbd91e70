/* outbox_metrics.h - the event webhooks in /metrics and in alerts: per
 * endpoint, events queued, sent, failed POSTs, the oldest queued event's
 * age; `webhook_failing` while an endpoint has failed for after_s. */
#ifndef SLUICE_OUTBOX_METRICS_H
#define SLUICE_OUTBOX_METRICS_H

#include <stdint.h>

#include "store.h"

struct evbuffer;
struct health_alert;

/* Appends the sluice_webhook_* families to b.  STORE_OK or the store's
 * error. */
int outbox_metrics(struct store *, struct evbuffer *b);

typedef void (*outbox_alert_cb)(void *arg, const struct health_alert *);
/* cb for each endpoint failing for after_s or longer. */
int outbox_metrics_alerts(
    struct store *, int64_t after_s, outbox_alert_cb cb, void *arg);

#endif
