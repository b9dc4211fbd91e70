/* provider_tag.h - pure: the header that carries sluice's queue id in a
 * provider's metadata (issue 16, docs/providers.md "Joining events to
 * messages").  The provider copies it into its webhook events (SendGrid
 * unique_args, SES message tags, Mailgun user-variables, Postmark
 * Metadata, Brevo X-Mailin-custom), and the controller joins them to
 * the message by it.  The node prepends the header on the wire when it
 * sends to a hop whose provider hook has tag set; the spool never holds
 * it, so other hops do not see it, and no DKIM signature covers it. */
#ifndef SLUICE_PROVIDER_TAG_H
#define SLUICE_PROVIDER_TAG_H

#include <stddef.h>

#include "proto.h"

/* The metadata key, the same at every provider that has one; Postmark's
 * header name carries it with '-' (X-PM-Metadata-sluice-queue-id). */
#define PROVIDER_TAG_KEY "sluice_queue_id"
#define PROVIDER_TAG_MAX 128 /* the longest header line, CRLF, NUL */

/* The provider of the hook that tags the hop of this name ("sendgrid",
 * "ses", "mailgun", "postmark", "brevo"), or NULL: no hook of that name
 * with tag set. */
const char *provider_tag_for_hop(const Sluice__Policy *, const char *hop);

/* Writes the header line (with CRLF) for provider and queue id into out
 * and returns its length; 0 (out "") for an unknown provider, a queue id
 * that is empty or not [A-Za-z0-9._-], or an out too small. */
size_t provider_tag_header(
    const char *provider, const char *qid, char *out, size_t outlen);

#endif
