/* test_spool_stall.c - a reclaimed segment's unlink and its directory
 * fsync never hold up a commit (node/spool_flush.c): while the fsync is in
 * progress, a message submitted meanwhile is still committed.  fsync is
 * wrapped (-Wl,--wrap=fsync): once armed, the next fsync of a directory
 * blocks until the test opens the gate.  The old spool unlinked in its
 * commit worker and synced the directory inside the batch: the commit
 * below then waited for the gate and the test failed on its deadline. */
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
#include <event2/event.h>

#include "spool.h"

int __real_fsync(int);
int __wrap_fsync(int);

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_armed, gate_held, gate_open;

/* Armed: the next fsync of a directory says it is held and waits. */
int
__wrap_fsync(int fd)
{
	struct stat st;

	pthread_mutex_lock(&gate_mu);
	if (gate_armed && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		gate_armed = false;
		gate_held = true;
		pthread_cond_broadcast(&gate_cv);
		while (!gate_open)
			pthread_cond_wait(&gate_cv, &gate_mu);
		gate_held = false;
	}
	pthread_mutex_unlock(&gate_mu);
	return __real_fsync(fd);
}

static void
gate_release(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static bool
gate_is_held(void)
{
	bool held;

	pthread_mutex_lock(&gate_mu);
	held = gate_held;
	pthread_mutex_unlock(&gate_mu);
	return held;
}

static int ncb, nok;

static void
cb(uint64_t cookie, const char *qid, bool ok)
{
	(void)cookie;
	(void)qid;
	ncb++;
	nok += ok;
}

static void
commit_cb(void *arg, uint64_t cookie, const char *qid, bool ok)
{
	(void)arg;
	cb(cookie, qid, ok);
}

/* Runs the loop until want callbacks arrived or 20 s passed (generous: a
 * loaded CI box can take seconds over one fdatasync). */
static bool
wait_cbs(struct event_base *base, int want, bool (*also)(void))
{
	struct timeval tick = {0, 10000};
	int i;

	for (i = 0; i < 2000; i++) {
		if (ncb >= want && (also == NULL || also()))
			return true;
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
	return ncb >= want && (also == NULL || also());
}

static void
submit(struct spool *s, char qid[SPOOL_QID_MAX])
{
	static const char *rcpts[] = {"a@example.net"};
	struct spool_envelope e = {.sender = "s@example.com",
	    .rcpts = rcpts,
	    .nrcpts = 1,
	    .client = "[192.0.2.1]:25000",
	    .helo = "client.example",
	    .message_id = "<m@example>",
	    .received_at = 1700000000};
	struct spool_msg *m = spool_msg_new(s);
	char body[1000];

	assert_non_null(m);
	snprintf(qid, SPOOL_QID_MAX, "%s", spool_msg_id(m));
	memset(body, 'x', sizeof(body));
	assert_int_equal(spool_msg_write(m, body, sizeof(body)), 0);
	spool_msg_commit(m, &e, commit_cb, NULL, 0);
}

static void
test_unlink_outside_commit(void **state)
{
	char dir[] = "/tmp/sluice-test-sstall-XXXXXX", cmd[80];
	/* small segments, so that the three messages fill more than a
	 * quarter of theirs: compaction would move them out and reclaim it
	 * before the gate is armed */
	struct spool_opts o = {.segment_size = 8192, .spill_size = 8192};
	char q[3][SPOOL_QID_MAX], extra[SPOOL_QID_MAX];
	struct event_base *base;
	struct spool *s;
	bool committed;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(base = event_base_new());
	assert_non_null(s = spool_open_opts(base, dir, NULL, &o));
	for (i = 0; i < 3; i++)
		submit(s, q[i]);
	assert_true(wait_cbs(base, 3, NULL));
	/* After a restart their segment is closed: once they are removed it
	 * is reclaimed (unlinked).  A first commit creates the new active
	 * segment before the gate is armed. */
	spool_close(s);
	assert_non_null(s = spool_open_opts(base, dir, NULL, &o));
	submit(s, extra);
	assert_true(wait_cbs(base, 4, NULL));

	pthread_mutex_lock(&gate_mu);
	gate_armed = true;
	pthread_mutex_unlock(&gate_mu);
	for (i = 0; i < 3; i++)
		assert_int_equal(spool_remove(s, q[i], cb, 0), 0);
	/* the removals commit, the old segment's unlink syncs the
	 * directory and is held there */
	if (!wait_cbs(base, 7, gate_is_held))
		fail_msg("no unlink's fsync held (%d callbacks)", ncb);

	submit(s, extra);
	committed = wait_cbs(base, 8, NULL);
	gate_release();
	if (!committed)
		fail_msg("a commit waited for a segment unlink's fsync");
	assert_int_equal(nok, 8);
	spool_close(s);
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unlink_outside_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
