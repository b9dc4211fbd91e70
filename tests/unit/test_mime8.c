/* test_mime8.c - the 7-bit downgrade, table-driven: quoted-printable
 * lines, whole messages in and out (fed in several chunk sizes), and the
 * messages that cannot be converted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime8.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct sink {
	char buf[65536];
	size_t len;
	bool partial; /* an emit that did not end a line */
};

static void
sink_cb(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	assert_true(n > 0 && s->len + n <= sizeof(s->buf));
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	if (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n')
		s->partial = true;
}

static void
test_qp_line(void **state)
{
	static const struct {
		const char *in, *out;
	} t[] = {
	    {"", "\r\n"},
	    {"plain text", "plain text\r\n"},
	    {"a=b", "a=3Db\r\n"},
	    {"caf\xc3\xa9", "caf=C3=A9\r\n"},
	    {"trailing ", "trailing=20\r\n"},
	    {"tab\t", "tab=09\r\n"},
	    {"in side", "in side\r\n"},
	    /* 80 x: a soft break after 75 */
	    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\r\nxxxxx\r\n"},
	    /* an escape is never split by a soft break: 73 x + 3 > 75 */
	    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\xff",
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\r\n=FF\r\n"},
	};
	char out[MIME8_QP_MAX(200)];
	size_t i, n;

	(void)state;
	for (i = 0; i < N(t); i++) {
		n = mime8_qp_line(t[i].in, strlen(t[i].in), out);
		if (n != strlen(t[i].out) || memcmp(out, t[i].out, n) != 0)
			fail_msg("qp case %zu: %.*s", i, (int)n, out);
	}
}

/* Every output line of a long 8-bit line is at most 76 octets. */
static void
test_qp_line_lengths(void **state)
{
	char in[998], out[MIME8_QP_MAX(998)];
	size_t n, i, col = 0;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (char)(i % 3 == 0 ? 0xe9 : (i % 7 == 0 ? ' ' : 'a'));
	n = mime8_qp_line(in, sizeof(in), out);
	assert_true(n <= sizeof(out));
	for (i = 0; i < n; i++) {
		if (out[i] == '\r') {
			assert_true(col <= 76);
			col = 0;
			i++;
			continue;
		}
		assert_true((unsigned char)out[i] < 128);
		col++;
	}
}

static const struct {
	const char *in, *out;
	enum mime8_error err;
} msgs[] = {
    /* not MIME: the labels are added */
    {"Subject: x\r\n\r\ncaf\xc3\xa9\r\n",
        "Subject: x\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=unknown-8bit\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n",
        MIME8_OK},
    /* a simple MIME message: the 8bit label is replaced */
    {"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: 8bit\r\nSubject: y\r\n\r\n\xc3\xa9t\xc3\xa9 "
     "=\r\n",
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Subject: y\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "=C3=A9t=C3=A9 =3D\r\n",
        MIME8_OK},
    /* multipart: the 8-bit part converted, the base64 one left alone,
     * the multipart's 8bit label made 7bit, boundaries kept */
    {"MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n"
     "\tboundary=\"b1\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
     "preamble\r\n--b1\r\nContent-Type: text/plain; charset=latin1\r\n\r\n"
     "\xe9\r\n--b1\r\nContent-Type: image/png\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b1--\r\n"
     "epilogue\r\n",
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n"
        "\tboundary=\"b1\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        "preamble\r\n--b1\r\nContent-Type: text/plain; charset=latin1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--b1\r\n"
        "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
        "\r\niVBORw0KGgo=\r\n--b1--\r\nepilogue\r\n",
        MIME8_OK},
    /* nested multiparts; a folded CTE field dropped whole */
    {"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
     "Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n"
     "Content-Transfer-Encoding:\r\n 8bit\r\n\r\n\xe9\r\n--i--\r\n--o--\r\n",
        "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        "Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n"
        "--i--\r\n--o--\r\n",
        MIME8_OK},
    /* what cannot be converted */
    {"Subject: caf\xc3\xa9\r\n\r\nx\r\n", NULL, MIME8_HEADER_8BIT},
    {"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
     "Content-Type: text/plain; name=\"\xe9\"\r\n\r\nx\r\n--b--\r\n",
        NULL, MIME8_HEADER_8BIT},
    {"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n\xe9\r\n", NULL,
        MIME8_OPAQUE_8BIT},
    {"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\n"
     "Subject: inner\r\n\r\n\xe9\r\n--b--\r\n",
        NULL, MIME8_OPAQUE_8BIT},
    {"Content-Transfer-Encoding: base64\r\n\r\n\xe9\r\n", NULL,
        MIME8_OPAQUE_8BIT},
    {"Content-Type: multipart/mixed; boundary=b\r\n\r\n\xe9 preamble\r\n"
     "--b--\r\n",
        NULL, MIME8_OPAQUE_8BIT},
};

static void
run(const char *in, size_t step, struct sink *s, struct mime8 *m)
{
	size_t len = strlen(in), off, n;
	int rv = 0;

	memset(s, 0, sizeof(*s));
	mime8_init(m);
	for (off = 0; off < len && rv == 0; off += n) {
		n = len - off < step ? len - off : step;
		rv = mime8_feed(m, in + off, n, sink_cb, s);
	}
	if (rv == 0)
		mime8_finish(m, sink_cb, s);
}

static void
test_messages(void **state)
{
	static const size_t steps[] = {1, 5, 64, 100000};
	struct sink *s = malloc(sizeof(*s));
	struct mime8 m;
	size_t i, k, j;

	(void)state;
	for (i = 0; i < N(msgs); i++)
		for (k = 0; k < N(steps); k++) {
			run(msgs[i].in, steps[k], s, &m);
			if (m.err != msgs[i].err)
				fail_msg("msg %zu step %zu: error %s", i,
				    steps[k], mime8_error_text(m.err));
			if (msgs[i].out == NULL)
				continue;
			if (s->len != strlen(msgs[i].out) ||
			    memcmp(s->buf, msgs[i].out, s->len) != 0)
				fail_msg("msg %zu step %zu:\n%.*s", i, steps[k],
				    (int)s->len, s->buf);
			assert_int_equal(m.out_size, s->len);
			assert_false(s->partial);
			for (j = 0; j < s->len; j++)
				assert_true((unsigned char)s->buf[j] < 128);
		}
	free(s);
}

static void
test_limits(void **state)
{
	char *in = malloc(4096);
	struct sink *s = malloc(sizeof(*s));
	struct mime8 m;
	size_t o = 0;
	int i;

	(void)state;
	/* a line over 1000 octets */
	memcpy(in, "\r\n", 2);
	memset(in + 2, 'x', 1100);
	memcpy(in + 1102, "\r\n", 3);
	run(in, 4096, s, &m);
	assert_int_equal(m.err, MIME8_LONG_LINE);
	/* 17 nested multiparts */
	for (i = 0; i <= MIME8_DEPTH; i++)
		o += (size_t)snprintf(in + o, 4096 - o,
		    "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n"
		    "--b%d\r\n",
		    i, i);
	in[o] = '\0';
	run(in, 4096, s, &m);
	assert_int_equal(m.err, MIME8_TOO_DEEP);
	free(in);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_qp_line),
	    cmocka_unit_test(test_qp_line_lengths),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
