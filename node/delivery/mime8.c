/* mime8.c - the 7-bit downgrade of 8-bit mail (mime8.h).  Pure: no I/O,
 * no allocation; called by smtp_client.c (a dry pass to decide and size,
 * then the real one while streaming) and by tests/unit/test_mime8.c.
 * A message it cannot convert is an error value, never a partial
 * conversion. */
#include "mime8.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *
mime8_error_text(enum mime8_error e)
{
	switch (e) {
	case MIME8_OK:
		return "ok";
	case MIME8_HEADER_8BIT:
		return "8-bit octets in a header";
	case MIME8_OPAQUE_8BIT:
		return "8-bit octets in a message/... part, an encoded part or "
		       "outside the parts";
	case MIME8_TOO_DEEP:
		return "MIME parts nested too deep";
	case MIME8_LONG_LINE:
		return "line too long";
	case MIME8_LONG_FIELD:
		return "Content-* header field too long";
	}
	return "?";
}

void
mime8_init(struct mime8 *m)
{
	memset(m, 0, sizeof(*m));
	m->in_header = true;
	m->top = true;
}

static bool
has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] > 127)
			return true;
	return false;
}

static int
fail(struct mime8 *m, enum mime8_error e)
{
	m->err = e;
	return -1;
}

static void
emit(struct mime8 *m, mime8_emit_fn fn, void *arg, const char *p, size_t n)
{
	m->out_size += n;
	fn(arg, p, n);
}

/* The line plus CRLF, in one piece. */
static void
emit_line(struct mime8 *m, mime8_emit_fn fn, void *arg, const char *p, size_t n)
{
	char buf[MIME8_FIELD_MAX + 2];

	if (n + 2 <= sizeof(buf)) {
		memcpy(buf, p, n);
		memcpy(buf + n, "\r\n", 2);
		emit(m, fn, arg, buf, n + 2);
	} else {
		emit(m, fn, arg, p, n); /* not reached: lines are shorter */
		emit(m, fn, arg, "\r\n", 2);
	}
}

size_t
mime8_qp_line(const char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0, col = 0, tok;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		/* RFC 2045 6.7 rules 2 and 3: printable ASCII but "=" as is;
		 * space and tab too, except at the end of the line */
		bool plain = (c >= 33 && c <= 126 && c != '=') ||
		             ((c == ' ' || c == '\t') && i + 1 < len);

		tok = plain ? 1 : 3;
		/* rule 5: lines of at most 76, the soft break's "=" counted */
		if (col + tok > 75) {
			memcpy(out + o, "=\r\n", 3);
			o += 3;
			col = 0;
		}
		if (plain)
			out[o++] = (char)c;
		else {
			out[o++] = '=';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
		col += tok;
	}
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}

/* Parameter `name` of a Content-Type value into out (unquoted). */
static bool
ctype_param(const char *v, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), o = 0;
	const char *p = v;

	while ((p = strchr(p, ';')) != NULL) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, name, nl) != 0)
			continue;
		p += nl;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (o + 1 >= outlen)
					return false;
				out[o++] = *p;
			}
		} else {
			for (;
			     *p != '\0' && *p != ';' && *p != ' ' && *p != '\t';
			     p++) {
				if (o + 1 >= outlen)
					return false;
				out[o++] = *p;
			}
		}
		out[o] = '\0';
		return o > 0;
	}
	return false;
}

/* "type/subtype" of the value, lower case, into out. */
static void
ctype_type(const char *v, char *out, size_t outlen)
{
	size_t o = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v != '\0' && *v != ';' && *v != ' ' && *v != '\t' &&
	       *v != '(' && o + 1 < outlen;
	     v++)
		out[o++] = (char)tolower((unsigned char)*v);
	out[o] = '\0';
}

/* The field being buffered (a CTE) ends: keep it, or drop it to write
 * our own at the end of the header block. */
static void
field_end(struct mime8 *m, mime8_emit_fn fn, void *arg)
{
	char v[32];
	const char *p;
	size_t o = 0;

	if (m->field == MIME8_F_CTE) {
		p = m->cte + strlen("Content-Transfer-Encoding:");
		for (; p < m->cte + m->ctelen && o + 1 < sizeof(v); p++)
			if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
				v[o++] = (char)tolower((unsigned char)*p);
		v[o] = '\0';
		if (o == 0 || strcmp(v, "7bit") == 0 ||
		    strcmp(v, "8bit") == 0 || strcmp(v, "binary") == 0)
			m->cte_dropped = true;
		else {
			snprintf(m->cte_kept, sizeof(m->cte_kept), "%s", v);
			emit(m, fn, arg, m->cte, m->ctelen);
		}
	}
	m->field = MIME8_F_OTHER;
}

static void
entity_begin(struct mime8 *m)
{
	m->in_header = true;
	m->field = MIME8_F_OTHER;
	m->ctypelen = m->ctelen = 0;
	m->ctype[0] = '\0';
	m->has_ctype = m->has_version = m->cte_dropped = false;
	m->cte_kept[0] = '\0';
}

/* The empty line after an entity's header: decide its body. */
static int
header_end(struct mime8 *m, mime8_emit_fn fn, void *arg)
{
	char type[128], bnd[MIME8_BND_MAX + 2];
	bool parent_digest = m->depth > 0 && m->stack[m->depth - 1].digest;
	bool multi, message;

	field_end(m, fn, arg);
	if (m->has_ctype)
		ctype_type(m->ctype, type, sizeof(type));
	else
		snprintf(type, sizeof(type), "%s",
		    parent_digest ? "message/rfc822" : "text/plain");
	multi = strncmp(type, "multipart/", 10) == 0 &&
	        ctype_param(m->ctype, "boundary", bnd, sizeof(bnd)) &&
	        strlen(bnd) <= MIME8_BND_MAX;
	message = strncmp(type, "message/", 8) == 0;
	if (multi) {
		struct mime8_frame *f;

		if (m->depth == MIME8_DEPTH)
			return fail(m, MIME8_TOO_DEEP);
		f = &m->stack[m->depth++];
		f->bndlen = strlen(bnd);
		memcpy(f->bnd, bnd, f->bndlen + 1);
		f->digest = strcmp(type, "multipart/digest") == 0;
	}
	if (multi || message || m->cte_kept[0] != '\0') {
		/* passed through as it is; must be 7-bit already */
		m->body = MIME8_PASS;
		if (m->cte_dropped)
			emit(m, fn, arg, "Content-Transfer-Encoding: 7bit\r\n",
			    33);
	} else {
		m->body = MIME8_QP;
		if (m->top && !m->has_version)
			emit(m, fn, arg, "MIME-Version: 1.0\r\n", 19);
		if (m->top && !m->has_ctype)
			emit(m, fn, arg,
			    "Content-Type: text/plain; "
			    "charset=unknown-8bit\r\n",
			    48);
		emit(m, fn, arg,
		    "Content-Transfer-Encoding: quoted-printable\r\n", 45);
	}
	emit(m, fn, arg, "\r\n", 2);
	m->in_header = false;
	m->top = false;
	return 0;
}

static bool
field_is(const char *p, size_t n, const char *name)
{
	size_t nl = strlen(name);

	return n >= nl && strncasecmp(p, name, nl) == 0;
}

static int
header_line(
    struct mime8 *m, const char *p, size_t n, mime8_emit_fn fn, void *arg)
{
	bool cont = n > 0 && (p[0] == ' ' || p[0] == '\t');

	if (n == 0)
		return header_end(m, fn, arg);
	if (has_8bit(p, n))
		return fail(m, MIME8_HEADER_8BIT);
	if (!cont) {
		field_end(m, fn, arg);
		if (field_is(p, n, "Content-Transfer-Encoding:"))
			m->field = MIME8_F_CTE;
		else if (field_is(p, n, "Content-Type:")) {
			m->field = MIME8_F_CTYPE;
			m->has_ctype = true;
			p += 13;
			n -= 13;
		} else if (field_is(p, n, "MIME-Version:"))
			m->has_version = true;
	}
	if (m->field == MIME8_F_CTE) {
		if (m->ctelen + n + 2 > sizeof(m->cte))
			return fail(m, MIME8_LONG_FIELD);
		memcpy(m->cte + m->ctelen, p, n);
		memcpy(m->cte + m->ctelen + n, "\r\n", 2);
		m->ctelen += n + 2;
		return 0;
	}
	if (m->field == MIME8_F_CTYPE) {
		if (m->ctypelen + n + 1 > sizeof(m->ctype))
			return fail(m, MIME8_LONG_FIELD);
		memcpy(m->ctype + m->ctypelen, p, n);
		m->ctypelen += n;
		m->ctype[m->ctypelen] = '\0';
		if (!cont) {
			p -= 13;
			n += 13;
		}
	}
	emit_line(m, fn, arg, p, n);
	return 0;
}

/* "--boundary" or "--boundary--" of an open multipart: its level + 1
 * (0: not a boundary); *close for the closing one. */
static int
boundary_of(const struct mime8 *m, const char *p, size_t n, bool *close)
{
	for (int k = m->depth - 1; k >= 0; k--) {
		const struct mime8_frame *f = &m->stack[k];
		size_t i = 2 + f->bndlen;

		if (n < i || p[0] != '-' || p[1] != '-' ||
		    memcmp(p + 2, f->bnd, f->bndlen) != 0)
			continue;
		*close = n >= i + 2 && p[i] == '-' && p[i + 1] == '-';
		if (*close)
			i += 2;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == n)
			return k + 1;
	}
	return 0;
}

static int
body_line(struct mime8 *m, const char *p, size_t n, mime8_emit_fn fn, void *arg)
{
	char qp[MIME8_QP_MAX(MIME8_LINE_MAX)];
	bool close;
	int level;

	if (m->depth > 0 && n >= 2 && p[0] == '-' &&
	    (level = boundary_of(m, p, n, &close)) > 0) {
		emit_line(m, fn, arg, p, n);
		if (close) {
			/* the epilogue belongs to the enclosing body */
			m->depth = level - 1;
			m->body = MIME8_PASS;
		} else {
			m->depth = level;
			entity_begin(m);
		}
		return 0;
	}
	if (m->body == MIME8_QP) {
		emit(m, fn, arg, qp, mime8_qp_line(p, n, qp));
		return 0;
	}
	if (has_8bit(p, n))
		return fail(m, MIME8_OPAQUE_8BIT);
	emit_line(m, fn, arg, p, n);
	return 0;
}

static int
one_line(struct mime8 *m, const char *p, size_t n, mime8_emit_fn fn, void *arg)
{
	return m->in_header ? header_line(m, p, n, fn, arg)
	                    : body_line(m, p, n, fn, arg);
}

int
mime8_feed(
    struct mime8 *m, const char *p, size_t n, mime8_emit_fn fn, void *arg)
{
	const char *end = p + n, *nl;
	size_t k;

	if (m->err != MIME8_OK)
		return -1;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		k = (size_t)((nl != NULL ? nl : end) - p);
		if (m->linelen + k > sizeof(m->line))
			return fail(m, MIME8_LONG_LINE);
		memcpy(m->line + m->linelen, p, k);
		m->linelen += k;
		if (nl == NULL)
			break;
		p = nl + 1;
		/* CRLF only (the spool holds nothing else); a lone LF is
		 * taken as a line end too */
		k = m->linelen;
		if (k > 0 && m->line[k - 1] == '\r')
			k--;
		m->linelen = 0;
		if (k > MIME8_LINE_MAX - 2) /* RFC 5321 4.5.3.1.6 */
			return fail(m, MIME8_LONG_LINE);
		if (one_line(m, m->line, k, fn, arg) == -1)
			return -1;
	}
	return 0;
}

int
mime8_finish(struct mime8 *m, mime8_emit_fn fn, void *arg)
{
	size_t k = m->linelen;

	if (m->err != MIME8_OK)
		return -1;
	if (k > 0 && m->line[k - 1] == '\r')
		k--;
	if (k > MIME8_LINE_MAX - 2)
		return fail(m, MIME8_LONG_LINE);
	if (m->linelen > 0 && one_line(m, m->line, k, fn, arg) == -1)
		return -1;
	m->linelen = 0;
	/* a message that is all header: its block never saw the empty
	 * line; nothing to decide, every field was already checked */
	if (m->in_header && m->field == MIME8_F_CTE)
		field_end(m, fn, arg);
	return 0;
}
