/* spool_ingest.c - the spool alone, durability on: N committers each keep
 * one message in flight (a session waiting for its 250), for T seconds.
 * Reports commits/s, fdatasyncs/s, messages per flush and commit latency
 * (p50, p99, p99.9, max).
 *
 *   spool_ingest DIR [SESSIONS=100] [SIZE=1024] [SECONDS=5]
 *
 * DIR should be on the filesystem the spool will live on; it is left
 * behind (remove it). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "spool.h"

static struct spool *sp;
static struct event_base *base;
static size_t size;
static double t_end;
static long done, inflight;
static double *lat;
static size_t nlat, caplat;
static char *body;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void submit(void);

static void
on_commit(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	(void)arg;
	double t0;

	(void)qid;
	memcpy(&t0, &cookie, sizeof(t0));
	if (!ok) {
		fprintf(stderr, "commit failed\n");
		exit(1);
	}
	done++;
	inflight--;
	if (nlat == caplat) {
		caplat = caplat ? caplat * 2 : 65536;
		lat = realloc(lat, caplat * sizeof(*lat));
	}
	lat[nlat++] = now() - t0;
	if (now() < t_end)
		submit();
	else if (inflight == 0)
		event_base_loopbreak(base);
}

static void
submit(void)
{
	const char *rcpts[1] = {"sink@example.net"};
	struct spool_envelope env = {.sender = "bench@example.com",
	    .rcpts = rcpts,
	    .nrcpts = 1,
	    .client = "[127.0.0.1]:40000",
	    .helo = "bench",
	    .message_id = "<bench@example.com>",
	    .received_at = 0};
	struct spool_msg *m = spool_msg_new(sp);
	double t0 = now();
	uint64_t cookie;

	/* Data arrives in pieces, as from a session. */
	for (size_t off = 0; off < size; off += 4096)
		spool_msg_write(
		    m, body + off, size - off < 4096 ? size - off : 4096);
	memcpy(&cookie, &t0, sizeof(cookie));
	inflight++;
	spool_msg_commit(m, &env, on_commit, NULL, cookie);
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct spool_counters c;
	long sessions;
	double secs, t0, el;

	if (argc < 2) {
		fprintf(stderr,
		    "usage: spool_ingest DIR [SESSIONS] [SIZE] [SECONDS]\n");
		return 2;
	}
	sessions = argc > 2 ? atol(argv[2]) : 100;
	size = argc > 3 ? (size_t)atol(argv[3]) : 1024;
	secs = argc > 4 ? atof(argv[4]) : 5;
	log_init("spool_ingest", false);
	body = malloc(size + 1);
	memset(body, 'x', size);
	base = event_base_new();
	if ((sp = spool_open(base, argv[1], NULL)) == NULL)
		return 1;
	t0 = now();
	t_end = t0 + secs;
	for (long i = 0; i < sessions; i++)
		submit();
	event_base_dispatch(base);
	el = now() - t0;
	spool_counters(sp, &c);
	qsort(lat, nlat, sizeof(*lat), cmp_d);
	printf("sessions=%ld size=%zu seconds=%.1f commits=%ld "
	       "commits/s=%.0f flushes/s=%.0f msgs/flush=%.1f "
	       "latency_ms p50=%.2f p99=%.2f p99.9=%.2f max=%.2f\n",
	    sessions, size, el, done, done / el, c.flushes / el,
	    c.flushes ? (double)c.commits / c.flushes : 0, lat[nlat / 2] * 1e3,
	    lat[nlat * 99 / 100] * 1e3, lat[nlat * 999 / 1000] * 1e3,
	    lat[nlat - 1] * 1e3);
	spool_close(sp);
	event_base_free(base);
	free(lat);
	free(body);
	return 0;
}
