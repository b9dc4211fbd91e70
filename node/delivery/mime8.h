/* mime8.h - converts an 8-bit message to 7 bit for a next hop that does
 * not offer 8BITMIME (RFC 6152 3, RFC 1652; quoted-printable, RFC 2045
 * 6.7).  Pure and streaming: the message goes in as it comes from the
 * spool (CRLF lines of at most 1000 octets, RFC 5321 4.5.3.1.6), the 7-bit
 * message comes out through a callback, whole lines at a time; memory is
 * bounded (one line, one header field, the boundary stack).
 *
 * What is converted (docs/delivery.md, "8BITMIME"): every leaf entity
 * (not multipart/..., not message/...) whose Content-Transfer-Encoding is
 * absent, 7bit, 8bit or binary is re-encoded as quoted-printable and its
 * field rewritten; a multipart's 8bit/binary label becomes 7bit; a
 * top-level message without MIME-Version gets "MIME-Version: 1.0" and,
 * without a Content-Type, "text/plain; charset=unknown-8bit" (RFC 1428).
 * What cannot be converted fails the whole message, before a byte is
 * sent (callers run a dry pass first): 8-bit octets in any header (that
 * needs SMTPUTF8 or RFC 2047 words the sender did not write), inside a
 * message/... entity or a preamble/epilogue, or in a part that already
 * claims quoted-printable/base64; nesting deeper than MIME8_DEPTH; an
 * over-long line or header field. */
#ifndef SLUICE_MIME8_H
#define SLUICE_MIME8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME8_LINE_MAX  1000 /* octets of a line incl. CRLF */
#define MIME8_DEPTH     16   /* nested multiparts */
#define MIME8_FIELD_MAX 2048 /* a Content-Type or -Transfer-Encoding field */
#define MIME8_BND_MAX   70   /* RFC 2046 5.1.1 */

enum mime8_error {
	MIME8_OK = 0,
	MIME8_HEADER_8BIT, /* 8-bit octets in a header */
	MIME8_OPAQUE_8BIT, /* in message/..., an encoded part, pre/epilogue */
	MIME8_TOO_DEEP,    /* more than MIME8_DEPTH nested multiparts */
	MIME8_LONG_LINE,   /* a line over MIME8_LINE_MAX */
	MIME8_LONG_FIELD,  /* a Content-* field over MIME8_FIELD_MAX */
};
const char *mime8_error_text(enum mime8_error);

/* Output: complete CRLF lines, n > 0. */
typedef void (*mime8_emit_fn)(void *arg, const char *p, size_t n);

struct mime8_frame {
	char bnd[MIME8_BND_MAX + 1];
	size_t bndlen;
	bool digest; /* multipart/digest: parts default to message/rfc822 */
};

struct mime8 {
	enum mime8_error err;
	uint64_t out_size; /* octets emitted so far */
	/* the line being assembled */
	char line[MIME8_LINE_MAX];
	size_t linelen;
	bool cr; /* the previous octet was CR */
	/* where we are */
	bool in_header; /* the header block of the current entity */
	bool top;       /* ... and it is the message's own */
	enum { MIME8_QP, MIME8_PASS } body; /* the current entity's body */
	int depth;                          /* open multiparts */
	struct mime8_frame stack[MIME8_DEPTH];
	/* the current entity's header block */
	enum { MIME8_F_OTHER, MIME8_F_CTYPE, MIME8_F_CTE } field;
	char ctype[MIME8_FIELD_MAX]; /* Content-Type value, unfolded */
	size_t ctypelen;
	char cte[MIME8_FIELD_MAX]; /* the Content-Transfer-Encoding field */
	size_t ctelen;
	bool has_ctype, has_version, cte_dropped;
	char cte_kept[32]; /* value of a kept (encoded) CTE, lower case */
};

void mime8_init(struct mime8 *);
/* Feeds message octets; 0, or -1 with m->err set (then stop: the
 * output so far is not a valid message). */
int mime8_feed(
    struct mime8 *, const char *p, size_t n, mime8_emit_fn, void *arg);
/* The end of the message: a last line without CRLF is completed. */
int mime8_finish(struct mime8 *, mime8_emit_fn, void *arg);

/* One line (without CRLF) as quoted-printable, soft breaks keeping each
 * output line at most 76 octets, CRLF at the end.  out must hold
 * MIME8_QP_MAX(len) octets; returns the length. */
#define MIME8_QP_MAX(len) ((len)*3 + ((len)*3 / 75 + 1) * 3 + 2)
size_t mime8_qp_line(const char *in, size_t len, char *out);

#endif
