/* reply_scope.h - what an upstream reply is about, not just its first
 * digit.  Cloud relays answer account- and quota-level problems with
 * codes that look like recipient failures ("550 Unauthenticated senders
 * not allowed"); the delivery engine must fail over and alert on those,
 * never bounce.  Pure: the providers' documented replies are a table
 * (reply_scope.c), tested line by line in tests/unit/test_reply_scope.c.
 * Called by delivery.c for every reply that is not a success. */
#ifndef SLUICE_REPLY_SCOPE_H
#define SLUICE_REPLY_SCOPE_H

#include <stdbool.h>
#include <stdint.h>

/* Where in the session the reply came. */
enum reply_stage {
	REPLY_CONNECT, /* TCP, TLS handshake: no reply, a local reason */
	REPLY_GREETING,
	REPLY_EHLO,
	REPLY_STARTTLS,
	REPLY_AUTH,
	REPLY_MAIL,
	REPLY_RCPT,
	REPLY_DATA,    /* DATA and the final dot */
	REPLY_SESSION, /* a session that died: timeout, close, 421 */
};

enum reply_scope {
	SCOPE_OK,            /* 2xx/3xx */
	SCOPE_RECIPIENT,     /* 5xx: bounce the recipient; 4xx: defer it */
	SCOPE_MESSAGE,       /* 5xx: bounce the message */
	SCOPE_HOP_TRANSIENT, /* fail over now, retry later; hop failure */
	SCOPE_HOP_THROTTLE,  /* fail over; the hop waits out the window */
	SCOPE_HOP_CONFIG,    /* credentials/config: fail over, alert */
	SCOPE_ACCOUNT, /* provider paused/suspended us: fail over, alert */
};

struct reply_verdict {
	enum reply_scope scope;
	int64_t window_s;     /* throttle: the provider's window; 0: back-off */
	const char *provider; /* whose documented reply matched, or "generic" */
};

/*
 * Classifies one reply: code (0 when there was none: refused, timeout),
 * enhanced status code ("5.7.1" or ""), the text after them, and the
 * stage.  smart_host: the hop is a relay we authenticate to (provider
 * rules apply); false for MX delivery, where a 5xx is the destination's
 * verdict on the mail and never a reason to fail over.
 */
void reply_scope_classify(int code, const char *enhanced, const char *text,
    enum reply_stage, bool smart_host, struct reply_verdict *);
/* "recipient", "message", "hop-transient", "hop-throttle", "hop-config",
 * "account", "ok". */
const char *reply_scope_name(enum reply_scope);
const char *reply_stage_name(enum reply_stage);
/* Scopes that are the operator's problem, never the sender's. */
bool reply_scope_alerts(enum reply_scope);

#endif
