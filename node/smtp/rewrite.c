/* rewrite.c - From: rewrite (rewrite.h).  RFC 5322 3.6.2: From: is a
 * mailbox-list; a submission from one application carries one mailbox,
 * "Display Name <a@b>" or "a@b".  The display name is kept (outside
 * quoted strings, the first '<' starts the address); the rest of the
 * field goes. */
#include "rewrite.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Start of the first "From:" field at a line start, or NULL. */
static const char *
find_from(const char *h, size_t len)
{
	size_t i = 0;

	while (i + 5 <= len) {
		if (i + 2 <= len && h[i] == '\r' && h[i + 1] == '\n')
			return NULL; /* the empty line: end of the header */
		if (strncasecmp(h + i, "From:", 5) == 0)
			return h + i;
		while (i < len && h[i] != '\n')
			i++;
		i++;
	}
	return NULL;
}

char *
rewrite_from(const char *hdr, size_t len, const char *addr, size_t *outlen)
{
	const char *f, *v, *end, *lt = NULL, *ds, *de;
	bool quoted = false;
	size_t flen, dlen, n;
	char *out;

	if ((f = find_from(hdr, len)) == NULL)
		return NULL;
	/* the field ends at a CRLF not followed by white space */
	end = f;
	for (;;) {
		while (end < hdr + len && *end != '\n')
			end++;
		if (end < hdr + len)
			end++;
		if (end >= hdr + len || (*end != ' ' && *end != '\t'))
			break;
	}
	v = f + 5;
	for (const char *p = v; p < end; p++) {
		if (*p == '"' && (p == v || p[-1] != '\\'))
			quoted = !quoted;
		else if (*p == '<' && !quoted) {
			lt = p;
			break;
		}
	}
	ds = v;
	de = lt != NULL ? lt : v;
	while (ds < de &&
	       (*ds == ' ' || *ds == '\t' || *ds == '\r' || *ds == '\n'))
		ds++;
	while (de > ds && (de[-1] == ' ' || de[-1] == '\t' || de[-1] == '\r' ||
	                      de[-1] == '\n'))
		de--;
	dlen = (size_t)(de - ds);
	flen = (size_t)(end - f);
	n = len - flen + strlen("From: ") + dlen + 1 + strlen(addr) + 4;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(out, hdr, (size_t)(f - hdr));
	if (dlen > 0)
		n = (size_t)(f - hdr) +
		    (size_t)snprintf(out + (f - hdr), n + 1 - (size_t)(f - hdr),
		        "From: %.*s <%s>\r\n", (int)dlen, ds, addr);
	else
		n = (size_t)(f - hdr) + (size_t)snprintf(out + (f - hdr),
		                            n + 1 - (size_t)(f - hdr),
		                            "From: %s\r\n", addr);
	memcpy(out + n, end, (size_t)(hdr + len - end));
	*outlen = n + (size_t)(hdr + len - end);
	return out;
}
