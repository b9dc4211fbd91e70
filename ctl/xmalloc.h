/* xmalloc.h - allocation for a short-lived CLI: out of memory is not a
 * condition sluicectl can report usefully, so it aborts. */
#ifndef SLUICECTL_XMALLOC_H
#define SLUICECTL_XMALLOC_H

#include <stddef.h>

void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);

#endif
