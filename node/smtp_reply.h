/* smtp_reply.h - an SMTP reply as a value, for both sides: the server's
 * verdicts (smtp_parse.c, smtp_check.c) and the client's view of what an
 * upstream said (smtp_client.c, delivery.c), with the one reply-line
 * parser.  Pure: no I/O, no allocation. */
#ifndef SLUICE_SMTP_REPLY_H
#define SLUICE_SMTP_REPLY_H

#include <stddef.h>

#define SMTP_REPLY_TEXT 384

/* "550 5.7.1 text".  code 0 means none: no error (a parser's verdict) or
 * no reply received (a local failure, described in text). */
struct smtp_reply {
	int code;
	char enhanced[16];          /* "5.1.1" or "" */
	char text[SMTP_REPLY_TEXT]; /* first line after code/enhanced */
};

/* Reply-line parser (tests/unit/test_smtp_reply.c).  Feed one line
 * without CRLF; returns 1 when the reply is complete (last line), 0 when
 * more lines follow, -1 when the line is not a reply line.  *line_text
 * points into line at the text after "250-"/"250 " (EHLO keywords). */
struct smtp_reply_parser {
	struct smtp_reply r;
	int lines;
};
void smtp_reply_init(struct smtp_reply_parser *);
int smtp_reply_feed(struct smtp_reply_parser *, const char *line, size_t len,
    const char **line_text);
/* 2, 4, 5 ... (code / 100); 0 for no reply. */
int smtp_reply_class(const struct smtp_reply *);
/* Formats "421 4.4.1 text" style into buf (replies, logs and events). */
void smtp_reply_format(const struct smtp_reply *, char *buf, size_t len);
/* Sets a reply (a verdict, or a locally made-up one: connection refused
 * and such). */
void smtp_reply_set(struct smtp_reply *, int code, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
