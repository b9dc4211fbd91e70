/* received.h - the Received: trace field a relay adds (RFC 5321 4.4).
 * Pure: formatting only; the session gathers the facts (smtp_session.c)
 * and writes the field in front of the message data (docs/smtp.md). */
#ifndef SLUICE_RECEIVED_H
#define SLUICE_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every field fits in this (HELO and path are bounded by the session). */
#define RECEIVED_MAX 2048

struct received_info {
	const char *helo; /* the client's HELO/EHLO argument */
	bool ipv6;
	const char *ip;   /* the client's address, text form */
	const char *by;   /* our host name */
	bool esmtp;       /* EHLO, not HELO */
	bool tls;         /* the session was encrypted */
	bool authed;      /* AUTH succeeded (the user name is never shown) */
	bool smtputf8;    /* the transaction declared SMTPUTF8 */
	const char *qid;  /* our queue id */
	const char *rcpt; /* the recipient when there is exactly one, or NULL */
	int64_t at;       /* unix seconds */
};

/* The protocol name for "with" (RFC 3848, RFC 6531 3.7.3): SMTP, ESMTP,
 * ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA. */
const char *received_protocol(const struct received_info *);

/* Formats the whole field, folded, CRLF line ends:
 *   Received: from HELO ([IP])
 *   	by BY (sluice) with ESMTPSA id QID
 *   	for <RCPT>;
 *   	Sun, 06 Dec 2026 23:30:00 +0000
 * (no "for" line unless there is exactly one recipient).
 * Octets of the HELO argument that could break the syntax (controls,
 * space, 8-bit, "()<>;\") are written as '?'.  Returns the length, or 0
 * if it does not fit in len (it always fits in RECEIVED_MAX). */
size_t received_format(char *buf, size_t len, const struct received_info *);

#endif
