/* received.c - formats the Received: trace field (received.h).  Pure:
 * no I/O, the time is passed in.  RFC 5321 4.4 (Stamp syntax), RFC 3848
 * and RFC 6531 3.7.3 (the "with" names), RFC 5322 3.3 (the date). */
#include "received.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *
received_protocol(const struct received_info *r)
{
	static const char *const names[] = {"ESMTP", "ESMTPA", "ESMTPS",
	    "ESMTPSA", "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA"};

	if (!r->esmtp)
		return "SMTP"; /* RFC 3848 has no names for HELO + TLS/AUTH */
	return names[(r->smtputf8 ? 4 : 0) + (r->tls ? 2 : 0) +
	             (r->authed ? 1 : 0)];
}

/* The HELO argument as a Domain or address literal, or '?' where the
 * client sent something that is neither and would break the field. */
static void
received_helo(char *out, size_t len, const char *helo)
{
	size_t o = 0;

	for (; *helo != '\0' && o + 1 < len; helo++) {
		unsigned char c = (unsigned char)*helo;

		out[o++] = c <= ' ' || c >= 127 || strchr("()<>;\\\"", c)
		               ? '?'
		               : (char)c;
	}
	out[o] = '\0';
	if (o == 0)
		snprintf(out, len, "unknown");
}

size_t
received_format(char *buf, size_t len, const struct received_info *r)
{
	static const char days[7][4] = {
	    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char helo[256], date[128];
	time_t t = (time_t)r->at;
	struct tm tm;
	int n;

	received_helo(helo, sizeof(helo), r->helo != NULL ? r->helo : "");
	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	n = snprintf(buf, len,
	    "Received: from %s ([%s%s])\r\n"
	    "\tby %s (sluice) with %s id %s%s%s%s;\r\n"
	    "\t%s\r\n",
	    helo, r->ipv6 ? "IPv6:" : "", r->ip, r->by, received_protocol(r),
	    r->qid, r->rcpt != NULL ? "\r\n\tfor <" : "",
	    r->rcpt != NULL ? r->rcpt : "", r->rcpt != NULL ? ">" : "", date);
	if (n < 0 || (size_t)n >= len)
		return 0;
	return (size_t)n;
}
