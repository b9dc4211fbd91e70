/* migrations.h - the SQL migrations of controller/migrations/, embedded at
 * build time by migrations/embed.cmake (migrations_data.c), in order.
 * store_migrate() applies the ones a database has not seen yet. */
#ifndef SLUICE_MIGRATIONS_H
#define SLUICE_MIGRATIONS_H

#include <stddef.h>

struct migration {
	const char *name;         /* "001_initial": version 1 */
	const unsigned char *sql; /* NUL-terminated */
};

extern const struct migration migrations[];
extern const size_t migrations_count;

#endif
