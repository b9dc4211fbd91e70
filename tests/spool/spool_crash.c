/* spool_crash.c - a committer to SIGKILL: keeps CONC messages in flight
 * through the spool and prints "ACK <queue id> <size>" for each one the
 * commit callback acknowledged (the moment a session would send 250),
 * flushed at once.  Sizes vary so that some messages spill to tmp files;
 * the sender is "crash-<size>@test" so a listing can be checked.
 *
 * With CHURN=1 it also acts like a delivery engine: after each ack it may
 * mark a recipient of an acknowledged message delivered ("DONE <id> 0"
 * once durable) or remove one ("RM <id>" once the tombstone is durable),
 * with small segments compacted, reclaimed and recycled all the time
 * ("RECYCLED <n>" each time a reclaimed segment was reused as a new one).
 *
 *   spool_crash SPOOL_DIR [COUNT (0: forever, -1: recover only)] [CONC]
 *               [CHURN] */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"

static struct spool *sp;
static struct event_base *base;
static long count, started, acked;
static unsigned long seq;

static void submit(void);

#define KEEP 4096
static char live[KEEP][SPOOL_QID_MAX]; /* acknowledged, not removed */
static int nlive;
static bool churn;

static void
on_removed(uint64_t cookie, const char *qid, bool ok)
{
	(void)cookie;
	if (ok)
		printf("RM %s\n", qid);
	fflush(stdout);
}

static void
on_rcpt(uint64_t cookie, const char *qid, bool ok)
{
	(void)cookie;
	if (ok)
		printf("DONE %s 0\n", qid);
	fflush(stdout);
}

/* Delivery-like changes to random acknowledged messages. */
static void
churn_one(void)
{
	int i, r = rand() % 4;

	if (nlive == 0)
		return;
	i = rand() % nlive;
	if (r == 0) {
		spool_rcpt_done(
		    sp, live[i], 0, SPOOL_RCPT_DELIVERED, on_rcpt, 0);
	} else if (r <= 2 || nlive == KEEP) {
		/* Announced first: a kill may come before the RM line. */
		printf("RMREQ %s\n", live[i]);
		fflush(stdout);
		spool_remove(sp, live[i], on_removed, 0);
		memcpy(live[i], live[--nlive], SPOOL_QID_MAX);
	}
}

static void
on_commit(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	(void)arg;
	printf("%s %s %llu\n", ok ? "ACK" : "FAIL", qid,
	    (unsigned long long)cookie);
	fflush(stdout);
	acked++;
	if (ok && churn) {
		static uint64_t recycled;
		struct spool_counters c;
		spool_counters(sp, &c);
		if (c.segments_recycled != recycled) {
			recycled = c.segments_recycled;
			printf("RECYCLED %llu\n", (unsigned long long)recycled);
		}
		if (nlive < KEEP)
			snprintf(live[nlive++], SPOOL_QID_MAX, "%s", qid);
		churn_one();
	}
	if (count == 0 || started < count)
		submit();
	else if (acked == count)
		event_base_loopbreak(base);
}

static void
submit(void)
{
	static char buf[4096];
	const char *rcpts[2] = {"one@example.net", "two@example.net"};
	char sender[64];
	struct spool_msg *m;
	size_t size, done = 0;

	seq++;
	size = 100 + (seq * 7919) % 40000;
	if ((m = spool_msg_new(sp)) == NULL) {
		fprintf(stderr, "spool_msg_new failed\n");
		exit(1);
	}
	while (done < size) {
		size_t k =
		    size - done < sizeof(buf) ? size - done : sizeof(buf);
		memset(buf, 'a' + (int)(seq % 26), k);
		if (spool_msg_write(m, buf, k) == -1)
			break;
		done += k;
	}
	snprintf(sender, sizeof(sender), "crash-%zu@test", size);
	struct spool_envelope env = {.sender = sender,
	    .rcpts = rcpts,
	    .nrcpts = 2,
	    .client = "[127.0.0.1]:1",
	    .helo = "crash",
	    .message_id = "",
	    .received_at = 1};
	started++;
	spool_msg_commit(m, &env, on_commit, NULL, size);
}

int
main(int argc, char **argv)
{
	struct spool_opts o = {.segment_size = 1 << 20, .spill_size = 16384};
	long conc = 16;

	if (argc < 2) {
		fprintf(stderr, "usage: spool_crash DIR [COUNT] [CONC]\n");
		return 2;
	}
	count = argc > 2 ? atol(argv[2]) : 0;
	conc = argc > 3 ? atol(argv[3]) : 16;
	churn = argc > 4 && atoi(argv[4]) != 0;
	if (churn) {
		o.segment_size = 256 << 10;
		o.compact_delay_ms = 1; /* compaction under the kills too */
	}
	srand((unsigned)getpid());
	log_init("spool_crash", false);
	base = event_base_new();
	if ((sp = spool_open_opts(base, argv[1], NULL, &o)) == NULL)
		return 1;
	printf("READY\n");
	fflush(stdout);
	if (count < 0)
		goto out; /* recovery only */
	for (long i = 0; i < conc && (count == 0 || started < count); i++)
		submit();
	if (started > 0)
		event_base_dispatch(base);
out:
	spool_close(sp);
	event_base_free(base);
	return 0;
}
