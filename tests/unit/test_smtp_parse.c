/* test_smtp_parse.c - table tests of node/smtp_parse.c: command lines,
 * paths and ESMTP parameters, the DATA state machine against every
 * end-of-data smuggling variant, Message-ID capture, SASL decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------- command lines */

static void
test_cmd_line(void **state)
{
	static const struct {
		const char *in;
		int rv;
		size_t linelen;
		bool bad;
	} t[] = {
	    {"EHLO x\r\n", 1, 6, false},
	    {"EHLO x\r\nMAIL", 1, 6, false},
	    {"EHLO x", 0, 0, false},
	    {"EHLO x\r", 0, 0, false},
	    {"EHLO x\n", 1, 6, true},    /* bare LF end */
	    {"EHLO\rx\r\n", 1, 6, true}, /* bare CR inside */
	    {"EH\0LO\r\n", 1, 5, true},  /* NUL */
	    {"\r\n", 1, 0, false},
	};
	size_t i, used, len;
	bool bad, ended;
	int rv;

	(void)state;
	for (i = 0; i < N(t); i++) {
		len = strlen(t[i].in);
		if (i == 6)
			len = 7;
		rv = smtp_cmd_line(
		    t[i].in, len, SMTP_CMD_MAX, &used, &len, &bad, &ended);
		assert_int_equal(rv, t[i].rv);
		if (rv == 1) {
			assert_int_equal(len, t[i].linelen);
			assert_int_equal(bad, t[i].bad);
		}
	}
}

static void
test_cmd_line_long(void **state)
{
	char buf[2000];
	size_t used, len;
	bool bad, ended;

	(void)state;
	/* 510 octets + CRLF = 512: the RFC 5321 4.5.3.1.4 maximum */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf + 510, "\r\n", 2);
	assert_int_equal(
	    smtp_cmd_line(buf, 512, SMTP_CMD_MAX, &used, &len, &bad, &ended),
	    1);
	assert_int_equal(len, 510);
	/* 511 + CRLF: too long; discarded through the LF */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf + 511, "\r\nNOOP\r\n", 8);
	assert_int_equal(
	    smtp_cmd_line(buf, 519, SMTP_CMD_MAX, &used, &len, &bad, &ended),
	    -1);
	assert_true(ended);
	assert_int_equal(used, 513);
	/* no LF at all yet: everything seen is discarded, not ended */
	memset(buf, 'a', sizeof(buf));
	assert_int_equal(
	    smtp_cmd_line(buf, 1500, SMTP_CMD_MAX, &used, &len, &bad, &ended),
	    -1);
	assert_false(ended);
	assert_int_equal(used, 1500);
	/* SASL lines may be longer */
	memcpy(buf + 1498, "\r\n", 2);
	assert_int_equal(
	    smtp_cmd_line(buf, 1500, SMTP_SASL_MAX, &used, &len, &bad, &ended),
	    1);
}

static void
test_cmd_parse(void **state)
{
	static const struct {
		const char *in;
		enum smtp_verb verb;
		const char *arg;
	} t[] = {
	    {"EHLO client.test", SMTP_EHLO, "client.test"},
	    {"ehlo client.test", SMTP_EHLO, "client.test"},
	    {"HeLo x", SMTP_HELO, "x"},
	    {"MAIL FROM:<a@b>", SMTP_MAIL, "FROM:<a@b>"},
	    {"rcpt to:<a@b>", SMTP_RCPT, "to:<a@b>"},
	    {"DATA", SMTP_DATA, ""},
	    {"QUIT", SMTP_QUIT, ""},
	    {"STARTTLS", SMTP_STARTTLS, ""},
	    {"AUTH PLAIN AAAA", SMTP_AUTH, "PLAIN AAAA"},
	    {"BDAT 10 LAST", SMTP_BDAT, "10 LAST"},
	    {"DATAX", SMTP_UNKNOWN, ""},
	    {"GET / HTTP/1.0", SMTP_UNKNOWN, "/ HTTP/1.0"},
	    {"", SMTP_UNKNOWN, ""},
	};
	struct smtp_cmd c;
	size_t i;

	(void)state;
	for (i = 0; i < N(t); i++) {
		smtp_cmd_parse(t[i].in, &c);
		assert_int_equal(c.verb, t[i].verb);
		assert_string_equal(c.arg, t[i].arg);
	}
}

/* ------------------------------------------------------------ paths */

static void
test_mail(void **state)
{
	static const struct {
		const char *arg;
		int code; /* 0: accepted */
		const char *addr;
		unsigned flags;
		int64_t size;
	} t[] = {
	    {"FROM:<a@example.com>", 0, "a@example.com", 0, -1},
	    {"from:<a@example.com>", 0, "a@example.com", 0, -1},
	    {"FROM: <a@example.com>", 0, "a@example.com", 0, -1},
	    {"FROM:<>", 0, "", 0, -1},
	    {"FROM:<a@example.com> SIZE=1000", 0, "a@example.com", 0, 1000},
	    {"FROM:<a@example.com> BODY=8BITMIME SMTPUTF8", 0, "a@example.com",
	        0, -1},
	    {"FROM:<a@example.com> BODY=7BIT", 0, "a@example.com", 0, -1},
	    {"FROM:<a@example.com> AUTH=<>", 0, "a@example.com", 0, -1},
	    {"FROM:<a@[192.0.2.1]>", 0, "a@[192.0.2.1]", 0, -1},
	    {"FROM:<\"a b\"@example.com>", 0, "\"a b\"@example.com", 0, -1},
	    {"FROM:<@r1,@r2:u@example.com>", 0, "u@example.com",
	        SMTP_ADDR_ROUTE, -1},
	    {"FROM:<u%v@example.com>", 0, "u%v@example.com", SMTP_ADDR_PERCENT,
	        -1},
	    {"FROM:<a!b@example.com>", 0, "a!b@example.com", SMTP_ADDR_BANG,
	        -1},
	    {"FROM:<\"a@b\"@example.com>", 0, "\"a@b\"@example.com",
	        SMTP_ADDR_QUOTED_AT, -1},
	    {"FROM:<j\xc3\xb6rg@example.com>", 0, "j\xc3\xb6rg@example.com",
	        SMTP_ADDR_UTF8, -1},
	    {"FROM:a@example.com", 501, NULL, 0, 0},
	    {"FROM:<a@example.com", 501, NULL, 0, 0},
	    {"FROM:<abc", 501, NULL, 0, 0}, /* NUL is not atext */
	    {"FROM:<a@>", 501, NULL, 0, 0},
	    {"FROM:<@example.com>", 501, NULL, 0, 0},
	    {"FROM:<a..b@example.com>", 501, NULL, 0, 0},
	    {"FROM:<a@exa mple.com>", 501, NULL, 0, 0},
	    {"FROM:<a@-.com.>", 501, NULL, 0, 0},
	    {"FROM:<a>", 501, NULL, 0, 0},
	    {"TO:<a@example.com>", 501, NULL, 0, 0},
	    {"FROM:<a@example.com> SIZE=abc", 501, NULL, 0, 0},
	    {"FROM:<a@example.com> SIZE=", 501, NULL, 0, 0},
	    {"FROM:<a@example.com>x", 501, NULL, 0, 0},
	    {"FROM:<a@example.com> BODY=BINARYMIME", 555, NULL, 0, 0},
	    {"FROM:<a@example.com> RET=FULL", 555, NULL, 0, 0},
	    {"FROM:<a@example.com> SMTPUTF8=yes", 555, NULL, 0, 0},
	};
	struct smtp_mail_params mp;
	struct smtp_path p;
	struct smtp_reply err;
	size_t i;
	int rv;

	(void)state;
	for (i = 0; i < N(t); i++) {
		memset(&err, 0, sizeof(err));
		rv = smtp_parse_mail(t[i].arg, &p, &mp, &err);
		if (t[i].code == 0) {
			assert_int_equal(rv, 0);
			assert_string_equal(p.addr, t[i].addr);
			assert_int_equal(p.flags, t[i].flags);
			assert_int_equal(mp.size, t[i].size);
		} else {
			if (rv != -1 || err.code != t[i].code)
				fail_msg("case %zu %s: rv %d code %d", i,
				    t[i].arg, rv, err.code);
		}
	}
	assert_int_equal(smtp_parse_mail("FROM:<a@b.c> BODY=8BITMIME "
	                                 "SMTPUTF8 SIZE=5",
	                     &p, &mp, &err),
	    0);
	assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
	assert_true(mp.smtputf8);
	assert_int_equal(mp.size, 5);
}

static void
test_mail_long(void **state)
{
	char arg[600], local[80];
	struct smtp_mail_params mp;
	struct smtp_path p;
	struct smtp_reply err;

	(void)state;
	memset(local, 'a', 65);
	local[65] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<%s@example.com>", local);
	assert_int_equal(smtp_parse_mail(arg, &p, &mp, &err), -1);
	local[64] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<%s@example.com>", local);
	assert_int_equal(smtp_parse_mail(arg, &p, &mp, &err), 0);
}

static void
test_rcpt_and_tricks(void **state)
{
	static const struct {
		const char *arg;
		bool trusted;
		bool utf8;
		int code; /* 0: ok */
		const char *enh;
	} t[] = {
	    {"TO:<b@example.net>", false, false, 0, NULL},
	    {"to:<b@example.net>", true, false, 0, NULL},
	    {"TO:<@relay.example:b@example.net>", false, false, 553, "5.1.3"},
	    {"TO:<@relay.example:b@example.net>", true, false, 0, NULL},
	    {"TO:<b%victim.example@example.net>", false, false, 553, "5.1.3"},
	    {"TO:<victim.example!b@example.net>", false, false, 553, "5.1.3"},
	    {"TO:<\"b@victim.example\"@example.net>", false, false, 553,
	        "5.1.3"},
	    {"TO:<b%victim.example@example.net>", true, false, 0, NULL},
	    {"TO:<j\xc3\xb6rg@example.net>", true, false, 553, "5.6.7"},
	    {"TO:<j\xc3\xb6rg@example.net>", true, true, 0, NULL},
	    {"TO:<>", true, false, 501, "5.1.3"},
	    {"TO:<b@example.net> NOTIFY=NEVER", true, false, 555, "5.5.4"},
	    {"TO:b@example.net", true, false, 501, "5.1.3"},
	};
	struct smtp_path p;
	struct smtp_reply err;
	size_t i;
	int rv;

	(void)state;
	for (i = 0; i < N(t); i++) {
		memset(&err, 0, sizeof(err));
		rv = smtp_parse_rcpt(t[i].arg, &p, &err);
		if (rv == 0)
			rv = smtp_path_check(&p, t[i].trusted, t[i].utf8, &err);
		if (t[i].code == 0) {
			if (rv != 0)
				fail_msg("case %zu %s: %d %s", i, t[i].arg,
				    err.code, err.text);
			continue;
		}
		if (rv != -1 || err.code != t[i].code ||
		    strcmp(err.enhanced, t[i].enh) != 0)
			fail_msg("case %zu %s: rv %d code %d", i, t[i].arg, rv,
			    err.code);
	}
}

/* ------------------------------------------------------------- DATA */

struct data_case {
	const char *in;
	size_t inlen; /* 0: strlen */
	bool done;
	const char *out; /* un-stuffed output */
	size_t rest;     /* input left after the end */
	bool bare, nul;
};

static const struct data_case data_cases[] = {
    /* the one true end of data */
    {"Subject: x\r\n\r\nhi\r\n.\r\n", 0, true, "Subject: x\r\n\r\nhi\r\n", 0,
        false, false},
    {".\r\n", 0, true, "", 0, false, false},
    {"hi\r\n.\r\nMAIL FROM:<a@b>\r\n", 0, true, "hi\r\n", 17, false, false},
    /* dot-stuffing */
    {"..x\r\n.\r\n", 0, true, ".x\r\n", 0, false, false},
    {"..\r\n.\r\n", 0, true, ".\r\n", 0, false, false},
    {"a.\r\n.b\r\n.\r\n", 0, true, "a.\r\nb\r\n", 0, false, false},
    /* smuggling variants: never an end, always flagged */
    {"hi\n.\nMAIL FROM:<x@y>\r\n", 0, false, NULL, 0, true, false},
    {"hi\r.\rMAIL FROM:<x@y>\r\n", 0, false, NULL, 0, true, false},
    {"hi\n.\r\nMAIL FROM:<x@y>\r\n", 0, false, NULL, 0, true, false},
    {"hi\r\n.\nMAIL FROM:<x@y>\r\n", 0, false, NULL, 0, true, false},
    {"hi\r\n.\rMAIL FROM:<x@y>\r\n", 0, false, NULL, 0, true, false},
    {"hi\r.\r\nMAIL FROM:<x@y>\r\n", 0, false, NULL, 0, true, false},
    {"hi\r\r\n.\r\n", 0, true, NULL, 0, true, false},
    {"hi\n\r\n.\r\n", 0, true, NULL, 0, true, false},
    /* the real end after a smuggling attempt */
    {"hi\n.\nX\r\n.\r\n", 0, true, NULL, 0, true, false},
    /* NUL */
    {"a\0b\r\n.\r\n", 8, true, NULL, 0, false, true},
};

static void
check_data(const struct data_case *c, size_t step)
{
	size_t len = c->inlen ? c->inlen : strlen(c->in), off = 0, n, olen,
	       used, total = 0;
	char out[4096], *acc = calloc(1, len * 2 + 2);
	struct smtp_data d;

	smtp_data_init(&d);
	while (off < len && d.state != SMTP_DATA_DONE) {
		n = len - off < step ? len - off : step;
		used = smtp_data_feed(&d, c->in + off, n, out, &olen);
		memcpy(acc + total, out, olen);
		total += olen;
		off += used;
	}
	if ((d.state == SMTP_DATA_DONE) != c->done)
		fail_msg("case %s step %zu: done %d", c->in, step,
		    d.state == SMTP_DATA_DONE);
	if (d.bare != c->bare)
		fail_msg("case %s step %zu: bare %d", c->in, step, d.bare);
	assert_int_equal(d.nul, c->nul);
	if (c->done)
		assert_int_equal(len - off, c->rest);
	if (c->out != NULL) {
		assert_int_equal(total, strlen(c->out));
		assert_memory_equal(acc, c->out, total);
		assert_int_equal(d.size, total);
	}
	free(acc);
}

static void
test_data(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(data_cases); i++) {
		check_data(&data_cases[i], 1); /* byte by byte */
		check_data(&data_cases[i], 3);
		check_data(&data_cases[i], 4096); /* all at once */
	}
}

/* The same cases in the body (behind an empty header block), where runs
 * of ordinary octets take the block-copy path. */
static void
test_data_in_body(void **state)
{
	static const size_t steps[] = {1, 3, 4096};
	struct data_case c;
	char in[512], out[512];
	size_t i, k, len;

	(void)state;
	for (i = 0; i < N(data_cases); i++) {
		c = data_cases[i];
		len = c.inlen ? c.inlen : strlen(c.in);
		in[0] = '\r';
		in[1] = '\n';
		memcpy(in + 2, c.in, len);
		c.in = in;
		c.inlen = len + 2;
		if (c.out != NULL) {
			snprintf(out, sizeof(out), "\r\n%s", data_cases[i].out);
			c.out = out;
		}
		for (k = 0; k < N(steps); k++)
			check_data(&c, steps[k]);
	}
}

/* The content scan of the same pass: 8-bit octets in the header block or
 * the body, Received: fields in the header block (RFC 5321 6.3). */
static const struct {
	const char *in;
	bool hdr8, body8;
	uint32_t nreceived;
} scan_cases[] = {
    {"Subject: x\r\n\r\nhi\r\n.\r\n", false, false, 0},
    {"Received: a\r\nreceived: b\r\nRECEIVED:c\r\n\r\n.\r\n", false, false, 3},
    /* folded: one field */
    {"Received: from a\r\n\tby b\r\n\r\nx\r\n.\r\n", false, false, 1},
    /* not Received: */
    {"X-Received: a\r\nReceived-SPF: p\r\nReceived a\r\nReceive: x\r\n"
     "Received\x1a x\r\n\r\n.\r\n",
        false, false, 0},
    {" Received: a\r\n\r\n.\r\n", false, false, 0},
    /* after the empty line it is body */
    {"A: b\r\n\r\nReceived: a\r\nReceived: b\r\n.\r\n", false, false, 0},
    /* no body at all: every line is a header */
    {"Received: a\r\nReceived: b\r\n.\r\n", false, false, 2},
    /* a stuffed dot is not content: "..Received:" is ".Received:" */
    {"..Received: a\r\n\r\n.\r\n", false, false, 0},
    /* 8-bit where */
    {"Subject: caf\xc3\xa9\r\n\r\nhi\r\n.\r\n", true, false, 0},
    {"Subject: x\r\n\r\ncaf\xc3\xa9\r\n.\r\n", false, true, 0},
    {"Subject: \xff\r\n\r\n\x80\r\n.\r\n", true, true, 0},
    {"Received: \xe9\r\n\r\n.\r\n", true, false, 1},
    /* a line of spaces is not the empty line */
    {"A: b\r\n \r\nReceived: x\r\n\r\n.\r\n", false, false, 1},
};

static void
test_data_scan(void **state)
{
	char out[4096];
	size_t i, step, off, len, used, olen;
	struct smtp_data d;
	static const size_t steps[] = {1, 2, 3, 7, 4096};

	(void)state;
	for (i = 0; i < N(scan_cases); i++)
		for (step = 0; step < N(steps); step++) {
			len = strlen(scan_cases[i].in);
			smtp_data_init(&d);
			for (off = 0; off < len && d.state != SMTP_DATA_DONE;
			     off += used) {
				size_t n = len - off < steps[step]
				               ? len - off
				               : steps[step];

				used = smtp_data_feed(
				    &d, scan_cases[i].in + off, n, out, &olen);
			}
			assert_int_equal(d.state, SMTP_DATA_DONE);
			if (d.hdr8bit != scan_cases[i].hdr8 ||
			    d.body8bit != scan_cases[i].body8 ||
			    d.nreceived != scan_cases[i].nreceived)
				fail_msg(
				    "scan case %zu step %zu: hdr8 %d body8 "
				    "%d nreceived %u",
				    i, steps[step], d.hdr8bit, d.body8bit,
				    d.nreceived);
		}
}

/* Body lines: the length limit and 8-bit octets anywhere in a run. */
static void
test_data_body_runs(void **state)
{
	char in[1200], out[1300];
	struct smtp_data d;
	size_t olen, used, n, off, step, pos;

	(void)state;
	for (step = 1; step <= 4096; step *= 8)
		for (n = 997; n <= 999; n++) {
			/* "\r\n" + n octets + CRLF.CRLF */
			memcpy(in, "\r\n", 2);
			memset(in + 2, 'x', n);
			memcpy(in + 2 + n, "\r\n.\r\n", 5);
			smtp_data_init(&d);
			for (off = 0; off < n + 7; off += used)
				used = smtp_data_feed(&d, in + off,
				    n + 7 - off < step ? n + 7 - off : step,
				    out, &olen);
			assert_int_equal(d.state, SMTP_DATA_DONE);
			assert_int_equal(d.toolong, n > 998);
			assert_false(d.body8bit);
			assert_int_equal(d.size, n + 4);
		}
	for (pos = 2; pos < 70; pos += 11) {
		memcpy(in, "\r\n", 2);
		memset(in + 2, 'y', 70);
		in[pos] = (char)0xe9;
		memcpy(in + 72, "\r\n.\r\n", 5);
		smtp_data_init(&d);
		used = smtp_data_feed(&d, in, 77, out, &olen);
		assert_int_equal(used, 77);
		assert_true(d.body8bit);
		assert_false(d.hdr8bit);
		assert_int_equal(olen, 74);
		assert_memory_equal(out, in, 74);
	}
	/* A NUL, bare LF or bare CR at every offset of the eight-octet
	 * scan: each stops the run and is flagged. */
	for (pos = 2; pos < 40; pos++)
		for (n = 0; n < 3; n++) {
			memcpy(in, "\r\n", 2);
			memset(in + 2, 'y', 70);
			in[pos] = "\0\n\r"[n];
			memcpy(in + 72, "\r\n.\r\n", 5);
			smtp_data_init(&d);
			used = smtp_data_feed(&d, in, 77, out, &olen);
			assert_int_equal(used, 77);
			assert_int_equal(d.state, SMTP_DATA_DONE);
			assert_int_equal(d.nul, n == 0);
			assert_int_equal(d.bare, n > 0);
			assert_false(d.body8bit);
		}
}

/* Random data, fed whole, octet by octet and in odd chunks, must give the
 * same output and the same verdicts: the chunked feeds never reach the
 * sixteen-octet scan, so this checks it against the octet path. */
static uint32_t rnd_state = 12345;

static uint32_t
rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) & 0xffffff;
}

static size_t
random_data(char *buf, size_t cap)
{
	static const char odd[] = {'.', '\r', '\n', '\0', (char)0xe9, 'R'};
	size_t o = 0, line, k, want;

	if (rnd() % 3 == 0) {
		static const char hdr[] = "Received: x\r\nSubject: y\r\n\r\n";
		memcpy(buf, hdr, sizeof(hdr) - 1);
		o = sizeof(hdr) - 1;
	}
	while (o + 1200 < cap && rnd() % 40 != 0) {
		want = rnd() % 8 == 0 ? rnd() % 1100 : rnd() % 120;
		if (rnd() % 6 == 0)
			buf[o++] = '.';
		for (line = 0; line < want; line++) {
			k = rnd() % 200;
			buf[o++] = k < 6 ? odd[k] : (char)('a' + k % 26);
		}
		buf[o++] = '\r';
		buf[o++] = '\n';
	}
	memcpy(buf + o, "\r\n.\r\n", 5);
	return o + 5;
}

struct data_run {
	struct smtp_data d;
	size_t used, olen;
	char out[70000];
};

static void
feed_steps(struct data_run *r, const char *in, size_t len, size_t step)
{
	size_t off, n, used, olen;

	smtp_data_init(&r->d);
	r->olen = 0;
	for (off = 0; off < len && r->d.state != SMTP_DATA_DONE; off += used) {
		n = step == 0 ? 1 + rnd() % 40 : step;
		n = len - off < n ? len - off : n;
		used =
		    smtp_data_feed(&r->d, in + off, n, r->out + r->olen, &olen);
		r->olen += olen;
	}
	r->used = off;
}

static void
test_data_random(void **state)
{
	static char in[64000];
	static struct data_run ref, got;
	static const size_t steps[] = {0, 7, 16, 17, 64000};
	size_t len, i, j;

	(void)state;
	for (i = 0; i < 300; i++) {
		len = random_data(in, sizeof(in));
		feed_steps(&ref, in, len, 1);
		for (j = 0; j < N(steps); j++) {
			feed_steps(&got, in, len, steps[j]);
			if (got.used != ref.used || got.olen != ref.olen ||
			    memcmp(got.out, ref.out, ref.olen) != 0 ||
			    got.d.state != ref.d.state ||
			    got.d.size != ref.d.size ||
			    got.d.bare != ref.d.bare ||
			    got.d.nul != ref.d.nul ||
			    got.d.toolong != ref.d.toolong ||
			    got.d.in_body != ref.d.in_body ||
			    got.d.hdr8bit != ref.d.hdr8bit ||
			    got.d.body8bit != ref.d.body8bit ||
			    got.d.nreceived != ref.d.nreceived)
				fail_msg(
				    "random case %zu (%zu octets), step %zu "
				    "differs from octet by octet",
				    i, len, steps[j]);
		}
	}
}

static void
test_data_long_line(void **state)
{
	char in[1100], out[1200];
	struct smtp_data d;
	size_t olen;

	(void)state;
	/* 998 octets + CRLF is fine (RFC 5321 4.5.3.1.6) */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	smtp_data_init(&d);
	smtp_data_feed(&d, in, 1003, out, &olen);
	assert_int_equal(d.state, SMTP_DATA_DONE);
	assert_false(d.toolong);
	/* 999: too long, still read to the end */
	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	smtp_data_init(&d);
	smtp_data_feed(&d, in, 1004, out, &olen);
	assert_int_equal(d.state, SMTP_DATA_DONE);
	assert_true(d.toolong);
}

static void
test_message_id(void **state)
{
	static const struct {
		const char *msg;
		const char *id;
	} t[] = {
	    {"Message-ID: <a@b>\r\n\r\nbody", "<a@b>"},
	    {"Subject: x\r\nmessage-id:<a@b>\r\n\r\n", "<a@b>"},
	    {"Message-ID:\r\n <folded@b>\r\nX: y\r\n\r\n", "<folded@b>"},
	    {"Subject: x\r\n\r\nMessage-ID: <in-body@b>\r\n", NULL},
	    {"Subject: x\r\n\r\n", NULL},
	};
	char out[64];
	size_t i;
	bool found;

	(void)state;
	for (i = 0; i < N(t); i++) {
		found = smtp_message_id(
		    t[i].msg, strlen(t[i].msg), out, sizeof(out));
		assert_int_equal(found, t[i].id != NULL);
		if (found)
			assert_string_equal(out, t[i].id);
	}
}

/* ------------------------------------------------------------- SASL */

static void
test_base64(void **state)
{
	static const struct {
		const char *b64;
		const char *plain; /* NULL: invalid */
		size_t len;
	} t[] = {
	    {"", "", 0},
	    {"YQ==", "a", 1},
	    {"YWI=", "ab", 2},
	    {"YWJj", "abc", 3},
	    {"AHVzZXIAcGFzcw==", "\0user\0pass", 10},
	    {"YQ=", NULL, 0},
	    {"Y===", NULL, 0},
	    {"YQ==YQ==", NULL, 0},
	    {"YW J", NULL, 0},
	    {"!!!!", NULL, 0},
	    {"=YWJ", NULL, 0},
	};
	char out[64], enc[64];
	size_t i, olen;
	int rv;

	(void)state;
	for (i = 0; i < N(t); i++) {
		rv = smtp_b64_decode(
		    t[i].b64, strlen(t[i].b64), out, sizeof(out), &olen);
		if (t[i].plain == NULL) {
			if (rv != -1)
				fail_msg("case %zu %s accepted", i, t[i].b64);
			continue;
		}
		assert_int_equal(rv, 0);
		assert_int_equal(olen, t[i].len);
		assert_memory_equal(out, t[i].plain, olen);
		smtp_b64_encode(t[i].plain, t[i].len, enc);
		assert_string_equal(enc, t[i].b64);
	}
	/* output ceiling */
	assert_int_equal(smtp_b64_decode("YWJj", 4, out, 2, &olen), -1);
}

static void
test_sasl_plain(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *user; /* NULL: refused */
		const char *pass;
	} t[] = {
	    {"\0app1\0secret", 12, "app1", "secret"},
	    {"app1\0app1\0secret", 16, "app1", "secret"},
	    {"admin\0app1\0secret", 17, NULL, NULL}, /* proxy authz */
	    {"\0app1\0", 6, NULL, NULL},             /* empty password */
	    {"\0\0secret", 8, NULL, NULL},           /* empty user */
	    {"app1secret", 10, NULL, NULL}, {"\0app1", 5, NULL, NULL},
	    {"\0app1\0sec\0ret", 13, NULL, NULL}, /* NUL in password */
	};
	char user[SMTP_SASL_USER_MAX], pass[SMTP_SASL_PASS_MAX];
	size_t i;
	int rv;

	(void)state;
	for (i = 0; i < N(t); i++) {
		rv = smtp_sasl_plain(
		    t[i].in, t[i].len, user, sizeof(user), pass, sizeof(pass));
		if (t[i].user == NULL) {
			if (rv != -1)
				fail_msg("case %zu accepted", i);
			continue;
		}
		assert_int_equal(rv, 0);
		assert_string_equal(user, t[i].user);
		assert_string_equal(pass, t[i].pass);
	}
	assert_int_equal(
	    smtp_sasl_login_item("app1", 4, user, sizeof(user)), 0);
	assert_int_equal(
	    smtp_sasl_login_item("a\0b", 3, user, sizeof(user)), -1);
	assert_int_equal(smtp_sasl_login_item("", 0, user, sizeof(user)), -1);
	assert_int_equal(smtp_sasl_login_item("abcdef", 6, user, 4), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cmd_line),
	    cmocka_unit_test(test_cmd_line_long),
	    cmocka_unit_test(test_cmd_parse),
	    cmocka_unit_test(test_mail),
	    cmocka_unit_test(test_mail_long),
	    cmocka_unit_test(test_rcpt_and_tricks),
	    cmocka_unit_test(test_data),
	    cmocka_unit_test(test_data_in_body),
	    cmocka_unit_test(test_data_body_runs),
	    cmocka_unit_test(test_data_long_line),
	    cmocka_unit_test(test_data_scan),
	    cmocka_unit_test(test_data_random),
	    cmocka_unit_test(test_message_id),
	    cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_sasl_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
