/* dsn.h - RFC 3464 delivery status notifications (bounces).  Pure: the
 * caller passes the original envelope, the failed recipients with the
 * remote replies, the original header block and now; out comes the whole
 * message (CRLF lines) to queue with the null sender.  Called by
 * delivery.c; tested through the delivery scenarios. */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dsn_rcpt {
	const char *addr;
	const char *status;     /* enhanced code "5.1.1" */
	const char *remote_mta; /* host name or NULL */
	const char *diagnostic; /* "550 5.1.1 <x>: no such user" */
};

struct dsn_info {
	const char *reporting_mta; /* our host name */
	const char *queue_id;
	const char *sender; /* gets the DSN */
	int64_t arrival;    /* unix s */
	int64_t now;
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *headers; /* original header block */
	size_t headers_len;
	/* Internationalised original (SMTPUTF8, or 8-bit octets in its
	 * header): RFC 6533 shape - report-type=global-delivery-status,
	 * message/global-delivery-status with utf-8 address types, the
	 * headers as message/global-headers, UTF-8 text. */
	bool global;
};

/* A malloc'ed message, *len octets; NULL on out of memory. */
char *dsn_build(const struct dsn_info *, size_t *len);

#endif
