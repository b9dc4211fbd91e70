/* smtp_reply.c - the reply value and the reply-line parser (smtp_reply.h).
 * RFC 5321 4.2 (reply lines, same code on every line of a reply) and
 * RFC 3463 (enhanced status codes). */
#include "smtp_reply.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void
smtp_reply_init(struct smtp_reply_parser *rp)
{
	memset(rp, 0, sizeof(*rp));
}

int
smtp_reply_class(const struct smtp_reply *r)
{
	return r->code / 100;
}

void
smtp_reply_set(
    struct smtp_reply *r, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	snprintf(
	    r->enhanced, sizeof(r->enhanced), "%s", enhanced ? enhanced : "");
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

void
smtp_reply_format(const struct smtp_reply *r, char *buf, size_t len)
{
	if (r->code == 0)
		snprintf(buf, len, "%s", r->text);
	else if (r->enhanced[0] != '\0')
		snprintf(buf, len, "%d %s %s", r->code, r->enhanced, r->text);
	else
		snprintf(buf, len, "%d %s", r->code, r->text);
}

/* RFC 3463: class.subject.detail, class matching the reply's class. */
static size_t
smtp_reply_enhanced(const char *s, size_t len, int code)
{
	size_t i = 0, part, digits;

	if (len < 5 || s[0] - '0' != code / 100 || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		digits = 0;
		while (i < len && isdigit((unsigned char)s[i]) && digits < 3) {
			i++;
			digits++;
		}
		if (digits == 0)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

int
smtp_reply_feed(struct smtp_reply_parser *rp, const char *line, size_t len,
    const char **line_text)
{
	int code;
	bool last;
	size_t e;

	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || line[0] < '2' || line[0] > '5')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (rp->lines > 0 && code != rp->r.code)
		return -1; /* RFC 5321 4.2.1: same code on every line */
	last = len == 3 || line[3] == ' ';
	line += len > 3 ? 4 : 3;
	len -= len > 3 ? 4 : 3;
	if (line_text != NULL)
		*line_text = line;
	if (rp->lines++ == 0) {
		rp->r.code = code;
		if ((e = smtp_reply_enhanced(line, len, code)) != 0) {
			memcpy(rp->r.enhanced, line,
			    e < sizeof(rp->r.enhanced)
			        ? e
			        : sizeof(rp->r.enhanced) - 1);
			line += e;
			len -= e;
			while (len > 0 && *line == ' ') {
				line++;
				len--;
			}
		}
		if (len >= sizeof(rp->r.text))
			len = sizeof(rp->r.text) - 1;
		memcpy(rp->r.text, line, len);
		rp->r.text[len] = '\0';
	}
	return last ? 1 : 0;
}
