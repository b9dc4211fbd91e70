/* smtp_reply.c - fuzz target: the reply parser of
 * node/smtp_reply.c (what a smart host or MX says to us).  The input is
 * cut into lines at LF (a trailing CR dropped, as the session does) and fed
 * to smtp_reply_feed; each complete reply is classified and formatted into
 * buffers of every small size.  Invariants: the code is 200..599 and the
 * same on every line of a reply, the text and enhanced code are
 * NUL-terminated within their arrays, the enhanced code's class matches
 * the reply's, and the formatter always terminates its output. */
#include <string.h>

#include "fuzz.h"
#include "smtp_reply.h"

static void
check_reply(const struct smtp_reply *r)
{
	char buf[SMTP_REPLY_TEXT + 64];
	size_t n;

	FUZZ_ASSERT(r->code >= 200 && r->code <= 599);
	FUZZ_ASSERT(memchr(r->text, '\0', sizeof(r->text)) != NULL);
	FUZZ_ASSERT(memchr(r->enhanced, '\0', sizeof(r->enhanced)) != NULL);
	if (r->enhanced[0] != '\0')
		FUZZ_ASSERT(r->enhanced[0] - '0' == r->code / 100);
	FUZZ_ASSERT(smtp_reply_class(r) == r->code / 100);
	for (n = 1; n < 24; n++) {
		memset(buf, 'x', sizeof(buf));
		smtp_reply_format(r, buf, n);
		FUZZ_ASSERT(memchr(buf, '\0', n) != NULL);
	}
	smtp_reply_format(r, buf, sizeof(buf));
	FUZZ_ASSERT(memchr(buf, '\0', sizeof(buf)) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser rp;
	const char *p = (const char *)data, *end = p + size, *lf, *lt;
	size_t len;
	int rv, first = 0;

	smtp_reply_init(&rp);
	while (p < end) {
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
			lf = end;
		len = (size_t)(lf - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		lt = NULL;
		rv = smtp_reply_feed(&rp, p, len, &lt);
		FUZZ_ASSERT(rv >= -1 && rv <= 1);
		if (rv >= 0) {
			FUZZ_ASSERT(lt != NULL && lt >= p && lt <= p + len);
			if (rp.lines == 1)
				first = rp.r.code;
			FUZZ_ASSERT(rp.r.code == first);
		}
		if (rv == 1)
			check_reply(&rp.r);
		if (rv != 0)
			smtp_reply_init(&rp);
		p = lf + (lf < end);
	}
	return 0;
}
