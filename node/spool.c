/* spool.c - placeholder until the durable spool lands. */
#include "spool.h"

#include <stdlib.h>

struct spool {
	int unused;
};

struct spool *
spool_open(struct event_base *base, const char *dir, struct node_stats *st)
{
	(void)base;
	(void)dir;
	(void)st;
	return calloc(1, sizeof(struct spool));
}

void
spool_close(struct spool *s)
{
	free(s);
}

struct spool_msg *
spool_msg_new(struct spool *s)
{
	(void)s;
	return NULL;
}

const char *
spool_msg_id(const struct spool_msg *m)
{
	(void)m;
	return "";
}

int
spool_msg_write(struct spool_msg *m, const void *p, size_t n)
{
	(void)m;
	(void)p;
	(void)n;
	return -1;
}

void
spool_msg_abort(struct spool_msg *m)
{
	(void)m;
}

void
spool_msg_commit(struct spool_msg *m, const struct spool_envelope *e,
    spool_commit_cb cb, uint64_t cookie)
{
	(void)m;
	(void)e;
	cb(cookie, "", false);
}
