/* dkim_watch.c - the periodic DKIM DNS check (dkim_watch.h).  One thread
 * with its own PostgreSQL connection: lookups block (5 s at most each),
 * so they stay away from the endpoints and the health tick. */
#include "dkim_watch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim_dns.h"
#include "log.h"

#define DKIM_WATCH_POLL_MS 1000 /* how often the head version is looked at */

static int64_t
dkim_watch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One key: its verdict stored under run; a DNS error keeps the last one
 * (logged once per run). */
static int
dkim_watch_key(struct dkim_watch *w, const Sluice__DkimKey *k, int64_t run)
{
	char name[600], err[300];
	const char *why;
	char *txt = NULL;
	int rc;

	snprintf(
	    name, sizeof(name), "%s._domainkey.%s", k->selector, k->domain);
	switch (dkim_dns_txt(w->resolver, name, &txt, err, sizeof(err))) {
	case DKIM_DNS_FOUND:
		if (k->public_key[0] == '\0')
			rc = store_dkim_dns_set(w->store, name, "unknown",
			    "no public key stored", run);
		else if ((why = dkim_dns_compare(
		              txt, k->algorithm, k->public_key)) != NULL)
			rc = store_dkim_dns_set(
			    w->store, name, "mismatch", why, run);
		else
			rc = store_dkim_dns_set(w->store, name, "ok", "", run);
		free(txt);
		return rc;
	case DKIM_DNS_NONE:
		return store_dkim_dns_set(w->store, name, "missing", "", run);
	case DKIM_DNS_ERROR:
		break;
	}
	log_warnx("dkim check: %s: %s (the last verdict stands)", name, err);
	return store_dkim_dns_keep(w->store, name, run);
}

/* Every key of policy version head; 0, or -1 when the store failed. */
static int
dkim_watch_run(struct dkim_watch *w, uint64_t head)
{
	Sluice__Policy *p = NULL;
	uint8_t *buf = NULL;
	size_t i, len = 0;
	int64_t run = (int64_t)time(NULL) * 1000 + dkim_watch_now_ms() % 1000;
	int rc = STORE_OK;

	if (head != 0) {
		if ((rc = store_policy_snapshot(w->store, head, &buf, &len)) !=
		    STORE_OK)
			return -1;
		p = sluice__policy__unpack(NULL, len, buf);
		free(buf);
		if (p == NULL) {
			log_warnx("dkim check: policy version %llu does not "
			          "unpack",
			    (unsigned long long)head);
			return 0;
		}
	}
	for (i = 0; p != NULL && i < p->n_dkim && !*w->stop; i++)
		if ((rc = dkim_watch_key(w, p->dkim[i], run)) != STORE_OK)
			break;
	if (p != NULL)
		sluice__policy__free_unpacked(p, NULL);
	if (rc != STORE_OK || *w->stop)
		return rc == STORE_OK ? 0 : -1;
	return store_dkim_dns_prune(w->store, run) == STORE_OK ? 0 : -1;
}

static void *
dkim_watch_main(void *arg)
{
	struct dkim_watch *w = arg;
	uint64_t head, checked = 0;
	int64_t next_at = 0, now;
	bool ever = false;
	struct timespec ts = {0, 100 * 1000000L};
	int64_t slept;

	while (!*w->stop) {
		now = dkim_watch_now_ms();
		if (store_policy_head(w->store, false, &head) == STORE_OK &&
		    (!ever || head != checked || now >= next_at)) {
			/* a failed run is tried again at the next poll */
			if (dkim_watch_run(w, head) == 0) {
				ever = true;
				checked = head;
				next_at = now + w->interval_ms;
			}
		}
		for (slept = 0; slept < DKIM_WATCH_POLL_MS && !*w->stop;
		     slept += 100)
			nanosleep(&ts, NULL);
	}
	return NULL;
}

int
dkim_watch_start(struct dkim_watch *w)
{
	int rv;

	if ((rv = pthread_create(&w->thread, NULL, dkim_watch_main, w)) != 0) {
		errno = rv;
		return -1;
	}
	return 0;
}

void
dkim_watch_join(struct dkim_watch *w)
{
	pthread_join(w->thread, NULL);
}
