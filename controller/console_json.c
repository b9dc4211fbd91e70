/* console_json.c - protobuf-c messages as JSON (console_json.h).  Pure:
 * used by console_api.c, table-tested by tests/console/test_console_json.c.
 */
#include "console_json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
console_buf_free(struct console_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool
console_buf_grow(struct console_buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->is_oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	for (cap = b->cap ? b->cap : 256; cap < b->len + more + 1; cap *= 2)
		;
	if ((p = realloc(b->p, cap)) == NULL) {
		b->is_oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void
console_buf_add(struct console_buf *b, const char *s, size_t len)
{
	if (!console_buf_grow(b, len))
		return;
	memcpy(b->p + b->len, s, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void
console_buf_printf(struct console_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !console_buf_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms,
 * no surrogates, at most U+10FFFF), 0 if there is none. */
static size_t
console_json_utf8(const unsigned char *s)
{
	size_t n, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return n;
}

void
console_json_str(struct console_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n;

	console_buf_add(b, "\"", 1);
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			console_buf_printf(b, "\\%c", *p);
			p++;
		} else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&' ||
		           *p == 0x7f) {
			console_buf_printf(b, "\\u%04x", *p);
			p++;
		} else if ((n = console_json_utf8(p)) == 0) {
			console_buf_add(b, "\\ufffd", 6);
			p++;
		} else {
			console_buf_add(b, (const char *)p, n);
			p += n;
		}
	}
	console_buf_add(b, "\"", 1);
}

bool
console_json_is_secret(const char *field)
{
	static const char *const secret[] = {
	    "secret", "password_hash", "private_key", "token", NULL};
	size_t i;

	for (i = 0; secret[i] != NULL; i++)
		if (strcmp(field, secret[i]) == 0)
			return true;
	return false;
}

static size_t
console_json_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 8;
	}
}

/* One value of field f at p. */
static void
console_json_value(
    struct console_buf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
	const ProtobufCEnumValue *ev;
	const ProtobufCBinaryData *bd;
	size_t i;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		console_buf_printf(b, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		console_buf_printf(b, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		console_buf_printf(b, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		console_buf_printf(b, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		console_buf_printf(b, "%.9g", (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		console_buf_printf(b, "%.17g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		console_buf_printf(
		    b, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM:
		ev = protobuf_c_enum_descriptor_get_value(
		    f->descriptor, *(const int *)p);
		if (ev != NULL)
			console_json_str(b, ev->name);
		else
			console_buf_printf(b, "%d", *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		console_json_str(b, *(char *const *)p);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		bd = p;
		console_buf_add(b, "\"", 1);
		for (i = 0; i < bd->len; i++)
			console_buf_printf(b, "%02x", bd->data[i]);
		console_buf_add(b, "\"", 1);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (*(ProtobufCMessage *const *)p == NULL)
			console_buf_add(b, "null", 4);
		else
			console_json_msg(b, *(ProtobufCMessage *const *)p);
		break;
	}
}

void
console_json_msg(struct console_buf *b, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	bool first = true;
	unsigned i;
	size_t k, n;

	console_buf_add(b, "{", 1);
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *p = base + f->offset;

		if (console_json_is_secret(f->name))
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) !=
			    f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
		           f->type != PROTOBUF_C_TYPE_MESSAGE &&
		           f->type != PROTOBUF_C_TYPE_STRING &&
		           !*(const protobuf_c_boolean *)(base +
		                                          f->quantifier_offset))
			continue;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
		    f->label != PROTOBUF_C_LABEL_REPEATED &&
		    *(ProtobufCMessage *const *)p == NULL)
			continue;
		if (!first)
			console_buf_add(b, ",", 1);
		first = false;
		console_json_str(b, f->name);
		console_buf_add(b, ":", 1);
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			console_json_value(b, f, p);
			continue;
		}
		n = *(const size_t *)(base + f->quantifier_offset);
		console_buf_add(b, "[", 1);
		for (k = 0; k < n; k++) {
			if (k > 0)
				console_buf_add(b, ",", 1);
			console_json_value(b, f,
			    *(char *const *)p + k * console_json_size(f->type));
		}
		console_buf_add(b, "]", 1);
	}
	console_buf_add(b, "}", 1);
}
