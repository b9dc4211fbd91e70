/* spool_fill.c - fills a spool with N deferred messages, as a node's queue
 * looks after a long outage of its hop: bench/deferred.sh starts a node on
 * it and measures what the idle node costs.
 *
 *   spool_fill DIR [N=100000] [SIZE=1024] [DEFER_S=3600]
 *
 * Every message is committed (100 in flight, durability on) and then set
 * DEFERRED with its next attempt DEFER_S seconds from now. */
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
static long total, submitted, settled;
static int64_t defer_s;
static char *body;

static void submit(void);

static void
on_state(uint64_t cookie, const char *qid, bool ok)
{
	(void)cookie;
	(void)qid;
	if (!ok) {
		fprintf(stderr, "state record failed\n");
		exit(1);
	}
	if (++settled == total)
		event_base_loopbreak(base);
}

static void
on_commit(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	(void)arg;
	(void)cookie;
	if (!ok) {
		fprintf(stderr, "commit failed\n");
		exit(1);
	}
	spool_set_state(
	    sp, qid, SPOOL_DEFERRED, time(NULL) + defer_s, on_state, 0);
	if (submitted < total)
		submit();
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
	    .auth_user = "",
	    .message_id = "<bench@example.com>",
	    .received_at = time(NULL)};
	struct spool_msg *m = spool_msg_new(sp);

	if (m == NULL || spool_msg_write(m, body, size) == -1) {
		fprintf(stderr, "spool write failed\n");
		exit(1);
	}
	submitted++;
	spool_msg_commit(m, &env, on_commit, NULL, 0);
}

int
main(int argc, char **argv)
{
	long i;

	if (argc < 2) {
		fprintf(stderr, "usage: spool_fill DIR [N] [SIZE] [DEFER_S]\n");
		return 2;
	}
	total = argc > 2 ? atol(argv[2]) : 100000;
	size = argc > 3 ? (size_t)atol(argv[3]) : 1024;
	defer_s = argc > 4 ? atol(argv[4]) : 3600;
	log_init("spool_fill", false);
	body = malloc(size + 2);
	memset(body, 'x', size);
	memcpy(body + size - 2, "\r\n", 2);
	base = event_base_new();
	if (total <= 0 || (sp = spool_open(base, argv[1], NULL)) == NULL)
		return 1;
	for (i = 0; i < 100 && submitted < total; i++)
		submit();
	event_base_dispatch(base);
	spool_close(sp);
	event_base_free(base);
	free(body);
	printf("%ld deferred messages in %s\n", total, argv[1]);
	return 0;
}
