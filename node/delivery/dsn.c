/* dsn.c - builds the bounce: a multipart/report (RFC 6522) with a human
 * explanation, the message/delivery-status part (RFC 3464 2.2, 2.3) and
 * the original headers (text/rfc822-headers); for internationalised mail
 * the RFC 6533 equivalents (message/global-delivery-status, utf-8
 * address types, message/global-headers).  Pure: no clock, no I/O. */
#include "dsn.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dsn_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void dsn_printf(struct dsn_buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
dsn_add(struct dsn_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *np = realloc(b->p, cap);

		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
dsn_printf(struct dsn_buf *b, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	dsn_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void
dsn_date(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	/* RFC 5322 3.3 date-time. */
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Header values must stay one line: CR and LF from a peer are spaces. */
static void
dsn_clean(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in != NULL && in[i] != '\0' && i + 1 < len; i++)
		out[i] = in[i] == '\r' || in[i] == '\n' ? ' ' : in[i];
	out[i] = '\0';
}

char *
dsn_build(const struct dsn_info *d, size_t *len)
{
	struct dsn_buf b = {NULL, 0, 0, false};
	char date[64], arr[64], boundary[96], v[512];
	/* RFC 6533 3: the utf-8 address type; 6.1-6.3: the global types */
	const char *at = d->global ? "utf-8" : "rfc822";
	const char *report =
	    d->global ? "global-delivery-status" : "delivery-status";
	size_t i;

	dsn_date(d->now, date, sizeof(date));
	dsn_date(d->arrival, arr, sizeof(arr));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", d->queue_id,
	    (long long)d->now, d->reporting_mta);
	dsn_printf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    d->reporting_mta);
	dsn_printf(&b, "To: <%s>\r\n", d->sender);
	dsn_printf(&b, "Subject: Undelivered Mail Returned to Sender\r\n");
	dsn_printf(&b, "Date: %s\r\n", date);
	dsn_printf(&b, "Message-ID: <%s.%lld.dsn@%s>\r\n", d->queue_id,
	    (long long)d->now, d->reporting_mta);
	/* RFC 3834 5: never answered automatically. */
	dsn_printf(&b, "Auto-Submitted: auto-replied\r\n");
	dsn_printf(&b, "MIME-Version: 1.0\r\n");
	dsn_printf(&b,
	    "Content-Type: multipart/report; report-type=%s;\r\n"
	    "\tboundary=\"%s\"\r\n",
	    report, boundary);
	dsn_printf(&b, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	dsn_printf(&b, "--%s\r\n", boundary);
	dsn_printf(&b,
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=%s\r\n\r\n",
	    d->global ? "utf-8" : "us-ascii");
	dsn_printf(&b,
	    "This is the mail system at host %s.\r\n\r\n"
	    "I'm sorry to have to inform you that your message could not\r\n"
	    "be delivered to one or more recipients.\r\n\r\n",
	    d->reporting_mta);
	for (i = 0; i < d->nrcpts; i++) {
		dsn_clean(d->rcpts[i].diagnostic, v, sizeof(v));
		dsn_printf(&b, "<%s>: %s\r\n", d->rcpts[i].addr, v);
	}
	dsn_printf(&b, "\r\n--%s\r\n", boundary);
	dsn_printf(&b,
	    "Content-Description: Delivery report\r\n"
	    "Content-Type: message/%s\r\n\r\n",
	    report);
	/* RFC 3464 2.2: per-message fields. */
	dsn_printf(&b, "Reporting-MTA: dns; %s\r\n", d->reporting_mta);
	dsn_printf(&b, "X-Sluice-Queue-ID: %s\r\n", d->queue_id);
	dsn_printf(&b, "X-Original-Sender: %s; %s\r\n", at, d->sender);
	dsn_printf(&b, "Arrival-Date: %s\r\n", arr);
	for (i = 0; i < d->nrcpts; i++) {
		const struct dsn_rcpt *r = &d->rcpts[i];

		/* RFC 3464 2.3: per-recipient fields. */
		dsn_printf(&b, "\r\nFinal-Recipient: %s; %s\r\n", at, r->addr);
		dsn_printf(&b, "Original-Recipient: %s; %s\r\n", at, r->addr);
		dsn_printf(&b, "Action: failed\r\n");
		dsn_printf(&b, "Status: %s\r\n",
		    r->status && r->status[0] == '5' ? r->status : "5.0.0");
		if (r->remote_mta != NULL && r->remote_mta[0] != '\0')
			dsn_printf(
			    &b, "Remote-MTA: dns; %s\r\n", r->remote_mta);
		dsn_clean(r->diagnostic, v, sizeof(v));
		dsn_printf(&b, "Diagnostic-Code: smtp; %s\r\n", v);
		dsn_printf(&b, "Last-Attempt-Date: %s\r\n", date);
	}
	dsn_printf(&b, "\r\n--%s\r\n", boundary);
	dsn_printf(&b,
	    "Content-Description: Undelivered Message Headers\r\n"
	    "Content-Type: %s\r\n\r\n",
	    d->global ? "message/global-headers" : "text/rfc822-headers");
	if (d->headers != NULL)
		dsn_add(&b, d->headers, d->headers_len);
	if (b.len < 2 || b.p[b.len - 2] != '\r' || b.p[b.len - 1] != '\n')
		dsn_printf(&b, "\r\n");
	dsn_printf(&b, "\r\n--%s--\r\n", boundary);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
