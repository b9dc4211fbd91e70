/* config.h - the small "key = value" config files of node and controller.
 * '#' starts a comment; keys may repeat (listen, controller); values may be
 * double-quoted.  Parsing is pure: a file in, entries out, errors with line
 * numbers. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct config_entry {
	char *key;
	char *value;
	int line;
};

struct config {
	struct config_entry *entries;
	size_t n;
	char *path;
};

/* NULL on error, with a one-line reason in err ("node.conf:3: ..."). */
struct config *config_load(const char *path, char *err, size_t errlen);
struct config *config_parse(
    const char *text, const char *name, char *err, size_t errlen);
void config_free(struct config *);
/* Last value of key, or NULL. */
const char *config_get(const struct config *, const char *key);
/* i-th value (0-based) of a repeated key, or NULL. */
const char *config_get_nth(const struct config *, const char *key, size_t i);
/* 0 and *out set on success (or def when absent), -1 with err on garbage. */
int config_get_int(const struct config *, const char *key, int64_t def,
    int64_t *out, char *err, size_t errlen);
/* First key not in the NULL-terminated allowed list, or NULL. */
const struct config_entry *config_unknown(
    const struct config *, const char *const *allowed);

#endif
