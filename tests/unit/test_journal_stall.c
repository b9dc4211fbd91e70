/* test_journal_stall.c - the journal's fdatasyncs never hold its lock
 * (node/journal.c): while the sync made for a report (journal_pending)
 * and the ack file's (journal_ack) are in progress, the loop thread
 * still appends events and asks journal_room().  fdatasync is wrapped
 * (-Wl,--wrap=fdatasync): once the gate is armed, the next call blocks
 * until the test opens it, so "in progress" lasts as long as the test
 * wants.  The old journal synced under its mutex: the append below then
 * waited for the gate and the test failed on its timeout.  The same for
 * a compaction (journal_ack once expired records outgrow the live part):
 * its copy and the new file's fdatasync run without the lock; the old
 * journal did both under it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"

int __real_fdatasync(int);
int __wrap_fdatasync(int);

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_armed, gate_held, gate_open;

/* Only an fdatasync of a file whose name ends so is held (NULL: any). */
static const char *gate_suffix;

static bool
gate_matches(int fd)
{
	char link[64], path[4096];
	ssize_t n;
	size_t k;

	if (gate_suffix == NULL)
		return true;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return false;
	path[n] = '\0';
	k = strlen(gate_suffix);
	return (size_t)n >= k && strcmp(path + n - k, gate_suffix) == 0;
}

/* Armed: the next fdatasync says it is held and waits for the gate. */
int
__wrap_fdatasync(int fd)
{
	pthread_mutex_lock(&gate_mu);
	if (gate_armed && gate_matches(fd)) {
		gate_armed = false;
		gate_held = true;
		pthread_cond_broadcast(&gate_cv);
		while (!gate_open)
			pthread_cond_wait(&gate_cv, &gate_mu);
		gate_held = false;
	}
	pthread_mutex_unlock(&gate_mu);
	return __real_fdatasync(fd);
}

static void
gate_arm(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_armed = true;
	gate_open = false;
	pthread_mutex_unlock(&gate_mu);
}

/* Waits (up to 5 s) until an fdatasync is held at the gate. */
static void
gate_wait_held(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&gate_mu);
	while (!gate_held)
		if (pthread_cond_timedwait(&gate_cv, &gate_mu, &until) != 0)
			break;
	assert_true(gate_held);
	pthread_mutex_unlock(&gate_mu);
}

static void
gate_release(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void
append_one(struct journal *j)
{
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char kind[] = "delivered", qid[] = "Q1";

	ev.kind = kind;
	ev.queue_id = qid;
	assert_int_equal(journal_append(j, &ev), 0);
}

struct loop_arg {
	struct journal *j;
	volatile bool done;
};

/* The loop thread's part: an append and a room check. */
static void *
loop_work(void *arg)
{
	struct loop_arg *a = arg;

	append_one(a->j);
	(void)journal_room(a->j, 4096);
	a->done = true;
	return NULL;
}

/* The loop's work finishes within 5 s while a sync is held. */
static void
loop_not_blocked(struct journal *j)
{
	struct loop_arg a = {j, false};
	pthread_t t;
	int i;

	assert_int_equal(pthread_create(&t, NULL, loop_work, &a), 0);
	for (i = 0; i < 500 && !a.done; i++)
		usleep(10000);
	if (!a.done) {
		gate_release(); /* let everything finish, then fail */
		pthread_join(t, NULL);
		fail_msg("journal_append waited for an fdatasync");
	}
	pthread_join(t, NULL);
}

struct uplink_arg {
	struct journal *j;
	size_t n;
};

static void *
uplink_pending(void *arg)
{
	struct uplink_arg *a = arg;
	Sluice__Event **evs;

	a->n = journal_pending(a->j, 1000, &evs);
	journal_batch_free(evs, a->n);
	return NULL;
}

static void *
uplink_ack(void *arg)
{
	struct uplink_arg *a = arg;

	journal_ack(a->j, 2);
	return NULL;
}

static void
test_sync_outside_lock(void **state)
{
	char dir[] = "/tmp/sluice-test-jstall-XXXXXX", cmd[64];
	struct uplink_arg u;
	struct journal *j;
	pthread_t t;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(j = journal_open(dir));
	append_one(j);

	/* The report's sync is held: the loop goes on. */
	u.j = j;
	gate_arm();
	assert_int_equal(pthread_create(&t, NULL, uplink_pending, &u), 0);
	gate_wait_held();
	loop_not_blocked(j);
	gate_release();
	pthread_join(t, NULL);
	/* only what was durable before the report: the first event */
	assert_int_equal(u.n, 1);

	/* The ack file's sync is held: the loop goes on. */
	gate_arm();
	assert_int_equal(pthread_create(&t, NULL, uplink_ack, &u), 0);
	gate_wait_held();
	loop_not_blocked(j);
	gate_release();
	pthread_join(t, NULL);
	assert_int_equal(journal_unacked(j), 1); /* seq 3, from loop_work */

	journal_close(j);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

struct ack_arg {
	struct journal *j;
	uint64_t upto;
};

static void *
uplink_ack_upto(void *arg)
{
	struct ack_arg *a = arg;

	journal_ack(a->j, a->upto);
	return NULL;
}

/* A compaction of ~5 MiB of expired records: while its fdatasync of the
 * new file is held, the loop appends; the event appended meanwhile is in
 * the compacted journal, which is small, after a reopen. */
static void
test_compact_outside_lock(void **state)
{
	char dir[] = "/tmp/sluice-test-jcompact-XXXXXX", cmd[80], path[128];
	char big[1025];
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char kind[] = "delivered";
	struct ack_arg a;
	struct journal *j;
	struct stat st;
	pthread_t t;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(j = journal_open(dir));
	journal_set_retention(j, 0, 0); /* acknowledged: gone at once */
	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ev.kind = kind;
	ev.reply = big;
	for (i = 0; i < 5000; i++) {
		ev.seq = 0;
		ev.at_ms = 0;
		assert_int_equal(journal_append(j, &ev), 0);
	}
	/* everything but the last event acknowledged: >4 MiB expired ahead
	 * of one live record, so journal_ack compacts */
	a.j = j;
	a.upto = 4999;
	gate_suffix = "/events.journal.tmp";
	gate_arm();
	assert_int_equal(pthread_create(&t, NULL, uplink_ack_upto, &a), 0);
	gate_wait_held();
	loop_not_blocked(j);
	gate_release();
	pthread_join(t, NULL);
	gate_suffix = NULL;
	assert_int_equal(journal_unacked(j), 2); /* 5000 and loop_work's */
	journal_close(j);

	snprintf(path, sizeof(path), "%s/events.journal", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 64 * 1024);
	assert_non_null(j = journal_open(dir));
	assert_int_equal(journal_unacked(j), 2);
	journal_close(j);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sync_outside_lock),
	    cmocka_unit_test(test_compact_outside_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
