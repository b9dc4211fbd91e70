/* xmalloc.c - see xmalloc.h. */
#include "xmalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size ? size : 1)) == NULL)
		fatalx("out of memory");
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		fatalx("allocation overflow");
	if ((p = realloc(p, n * size > 0 ? n * size : 1)) == NULL)
		fatalx("out of memory");
	return p;
}

char *
xstrdup(const char *s)
{
	char *d;

	if ((d = strdup(s)) == NULL)
		fatalx("out of memory");
	return d;
}
