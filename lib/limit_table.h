/* limit_table.h - the table of policy limits: keys, defaults and bounds.  One
 * table for sluicectl (help, validation), the controller (validation) and
 * the node (enforcement).  A policy stores only keys set away from their
 * default. */
#ifndef SLUICE_LIMIT_TABLE_H
#define SLUICE_LIMIT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct limit_def {
	const char *key;
	int64_t def;
	int64_t min;
	int64_t max;
	const char *help;
};

extern const struct limit_def limit_table[];
extern const size_t limit_count;

const struct limit_def *limit_find(const char *key);
/* The policy's value for key, or the table default. Aborts on unknown key:
 * callers name keys from the table. */
int64_t limit_get(const Sluice__Policy *, const char *key);

#endif
