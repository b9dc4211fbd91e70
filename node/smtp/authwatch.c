/* authwatch.c - per-subject AUTH failure counts over a sliding minute
 * (authwatch.h).  Each subject keeps one counter per second of the window
 * (a ring), so counting and expiry cost O(1) and the answer is exact to
 * the second. */
#include "authwatch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aw_entry {
	char kind[8];
	char subject[128];
	int64_t last; /* second of the latest failure */
	uint32_t ring[AUTHWATCH_WINDOW_S];
	int64_t ring_at[AUTHWATCH_WINDOW_S]; /* second each slot counts */
};

struct authwatch {
	pthread_mutex_t mu;
	struct aw_entry *e;
	size_t n;
};

struct authwatch *
authwatch_new(void)
{
	struct authwatch *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	if ((w->e = calloc(AUTHWATCH_MAX_KEYS, sizeof(*w->e))) == NULL) {
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	return w;
}

void
authwatch_free(struct authwatch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_destroy(&w->mu);
	free(w->e);
	free(w);
}

static uint64_t
aw_count(const struct aw_entry *e, int64_t now)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < AUTHWATCH_WINDOW_S; i++)
		if (e->ring_at[i] > now - AUTHWATCH_WINDOW_S &&
		    e->ring_at[i] <= now)
			sum += e->ring[i];
	return sum;
}

static void
aw_bump(struct authwatch *w, const char *kind, const char *subject, int64_t now)
{
	struct aw_entry *e = NULL;
	size_t i, oldest = 0, slot;

	for (i = 0; i < w->n; i++) {
		if (strcmp(w->e[i].kind, kind) == 0 &&
		    strcmp(w->e[i].subject, subject) == 0) {
			e = &w->e[i];
			break;
		}
		if (w->e[i].last < w->e[oldest].last)
			oldest = i;
	}
	if (e == NULL) {
		/* a new subject: a free slot, else the least recent one */
		e = w->n < AUTHWATCH_MAX_KEYS ? &w->e[w->n++] : &w->e[oldest];
		memset(e, 0, sizeof(*e));
		snprintf(e->kind, sizeof(e->kind), "%s", kind);
		snprintf(e->subject, sizeof(e->subject), "%s", subject);
	}
	slot = (size_t)(now % AUTHWATCH_WINDOW_S);
	if (e->ring_at[slot] != now) {
		e->ring_at[slot] = now;
		e->ring[slot] = 0;
	}
	e->ring[slot]++;
	e->last = now;
}

void
authwatch_failure(
    struct authwatch *w, const char *ip, const char *user, int64_t now)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	if (ip != NULL && *ip != '\0')
		aw_bump(w, "ip", ip, now);
	if (user != NULL && *user != '\0')
		aw_bump(w, "user", user, now);
	pthread_mutex_unlock(&w->mu);
}

size_t
authwatch_top(
    struct authwatch *w, int64_t now, struct authwatch_top *out, size_t max)
{
	size_t i, k, n = 0;
	uint64_t c;

	if (w == NULL || max == 0)
		return 0;
	pthread_mutex_lock(&w->mu);
	for (i = 0; i < w->n; i++) {
		if ((c = aw_count(&w->e[i], now)) == 0)
			continue;
		/* insertion into the sorted top list */
		for (k = n; k > 0 && out[k - 1].failures < c; k--)
			if (k < max)
				out[k] = out[k - 1];
		if (k >= max)
			continue;
		snprintf(out[k].kind, sizeof(out[k].kind), "%s", w->e[i].kind);
		snprintf(out[k].subject, sizeof(out[k].subject), "%s",
		    w->e[i].subject);
		out[k].failures = c;
		if (n < max)
			n++;
	}
	pthread_mutex_unlock(&w->mu);
	return n;
}
