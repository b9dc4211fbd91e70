/* smtp_parse.h - pure parsers of inbound SMTP: command lines, paths and
 * ESMTP parameters, the DATA byte stream (end-of-data, dot-unstuffing,
 * smuggling defences), SASL PLAIN/LOGIN payloads and the Message-ID
 * header.  No I/O, no allocation: data and ceilings in, verdicts out, so
 * tests/unit/test_smtp_parse.c reaches every branch.  Called by
 * smtp_session.c only. */
#ifndef SLUICE_SMTP_PARSE_H
#define SLUICE_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp_reply.h"

/* RFC 5321 4.5.3.1.4: command line 512 octets including CRLF. */
#define SMTP_CMD_MAX 512
/* RFC 5321 4.5.3.1.6: text line 1000 octets including CRLF. */
#define SMTP_TEXT_MAX 1000
/* RFC 5321 4.5.3.1.3: path 256 octets including the angle brackets. */
#define SMTP_PATH_MAX 256
/* SASL responses (base64 of user + password) have a ceiling too. */
#define SMTP_SASL_MAX 12288

/* ---------------------------------------------------------- commands */

enum smtp_verb {
	SMTP_UNKNOWN = 0,
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_HELP,
	SMTP_STARTTLS,
	SMTP_AUTH,
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg; /* after the verb and one space; "" if none */
};

const char *smtp_verb_name(enum smtp_verb);

/* Line assembly for commands and SASL responses.  buf holds len bytes of
 * input; looks for the first LF within max octets (SMTP_CMD_MAX, or
 * SMTP_SASL_MAX for AUTH lines, RFC 4954 4).  Returns:
 *   0  no complete line yet (need more input, *used = 0)
 *   1  a line: *used bytes consumed (incl. the line end), *linelen the
 *      length without CRLF; *bad is set when the line was not a clean
 *      CRLF-terminated line (bare LF end, bare CR or NUL inside).
 *  -1  over-long: *used bytes are to be discarded (through the next LF
 *      if present, else everything seen); answer 500 5.5.2 once the
 *      line's end has been discarded (*used covers it when ended). */
int smtp_cmd_line(const char *buf, size_t len, size_t max, size_t *used,
    size_t *linelen, bool *bad, bool *ended);

/* Splits a line (no CRLF, NUL-terminated) into verb and argument.
 * Verbs are case-insensitive (RFC 5321 2.4). */
void smtp_cmd_parse(const char *line, struct smtp_cmd *);

/* ------------------------------------------------------------- paths */

/* Address tricks an untrusted client must not use (open-relay history). */
#define SMTP_ADDR_ROUTE     0x01 /* <@a,@b:u@c> source route */
#define SMTP_ADDR_PERCENT   0x02 /* u%v@w percent hack */
#define SMTP_ADDR_BANG      0x04 /* a!b@c UUCP bang path */
#define SMTP_ADDR_QUOTED_AT 0x08 /* "a@b"@c quoted local part with @ */
#define SMTP_ADDR_UTF8      0x10 /* non-ASCII octets (RFC 6531) */

struct smtp_path {
	char addr[SMTP_PATH_MAX]; /* "" for <>; no route */
	unsigned flags;           /* SMTP_ADDR_* */
};

enum smtp_body { SMTP_BODY_NONE = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_mail_params {
	int64_t size; /* SIZE=, -1 if absent */
	enum smtp_body body;
	bool smtputf8;
};

/* "FROM:<path> params" (leading "FROM:" included, case-insensitive; one
 * optional space after the colon is tolerated).  0 or -1 with *err. */
int smtp_parse_mail(const char *arg, struct smtp_path *,
    struct smtp_mail_params *, struct smtp_reply *err);
/* "TO:<path> [params]".  The null path is refused; no RCPT parameters
 * are supported (none advertised).  0 or -1 with *err. */
int smtp_parse_rcpt(
    const char *arg, struct smtp_path *, struct smtp_reply *err);
/* The verdict on SMTP_ADDR_* flags for a client that is neither in a
 * policy network nor authenticated: 0 or -1 with *err (553 5.1.3).
 * smtputf8: the transaction declared SMTPUTF8. */
int smtp_path_check(const struct smtp_path *, bool trusted, bool smtputf8,
    struct smtp_reply *err);

/* -------------------------------------------------------------- DATA */

enum smtp_data_state {
	SMTP_DATA_BOL = 0, /* at the start of a line */
	SMTP_DATA_DOT,     /* "." at the start of a line */
	SMTP_DATA_DOT_CR,  /* ".\r" at the start of a line */
	SMTP_DATA_MID,     /* inside a line */
	SMTP_DATA_CR,      /* "\r" inside a line */
	SMTP_DATA_DONE,    /* saw CRLF.CRLF */
};

/* The DATA reader: a byte-level state machine.  Only <CRLF>.<CRLF> ends
 * the data (the DATA command's CRLF counts as the first); <LF>.<LF>,
 * <CR>.<CR>, <LF>.<CR><LF> and friends are content and flagged bare, so
 * the session refuses the message after reading to the real end.  Nothing
 * is normalised: a refused message is never queued.
 *
 * The same pass notes what the relay needs to know about the content:
 * octets over 127 in the header block or in the body (8BITMIME, RFC 6152,
 * whether or not the client declared it) and the number of Received:
 * fields in the header block (loop detection, RFC 5321 6.3).  The header
 * block ends at the first empty line. */
struct smtp_data {
	enum smtp_data_state state;
	size_t linelen;     /* octets in the current line */
	uint64_t size;      /* un-stuffed octets so far */
	bool bare;          /* bare CR or LF seen */
	bool nul;           /* NUL seen */
	bool toolong;       /* a line over SMTP_TEXT_MAX */
	bool in_body;       /* past the empty line after the headers */
	bool hdr8bit;       /* an octet > 127 in the header block */
	bool body8bit;      /* an octet > 127 in the body */
	uint8_t hpos;       /* header line: content octets so far, max 9 */
	bool hmatch;        /* header line: starts "Received:" so far */
	uint32_t nreceived; /* Received: fields in the header block */
};

void smtp_data_init(struct smtp_data *);
/* Consumes input until the end of data or the end of in.  Un-stuffed
 * data goes to out, which has room for len + 2 octets; *outlen is set.
 * Returns the number of input octets consumed; d->state == DONE at the
 * end (the terminating ".\r\n" is consumed and not output). */
size_t smtp_data_feed(
    struct smtp_data *, const char *in, size_t len, char *out, size_t *outlen);

/* Finds the Message-ID header in the header block at the start of msg
 * (CRLF lines, unfolded, up to the first empty line or len).  Copies its
 * value, trimmed, to out (truncated to outlen - 1).  true if found. */
bool smtp_message_id(const char *msg, size_t len, char *out, size_t outlen);

/* -------------------------------------------------------------- SASL */

/* Strict base64 (RFC 4648, padding required, no whitespace).  0 with
 * *outlen, -1 on malformed input or when out (outcap) is too small. */
int smtp_b64_decode(
    const char *in, size_t inlen, char *out, size_t outcap, size_t *outlen);
/* out needs 4 * ((inlen + 2) / 3) + 1 octets; NUL-terminated. */
void smtp_b64_encode(const void *in, size_t inlen, char *out);

#define SMTP_SASL_USER_MAX 256
#define SMTP_SASL_PASS_MAX 1024

/* RFC 4616 PLAIN: authzid NUL authcid NUL passwd (decoded).  authzid must
 * be empty or equal to authcid.  0, or -1 (answer 501 5.5.2). */
int smtp_sasl_plain(const char *dec, size_t len, char *user, size_t userlen,
    char *pass, size_t passlen);
/* A LOGIN username or password (decoded): no NUL, within cap.  0/-1. */
int smtp_sasl_login_item(const char *dec, size_t len, char *out, size_t outlen);

#endif
