/* console_json.h - pure: JSON for the web console.  Any protobuf-c
 * message (an AdminReply from api_admin_handle) becomes a JSON object by
 * walking its descriptor: field names as in proto/, enums by name, bytes
 * as hex, 64-bit numbers as JSON numbers.  Fields that hold secrets by
 * name (secret, password_hash, private_key, token) are never written,
 * even empty: the admin API already redacts them, this is the second
 * lock.  Strings are escaped for JSON and for embedding in HTML (<, >, &
 * as \u escapes); bytes that are not UTF-8 become U+FFFD.  No I/O. */
#ifndef SLUICE_CONSOLE_JSON_H
#define SLUICE_CONSOLE_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growing string; is_oom is sticky and the text then incomplete. */
struct console_buf {
	char *p;
	size_t len, cap;
	bool is_oom;
};

void console_buf_free(struct console_buf *);
void console_buf_add(struct console_buf *, const char *s, size_t len);
void console_buf_printf(struct console_buf *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A JSON string literal, quotes included. */
void console_json_str(struct console_buf *, const char *s);
/* The message as a JSON object. */
void console_json_msg(struct console_buf *, const ProtobufCMessage *);
/* true for the field names console_json_msg never writes. */
bool console_json_is_secret(const char *field);

#endif
