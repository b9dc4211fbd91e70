/* smtp_check.h - the inbound policy verdicts, pure: connection limits and
 * AUTH blocks at connect; AUTH required, sender syntax, size, sender
 * ownership and message rates at MAIL; relay and recipient count at RCPT.
 * Like Postfix's smtpd_check_*: each takes data and now, does no I/O and
 * no logging, and returns NULL (go on) or the verdict: the reply to send
 * and what to log.  The session (smtp_session.c) keeps the I/O, the log
 * lines and the state.  The rate limiter passed in is the only state they
 * touch: smtp_check_connect counts a connection it admits. */
#ifndef SLUICE_SMTP_CHECK_H
#define SLUICE_SMTP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp_parse.h"
#include "smtp_session.h"

struct policy;
struct ratelimit;

/* What the verdicts know of the client. */
struct smtp_check_client {
	const char *ip; /* "192.0.2.1": the rate-limit key */
	enum smtp_role role;
	bool trusted; /* in a policy network */
	bool authed;
	bool esmtp;       /* greeted with EHLO */
	const char *user; /* when authed */
};

struct smtp_verdict {
	char reply[SMTP_TEXT_MAX]; /* the reply line, without CRLF */
	/* The refusal as logged ("554 5.7.1 Relay access denied"); "" for
	 * a syntax or sequence error, which is not logged as a refusal. */
	char refusal[SMTP_TEXT_MAX];
	/* connect only: "auth_block", "max_connections",
	 * "max_connections_per_ip"; the session closes after the reply. */
	const char *reason;
	int64_t until; /* auth_block: blocked until */
};

/* A client at hostname's door, with nsessions open (this one included).
 * NULL: admitted, and counted once in rl (ratelimit_conn_close later). */
const struct smtp_verdict *smtp_check_connect(struct smtp_verdict *,
    const struct policy *, struct ratelimit *, const struct smtp_check_client *,
    const char *hostname, size_t nsessions, int64_t now);
/* "MAIL FROM:" argument arg: parses it into *from and *mp, then the
 * policy.  NULL: accept the sender. */
const struct smtp_verdict *smtp_check_mail(struct smtp_verdict *,
    const struct policy *, struct ratelimit *, const struct smtp_check_client *,
    const char *arg, struct smtp_path *from, struct smtp_mail_params *mp,
    int64_t now);
/* "RCPT TO:" argument arg in a transaction that has nrcpts recipients and
 * asked for SMTPUTF8 or not: parses it into *to, then the policy.  NULL:
 * accept the recipient. */
const struct smtp_verdict *smtp_check_rcpt(struct smtp_verdict *,
    const struct policy *, const struct smtp_check_client *, const char *arg,
    bool smtputf8, size_t nrcpts, struct smtp_path *to);

#endif
