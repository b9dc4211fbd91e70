/* outbox_format.h - the pure parts of sluice's outbound event webhooks
 * (docs/webhooks.md): an `event_webhook` line of the controller config,
 * the two payload shapes (sluice, sendgrid), the HMAC-SHA256 signature
 * and the retry backoff.  No I/O: outbox.c does the posting, store_outbox.c
 * the SQL. */
#ifndef SLUICE_OUTBOX_FORMAT_H
#define SLUICE_OUTBOX_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct evbuffer;

enum outbox_shape {
	OUTBOX_SHAPE_SLUICE,   /* {"endpoint": ..., "events": [...]} */
	OUTBOX_SHAPE_SENDGRID, /* [{email, timestamp, event, ...}, ...] */
};

#define OUTBOX_MAX_FILTERS 32
#define OUTBOX_BATCH_MAX   1000

struct outbox_endpoint {
	char name[64];
	char url[1024];
	char host[256];
	char hostport[300]; /* Host: header */
	char path[1024];
	int port;
	char secret_file[1024];
	char ca_file[1024]; /* "": the system's trust store */
	char kinds[OUTBOX_MAX_FILTERS][48];
	size_t n_kinds; /* 0: every kind */
	char senders[OUTBOX_MAX_FILTERS][256];
	size_t n_senders; /* 0: every sender domain */
	enum outbox_shape shape;
	int batch; /* events per POST */
};

/* Parses "NAME url=https://host[:port]/path secret_file=PATH
 * [kinds=K,K...] [senders=D,*.D...] [shape=sluice|sendgrid] [ca=PATH]
 * [batch=N]".  0, or -1 with a one-line reason in err. */
int outbox_format_endpoint(
    const char *line, struct outbox_endpoint *, char *err, size_t errlen);

/* One stored event: its stable id is "<node_id>-<seq>". */
struct outbox_event {
	uint64_t node_id;
	const char *node;
	const Sluice__Event *ev;
};

/* The body of one POST: begin, add each event (is_first for the first),
 * end; or payload for all at once.  (evbuffer: a memory buffer here.) */
void outbox_format_begin(
    struct evbuffer *out, enum outbox_shape, const char *endpoint);
void outbox_format_add(struct evbuffer *out, enum outbox_shape,
    const struct outbox_event *, bool is_first);
void outbox_format_end(struct evbuffer *out, enum outbox_shape);
void outbox_format_payload(struct evbuffer *out, enum outbox_shape,
    const char *endpoint, const struct outbox_event *, size_t n);

/* The SendGrid event name for a sluice event kind (the kind itself when
 * SendGrid has none). */
const char *outbox_format_sendgrid_event(const char *kind);

/* "v1=" + hex HMAC-SHA256(secret, "<ts>." + body), NUL-terminated. */
#define OUTBOX_SIG_LEN (3 + 64 + 1)
void outbox_format_sign(const void *secret, size_t secretlen, int64_t ts,
    const void *body, size_t len, char sig[OUTBOX_SIG_LEN]);

/* Delay before the next try after `failures` (>= 1) consecutive failed
 * POSTs: 1 s doubling to max_ms, then "equal jitter" (half fixed, half
 * from rnd) so controllers and endpoints do not retry in lockstep. */
int64_t outbox_format_backoff_ms(int failures, int64_t max_ms, uint32_t rnd);

#endif
