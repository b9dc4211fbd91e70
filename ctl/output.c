/* output.c - tables and JSON for sluicectl (see output.h).  JSON strings
 * are escaped per RFC 8259 section 7; bytes >= 0x80 pass through as the
 * UTF-8 they should be. */
#include "output.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "xmalloc.h"

void
table_init(struct table *t, size_t ncols, ...)
{
	va_list ap;

	if (ncols > TABLE_MAX_COLS)
		fatalx("table_init: %zu columns", ncols);
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	va_start(ap, ncols);
	for (size_t i = 0; i < ncols; i++)
		t->head[i] = va_arg(ap, const char *);
	va_end(ap);
}

void
table_row(struct table *t, ...)
{
	va_list ap;
	const char *s;

	t->cells =
	    xreallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof(char *));
	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		s = va_arg(ap, const char *);
		t->cells[t->nrows * t->ncols + i] = xstrdup(s ? s : "");
	}
	va_end(ap);
	t->nrows++;
}

void
table_print(struct table *t, FILE *f)
{
	size_t w[TABLE_MAX_COLS], r, c, n;
	const char *s;

	for (c = 0; c < t->ncols; c++)
		w[c] = strlen(t->head[c]);
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if ((n = strlen(t->cells[r * t->ncols + c])) > w[c])
				w[c] = n;
	for (r = 0; r <= t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			s = r == 0 ? t->head[c]
			           : t->cells[(r - 1) * t->ncols + c];
			if (c + 1 == t->ncols)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s  ", (int)w[c], s);
		}
	}
	for (r = 0; r < t->nrows * t->ncols; r++)
		free(t->cells[r]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

void
json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = true;
}

static void
json_string(FILE *f, const char *s)
{
	const unsigned char *p;

	fputc('"', f);
	for (p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* The separator and key before a value. */
static void
json_pre(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (key != NULL) {
		json_string(j->f, key);
		fputc(':', j->f);
	}
}

static void
json_push(struct json *j, const char *key, char open)
{
	json_pre(j, key);
	fputc(open, j->f);
	if (++j->depth >= JSON_MAX_DEPTH)
		fatalx("json: nested too deep");
	j->first[j->depth] = true;
}

static void
json_pop(struct json *j, char close)
{
	fputc(close, j->f);
	if (--j->depth == 0)
		fputc('\n', j->f);
}

void
json_object_begin(struct json *j, const char *key)
{
	json_push(j, key, '{');
}

void
json_object_end(struct json *j)
{
	json_pop(j, '}');
}

void
json_array_begin(struct json *j, const char *key)
{
	json_push(j, key, '[');
}

void
json_array_end(struct json *j)
{
	json_pop(j, ']');
}

void
json_str(struct json *j, const char *key, const char *value)
{
	json_pre(j, key);
	json_string(j->f, value ? value : "");
}

void
json_int(struct json *j, const char *key, int64_t value)
{
	json_pre(j, key);
	fprintf(j->f, "%lld", (long long)value);
}

void
json_uint(struct json *j, const char *key, uint64_t value)
{
	json_pre(j, key);
	fprintf(j->f, "%llu", (unsigned long long)value);
}

void
json_bool(struct json *j, const char *key, bool value)
{
	json_pre(j, key);
	fputs(value ? "true" : "false", j->f);
}

void
json_null(struct json *j, const char *key)
{
	json_pre(j, key);
	fputs("null", j->f);
}

void
fmt_time(int64_t at, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)at;

	if (at == 0 || localtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "never");
		return;
	}
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void
fmt_ago(int64_t at, int64_t now, char *buf, size_t len)
{
	int64_t d = now - at;

	if (at == 0)
		snprintf(buf, len, "never");
	else if (d < 0)
		snprintf(buf, len, "just now");
	else if (d < 120)
		snprintf(buf, len, "%llds ago", (long long)d);
	else if (d < 7200)
		snprintf(buf, len, "%lldm ago", (long long)(d / 60));
	else if (d < 172800)
		snprintf(buf, len, "%lldh ago", (long long)(d / 3600));
	else
		snprintf(buf, len, "%lldd ago", (long long)(d / 86400));
}

void
fmt_duration(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else if (s < 120)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, len, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, len, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, len, "%lldd", (long long)(s / 86400));
}
