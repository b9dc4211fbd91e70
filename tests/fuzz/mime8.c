/* mime8.c - fuzz target: the 7-bit downgrade of node/mime8.c.  The first
 * input byte picks a chunk size; the rest is a message fed once whole and
 * once in chunks.  Invariants: both runs agree on the error and on every
 * octet of output (the converter has no memory of where reads were
 * split); out_size counts exactly what was emitted; every emitted piece
 * is whole CRLF lines; a converted message is 7-bit with lines of at most
 * 998 octets; a message of 7-bit lines passes through with its body lines
 * intact (only labels are added or changed). */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "mime8.h"

struct out {
	char *p;
	size_t len, cap;
	bool partial;
};

static void
emit_cb(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	FUZZ_ASSERT(n > 0);
	FUZZ_ASSERT(n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n');
	if (o->len + n > o->cap) {
		size_t cap = (o->len + n) * 2;
		char *np = realloc(o->p, cap);

		FUZZ_ASSERT(np != NULL);
		o->p = np;
		o->cap = cap;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static enum mime8_error
run(const char *in, size_t len, size_t step, struct out *o, uint64_t *size)
{
	struct mime8 *m = malloc(sizeof(*m));
	size_t off, n;
	int rv = 0;
	enum mime8_error e;

	FUZZ_ASSERT(m != NULL);
	mime8_init(m);
	for (off = 0; off < len && rv == 0; off += n) {
		n = len - off < step ? len - off : step;
		rv = mime8_feed(m, in + off, n, emit_cb, o);
	}
	if (rv == 0)
		mime8_finish(m, emit_cb, o);
	e = m->err;
	*size = m->out_size;
	free(m);
	return e;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out a = {NULL, 0, 0, false}, b = {NULL, 0, 0, false};
	enum mime8_error ea, eb;
	uint64_t sa, sb;
	size_t step, i, col = 0;

	if (size < 1)
		return 0;
	step = (data[0] % 64) + 1;
	ea = run((const char *)data + 1, size - 1, size, &a, &sa);
	eb = run((const char *)data + 1, size - 1, step, &b, &sb);
	FUZZ_ASSERT(ea == eb);
	FUZZ_ASSERT(sa == a.len && sb == b.len);
	if (ea == MIME8_OK) {
		FUZZ_ASSERT(a.len == b.len);
		FUZZ_ASSERT(a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
		for (i = 0; i < a.len; i++) {
			FUZZ_ASSERT((unsigned char)a.p[i] < 128);
			if (a.p[i] == '\n')
				col = 0;
			else if (a.p[i] != '\r')
				FUZZ_ASSERT(++col <= 998);
		}
	}
	free(a.p);
	free(b.p);
	return 0;
}
