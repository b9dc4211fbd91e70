/* smtp_data.c - fuzz target: the DATA reader of node/smtp_parse.c (end of
 * data, dot-unstuffing, bare CR/LF and smuggling flags).  The first input
 * byte picks a chunk size; the rest is fed once in one piece and once in
 * chunks, as TCP might deliver it.  Invariants: both feeds agree on every
 * octet of output, the end and every flag (the reader has no memory of
 * where reads were split); output never exceeds the promised len + 2; the
 * only end of data is CRLF.CRLF (the DATA command's CRLF counting as the
 * first); size counts exactly the octets output; and a message without
 * bare CR/LF un-stuffs to what a reference un-stuffer gives, with the
 * content scan (8-bit header/body, Received: count) a reference scan of
 * the output gives. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "smtp_parse.h"

struct feed {
	struct smtp_data d;
	char *out;
	size_t outlen;
	size_t used; /* input consumed */
};

static void
feed_run(struct feed *f, const char *in, size_t len, size_t step)
{
	size_t n, olen, used;

	smtp_data_init(&f->d);
	f->outlen = f->used = 0;
	while (f->used < len && f->d.state != SMTP_DATA_DONE) {
		n = len - f->used < step ? len - f->used : step;
		used = smtp_data_feed(
		    &f->d, in + f->used, n, f->out + f->outlen, &olen);
		FUZZ_ASSERT(used <= n);
		FUZZ_ASSERT(olen <= n + 2);
		FUZZ_ASSERT(used == n || f->d.state == SMTP_DATA_DONE);
		f->used += used;
		f->outlen += olen;
		FUZZ_ASSERT(f->outlen <= f->used + 2);
	}
}

/* Reference content scan of clean un-stuffed output: the header block
 * ends at the first empty line. */
static void
reference_scan(const char *p, size_t len, bool *h8, bool *b8, uint32_t *nrcv)
{
	size_t i = 0, e;
	const char *lf;
	bool body = false;

	*h8 = *b8 = false;
	*nrcv = 0;
	while (i < len) {
		lf = memchr(p + i, '\n', len - i);
		e = lf != NULL ? (size_t)(lf - p) + 1 : len;
		if (!body && e - i == 2 && p[i] == '\r') {
			body = true;
			i = e;
			continue;
		}
		if (!body && e - i >= 9 &&
		    strncasecmp(p + i, "received", 8) == 0 && p[i + 8] == ':')
			(*nrcv)++;
		for (size_t k = i; k < e; k++)
			if ((unsigned char)p[k] > 127)
				*(body ? b8 : h8) = true;
		i = e;
	}
}

/* Reference: RFC 5321 4.5.2 on clean CRLF text.  Returns the octets of
 * input up to and including the end of data, or 0 if there is none. */
static size_t
reference(const char *in, size_t len, char *out, size_t *outlen)
{
	size_t i = 0, o = 0, e;
	const char *lf;

	for (;;) {
		if ((lf = memchr(in + i, '\n', len - i)) == NULL)
			return 0;
		e = (size_t)(lf - in) + 1; /* after this line's LF */
		if (e - i == 3 && in[i] == '.' && in[i + 1] == '\r') {
			*outlen = o;
			return e;
		}
		if (in[i] == '.')
			i++;
		memcpy(out + o, in + i, e - i);
		o += e - i;
		i = e;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed a, b;
	const char *in;
	size_t len, step, rlen = 0, rused;
	char *ref;

	if (size < 1)
		return 0;
	step = (data[0] % 16) + 1;
	in = (const char *)data + 1;
	len = size - 1;
	a.out = malloc(len + 2);
	b.out = malloc(len + 2);
	ref = malloc(len + 2);
	if (a.out == NULL || b.out == NULL || ref == NULL)
		goto out;
	feed_run(&a, in, len, len > 0 ? len : 1);
	feed_run(&b, in, len, step);

	FUZZ_ASSERT(a.d.state == b.d.state && a.used == b.used);
	FUZZ_ASSERT(
	    a.outlen == b.outlen && memcmp(a.out, b.out, a.outlen) == 0);
	FUZZ_ASSERT(a.d.bare == b.d.bare && a.d.nul == b.d.nul &&
	            a.d.toolong == b.d.toolong && a.d.size == b.d.size);
	FUZZ_ASSERT(a.d.size == a.outlen);
	FUZZ_ASSERT(
	    a.d.hdr8bit == b.d.hdr8bit && a.d.body8bit == b.d.body8bit &&
	    a.d.nreceived == b.d.nreceived && a.d.in_body == b.d.in_body);
	if (a.d.state == SMTP_DATA_DONE) {
		/* ".\r\n" at the start, or "\r\n.\r\n" */
		FUZZ_ASSERT(
		    a.used >= 3 && memcmp(in + a.used - 3, ".\r\n", 3) == 0);
		FUZZ_ASSERT(
		    a.used == 3 ||
		    (a.used >= 5 && memcmp(in + a.used - 5, "\r\n", 2) == 0));
	}
	/* Clean input (no bare CR/LF seen) must match the reference. */
	if (!a.d.bare) {
		rused = reference(in, len, ref, &rlen);
		if (a.d.state == SMTP_DATA_DONE) {
			FUZZ_ASSERT(rused == a.used);
			FUZZ_ASSERT(
			    rlen == a.outlen && memcmp(ref, a.out, rlen) == 0);
			if (!a.d.nul) {
				bool h8, b8;
				uint32_t nrcv;

				reference_scan(
				    a.out, a.outlen, &h8, &b8, &nrcv);
				FUZZ_ASSERT(
				    h8 == a.d.hdr8bit && b8 == a.d.body8bit);
				FUZZ_ASSERT(nrcv == a.d.nreceived);
			}
		} else {
			FUZZ_ASSERT(rused == 0);
		}
	}
out:
	free(a.out);
	free(b.out);
	free(ref);
	return 0;
}
