/* hooks_parse.h - pure: provider webhook bodies (JSON, jansson) into
 * sluice delivery events.  One function per provider; each maps the
 * provider's event names onto ours (docs/providers.md):
 *
 *   provider_delivered provider_bounced provider_deferred provider_dropped
 *   complaint opened clicked
 *
 * and keeps what joins the event to a message: the provider's message id
 * (the one its 250 reply named), the RFC 5322 Message-ID, or sluice's
 * queue id from the metadata header the node added.  Events of other
 * kinds (SendGrid "processed", unsubscribes, ...) are counted in
 * `ignored` and dropped.  No I/O; called by hooks_http.c. */
#ifndef SLUICE_HOOKS_PARSE_H
#define SLUICE_HOOKS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hooks_verify.h"

#define HOOKS_MAX_EVENTS 10000 /* per request; more is refused (413) */

/* The metadata keys sluice's queue id travels under (SendGrid unique_args,
 * Mailgun user-variables, SES message tag, Postmark Metadata, Brevo
 * X-Mailin-custom), first found wins: the node's (node/provider_tag.h;
 * Postmark's header name turns '_' into '-'), then the older name
 * applications were told to set. */
#define HOOKS_QID_KEYS                                                         \
	{                                                                      \
		"sluice_queue_id", "sluice-queue-id", "sluice_qid"             \
	}

struct hook_event {
	char *event_id;    /* the provider's, unique per provider account */
	const char *kind;  /* static: provider_delivered, ... */
	char *recipient;   /* lower-cased */
	char *provider_id; /* the provider's message id, "" unknown */
	char *message_id;  /* "<...>" or "" */
	char *queue_id;    /* from the metadata header, "" */
	char *type;        /* bounce type as the provider says, "" */
	char *diagnostic;  /* the provider's reason / remote reply, "" */
	int64_t at_ms;
	bool is_hard; /* hard bounce or complaint: suppression candidate */
	/* Set by store_hook_insert(): stored now (not a replay), and
	 * joined to a message sluice knows. */
	bool is_new, is_known;
};

struct hook_batch {
	struct hook_event *v;
	size_t n, cap;
	size_t ignored;
};

void hooks_batch_free(struct hook_batch *);
/* Drops event i (the last one takes its place) and counts it ignored. */
void hooks_batch_remove(struct hook_batch *, size_t i);

/* Each returns 0, or -1 with a one-line reason in err (the body is not
 * what that provider sends: 400). */
int hooks_parse_sendgrid(const char *body, size_t len, struct hook_batch *,
    char *err, size_t errlen);
/* Mailgun's signature is in the body: copied into the three buffers. */
struct hooks_mailgun_sig {
	char timestamp[32];
	char token[128];
	char signature[160];
};
int hooks_parse_mailgun(const char *body, size_t len, struct hook_batch *,
    struct hooks_mailgun_sig *, char *err, size_t errlen);
int hooks_parse_postmark(const char *body, size_t len, struct hook_batch *,
    char *err, size_t errlen);
int hooks_parse_brevo(const char *body, size_t len, struct hook_batch *,
    char *err, size_t errlen);

/* An SNS envelope: fields point into doc (hooks_sns_free()). */
struct hooks_sns_doc {
	void *root;
	struct hooks_sns f;
};
int hooks_parse_sns(const char *body, size_t len, struct hooks_sns_doc *,
    char *err, size_t errlen);
void hooks_sns_free(struct hooks_sns_doc *);
/* The SES notification or event inside a Notification's Message; event
 * ids are the SNS MessageId and the recipient. */
int hooks_parse_ses(const char *message, const char *sns_message_id,
    struct hook_batch *, char *err, size_t errlen);

#endif
