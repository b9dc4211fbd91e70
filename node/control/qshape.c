/* qshape.c - queue summary by domain (qshape.h). */
#include "qshape.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spool.h"

struct qshape {
	Sluice__QueueShape *v[QSHAPE_SCAN];
	size_t n;
	int64_t now;
};

static const char *
qshape_domain(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	return at != NULL ? at + 1 : "";
}

struct qshape *
qshape_new(int64_t now)
{
	struct qshape *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->now = now;
	return q;
}

static Sluice__QueueShape *
qshape_row(struct qshape *q, const char *domain)
{
	Sluice__QueueShape *s;
	size_t i;

	for (i = 0; i < q->n; i++)
		if (strcasecmp(q->v[i]->domain, domain) == 0)
			return q->v[i];
	/* The last slot is "(other)"'s: past the table a new domain still
	 * counts (before, the 513th domain lost the whole summary). */
	if (q->n >= QSHAPE_SCAN - 1)
		domain = "(other)";
	for (i = 0; i < q->n; i++)
		if (strcmp(q->v[i]->domain, domain) == 0)
			return q->v[i];
	if (q->n == QSHAPE_SCAN || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	sluice__queue_shape__init(s);
	if ((s->domain = strdup(domain)) == NULL ||
	    (s->age_buckets = calloc(QSHAPE_NAGE, sizeof(uint64_t))) == NULL) {
		free(s->domain);
		free(s);
		return NULL;
	}
	for (i = 0; s->domain[i] != '\0'; i++)
		s->domain[i] = (char)tolower((unsigned char)s->domain[i]);
	s->n_age_buckets = QSHAPE_NAGE;
	q->v[q->n++] = s;
	return s;
}

int
qshape_add(struct qshape *q, const struct spool_info *si)
{
	static const int64_t limits_min[QSHAPE_NAGE - 1] = {
	    5, 10, 20, 40, 80, 160};
	Sluice__QueueShape *s;
	int64_t age_min = (q->now - si->committed_at) / 60;
	size_t i, k, b;

	for (b = 0; b < QSHAPE_NAGE - 1 && age_min >= limits_min[b]; b++)
		;
	for (i = 0; i < si->env.nrcpts; i++) {
		const char *d = qshape_domain(si->env.rcpts[i]);

		if (si->rcpt_status[i] != SPOOL_RCPT_PENDING)
			continue;
		/* once per message and domain */
		for (k = 0; k < i; k++)
			if (si->rcpt_status[k] == SPOOL_RCPT_PENDING &&
			    strcasecmp(qshape_domain(si->env.rcpts[k]), d) == 0)
				break;
		if (k < i)
			continue;
		if ((s = qshape_row(q, d)) == NULL)
			return -1;
		s->messages++;
		s->deferred += si->state == SPOOL_DEFERRED;
		s->held += si->state == SPOOL_HELD;
		s->age_buckets[b]++;
	}
	return 0;
}

static int
qshape_cmp(const void *a, const void *b)
{
	const Sluice__QueueShape *x = *(Sluice__QueueShape *const *)a;
	const Sluice__QueueShape *y = *(Sluice__QueueShape *const *)b;

	if (x->messages != y->messages)
		return x->messages > y->messages ? -1 : 1;
	return strcmp(x->domain, y->domain);
}

size_t
qshape_top(struct qshape *q, Sluice__QueueShape ***rows)
{
	qsort(q->v, q->n, sizeof(q->v[0]), qshape_cmp);
	*rows = q->v;
	return q->n < QSHAPE_SEND ? q->n : QSHAPE_SEND;
}

void
qshape_free(struct qshape *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->n; i++)
		sluice__queue_shape__free_unpacked(q->v[i], NULL);
	free(q);
}
