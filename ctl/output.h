/* output.h - how sluicectl prints: aligned tables for people, JSON for
 * scripts.  Everything goes to stdout; errors are not output's business. */
#ifndef SLUICECTL_OUTPUT_H
#define SLUICECTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A table: set the header, add rows of cells, print.  Columns are as wide
 * as their widest cell; the last column is not padded. */
#define TABLE_MAX_COLS 12

struct table {
	size_t ncols;
	const char *head[TABLE_MAX_COLS];
	char **cells; /* nrows * ncols, malloc'd */
	size_t nrows;
};

void table_init(struct table *, size_t ncols, ...);
/* Adds a row; takes ncols printf-free strings (copied). */
void table_row(struct table *, ...);
void table_print(struct table *, FILE *); /* also frees the rows */

/* A streaming JSON writer: keys are given with every value inside an
 * object and are NULL inside arrays and at the top. */
#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int depth;
	bool first[JSON_MAX_DEPTH];
};

void json_init(struct json *, FILE *);
void json_object_begin(struct json *, const char *key);
void json_object_end(struct json *); /* at depth 0: newline */
void json_array_begin(struct json *, const char *key);
void json_array_end(struct json *);
void json_str(struct json *, const char *key, const char *value);
void json_int(struct json *, const char *key, int64_t value);
void json_uint(struct json *, const char *key, uint64_t value);
void json_bool(struct json *, const char *key, bool value);
void json_null(struct json *, const char *key);

/* "2026-11-22 21:31:30" in local time, "never" for 0. */
void fmt_time(int64_t at, char *buf, size_t len);
/* "5s ago", "3m ago", "2h ago", "4d ago", "never". */
void fmt_ago(int64_t at, int64_t now, char *buf, size_t len);
/* A duration in seconds, short: "45s", "12m", "3h", "2d"; "-" for < 0. */
void fmt_duration(int64_t s, char *buf, size_t len);

#endif
