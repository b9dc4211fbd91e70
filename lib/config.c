/* config.c - parser for the "key = value" config files (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define CONFIG_MAX_BYTES (1024 * 1024)

void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	free(c->entries);
	free(c->path);
	free(c);
}

static char *
config_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
config_add(struct config *c, const char *k, const char *v, int line)
{
	struct config_entry *e;

	e = realloc(c->entries, (c->n + 1) * sizeof(*e));
	if (e == NULL)
		return -1;
	c->entries = e;
	e = &c->entries[c->n];
	e->key = strdup(k);
	e->value = strdup(v);
	e->line = line;
	if (e->key == NULL || e->value == NULL) {
		free(e->key);
		free(e->value);
		return -1;
	}
	c->n++;
	return 0;
}

struct config *
config_parse(const char *text, const char *name, char *err, size_t errlen)
{
	struct config *c;
	char *copy, *line, *next, *eq, *k, *v;
	int lineno = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (copy = strdup(text)) == NULL) {
		free(c);
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	c->path = strdup(name);
	for (line = copy; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((v = strchr(line, '#')) != NULL &&
		    (strchr(line, '"') == NULL || v < strchr(line, '"')))
			*v = '\0';
		line = config_trim(line);
		if (*line == '\0')
			continue;
		if ((eq = strchr(line, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected 'key = value'",
			    name, lineno);
			goto fail;
		}
		*eq = '\0';
		k = config_trim(line);
		v = config_trim(eq + 1);
		if (*k == '\0') {
			snprintf(
			    err, errlen, "%s:%d: missing key", name, lineno);
			goto fail;
		}
		for (char *p = k; *p; p++) {
			if (!isalnum((unsigned char)*p) && *p != '_') {
				snprintf(err, errlen,
				    "%s:%d: bad character in key '%s'", name,
				    lineno, k);
				goto fail;
			}
		}
		if (*v == '"') {
			size_t vl = strlen(v);
			if (vl < 2 || v[vl - 1] != '"') {
				snprintf(err, errlen,
				    "%s:%d: unterminated quoted value", name,
				    lineno);
				goto fail;
			}
			v[vl - 1] = '\0';
			v++;
		}
		if (config_add(c, k, v, lineno) == -1) {
			snprintf(err, errlen, "%s: out of memory", name);
			goto fail;
		}
	}
	free(copy);
	return c;
fail:
	free(copy);
	config_free(c);
	return NULL;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *buf;
	size_t n;
	struct config *c;
	struct stat st;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* Node and controller configs hold secrets (the enrollment token,
	 * the database conninfo): say so when anyone may read them. */
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH) != 0)
		log_warnx("%s is readable by every user and may hold secrets "
		          "(enrollment token, database password): chmod o-r",
		    path);
	if ((buf = malloc(CONFIG_MAX_BYTES + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
	fclose(f);
	if (n > CONFIG_MAX_BYTES) {
		free(buf);
		snprintf(err, errlen, "%s: larger than 1 MiB", path);
		return NULL;
	}
	buf[n] = '\0';
	c = config_parse(buf, path, err, errlen);
	free(buf);
	return c;
}

const char *
config_get(const struct config *c, const char *key)
{
	const char *v = NULL;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->entries[i].key, key) == 0)
			v = c->entries[i].value;
	return v;
}

const char *
config_get_nth(const struct config *c, const char *key, size_t nth)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->entries[i].key, key) == 0 && nth-- == 0)
			return c->entries[i].value;
	return NULL;
}

int
config_get_int(const struct config *c, const char *key, int64_t def,
    int64_t *out, char *err, size_t errlen)
{
	const char *v = config_get(c, key);
	char *end;
	long long ll;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	errno = 0;
	ll = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0') {
		snprintf(err, errlen, "%s: %s: '%s' is not an integer", c->path,
		    key, v);
		return -1;
	}
	*out = ll;
	return 0;
}

const struct config_entry *
config_unknown(const struct config *c, const char *const *allowed)
{
	size_t i, j;

	for (i = 0; i < c->n; i++) {
		for (j = 0; allowed[j] != NULL; j++)
			if (strcmp(c->entries[i].key, allowed[j]) == 0)
				break;
		if (allowed[j] == NULL)
			return &c->entries[i];
	}
	return NULL;
}
