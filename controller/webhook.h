/* webhook.h - the optional alert webhook: every alert raised or cleared
 * is POSTed as one JSON object to alert_webhook = http://host[:port]/path
 * (controller config).  libevent's HTTP client on the caller's thread,
 * blocking for at most WEBHOOK_TIMEOUT_S per post; failures are logged
 * and dropped (alerts stay in PostgreSQL and in `sluicectl alerts`). */
#ifndef SLUICE_WEBHOOK_H
#define SLUICE_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

struct webhook;

/* NULL with err when the URL is not http://host[:port][/path]. */
struct webhook *webhook_new(const char *url, char *err, size_t errlen);
void webhook_free(struct webhook *);
/* {"event": "raised"|"cleared", "kind", "subject", "message", "at"}.
 * 0 when the receiver answered 2xx, else -1 (logged). */
int webhook_post(struct webhook *, const char *event, const char *kind,
    const char *subject, const char *message, int64_t at);

#endif
