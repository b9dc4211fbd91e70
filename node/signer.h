/* signer.h - the node's DKIM signing policy compiled from a policy
 * snapshot: which keys sign a message (by its From: domain), and what a
 * failure means (required: the message is deferred, optional: it goes
 * unsigned).  Built on every policy swap (control_install), used by the
 * SMTP session at the end of DATA, loop thread only.  The signatures are
 * computed once, stored with the message in the spool and sent unchanged
 * on every attempt and to every hop. */
#ifndef SLUICE_NODE_SIGNER_H
#define SLUICE_NODE_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct signer;
struct dkim_sign;

enum signer_outcome {
	SIGNER_NONE = 0,        /* no key for the From: domain */
	SIGNER_SIGNED,          /* headers holds one field per key */
	SIGNER_FAILED_OPTIONAL, /* send unsigned */
	SIGNER_FAILED_REQUIRED, /* defer (4xx to the client) */
};
const char *signer_outcome_name(enum signer_outcome);

struct signer_result {
	enum signer_outcome outcome;
	char *headers;       /* malloc'd DKIM-Signature fields, or NULL */
	char domain[256];    /* d= (the key's domain), "" if none */
	char selectors[256]; /* "s1,e1" */
	char err[160];       /* why it failed */
};

/* Keys that do not load are logged once here and count as failures for
 * their domain.  The counters of prev (may be NULL) carry over for the
 * domains still configured.  NULL on OOM only. */
struct signer *signer_new(const Sluice__Policy *, const struct signer *prev);
void signer_free(struct signer *);
/* Any key at all: only then is a message's data fed to a dkim_sign. */
bool signer_active(const struct signer *);
/* DKIM_BODY_* bits for dkim_sign_new(). */
unsigned signer_body_canons(const struct signer *);
/* Signs the finished message ds at now; r is filled (free r->headers). */
void signer_sign(struct signer *, struct dkim_sign *ds, int64_t now,
    struct signer_result *r);

/* "example.com:r1,e1" from stored DKIM-Signature fields (d= of the
 * first, every s=), "" if there are none.  Pure. */
void signer_describe(const char *fields, char *buf, size_t len);

/* Messages signed and signing failures per signing domain (/metrics). */
typedef void (*signer_count_cb)(
    const char *domain, uint64_t nsigned, uint64_t nfailed, void *arg);
void signer_counts(const struct signer *, signer_count_cb, void *arg);

#endif
