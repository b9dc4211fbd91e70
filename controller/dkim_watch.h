/* dkim_watch.h - the controller's DKIM DNS check (issue 14): on its own
 * thread, every interval and soon after each policy change, resolves
 * <selector>._domainkey.<domain> TXT for every DKIM key of the head
 * policy (lib/dkim_dns.c, c-ares, the configured resolver), compares it
 * with the key's public half and stores the verdict (store_dkim.c); the
 * health tick raises dkim_dns_mismatch / dkim_dns_missing from it. */
#ifndef SLUICE_DKIM_WATCH_H
#define SLUICE_DKIM_WATCH_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "store.h"

struct dkim_watch {
	struct store *store;
	const char *resolver;        /* "ip[:port],..."; NULL: resolv.conf */
	int64_t interval_ms;         /* between checks, default 1 h */
	volatile sig_atomic_t *stop; /* set: the thread returns */
	pthread_t thread;
};

/* Starts the thread; 0 or -1 (errno). */
int dkim_watch_start(struct dkim_watch *);
void dkim_watch_join(struct dkim_watch *);

#endif
