/* test_journal.c - the event journal's retention past acknowledgement
 * (node/journal.c): acknowledged events stay for the window and come back
 * with journal_rewind(), also after the file was compacted and after a
 * reopen; expired ones are reported lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"

static char dir[] = "/tmp/sluice-test-journal-XXXXXX";

static void
append(struct journal *j, int n)
{
	Sluice__Event ev = SLUICE__EVENT__INIT;
	char qid[32], kind[] = "received",
	              sender[] = "someone-with-a-longer-address@example.com";
	int i;

	for (i = 0; i < n; i++) {
		snprintf(qid, sizeof(qid), "Q%08d", i);
		ev.kind = kind;
		ev.queue_id = qid;
		ev.sender = sender;
		ev.at_ms = 0;
		assert_int_equal(journal_append(j, &ev), 0);
	}
}

/* Sends everything pending the way the uplink does: returns how many. */
static uint64_t
drain(struct journal *j)
{
	Sluice__Event **evs;
	uint64_t total = 0, last = 0;
	size_t n, i;

	while ((n = journal_pending(j, 1000, &evs)) > 0) {
		for (i = 0; i < n; i++) {
			assert_true(evs[i]->seq > last);
			last = evs[i]->seq;
		}
		journal_batch_free(evs, n);
		journal_ack(j, last);
		total += n;
	}
	return total;
}

static off_t
file_size(void)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/events.journal", dir);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void
test_rewind(void **state)
{
	struct journal *j;
	uint64_t acked, from, lost;

	(void)state;
	assert_non_null(j = journal_open(dir));
	append(j, 100);
	assert_int_equal(drain(j), 100);
	journal_window(j, &acked, &from);
	assert_int_equal(acked, 100);
	assert_int_equal(from, 1); /* all retained */
	/* the database has 90: 10 come back, nothing lost */
	assert_int_equal(journal_rewind(j, 90, &lost), 10);
	assert_int_equal(lost, 0);
	assert_int_equal(journal_unacked(j), 10);
	assert_int_equal(drain(j), 10);
	/* a rewind past what is acked changes nothing */
	assert_int_equal(journal_rewind(j, 100, &lost), 0);
	journal_close(j);
	/* reopened: acknowledged ones are retained again from now */
	assert_non_null(j = journal_open(dir));
	assert_int_equal(journal_unacked(j), 0);
	assert_int_equal(journal_rewind(j, 95, &lost), 5);
	assert_int_equal(drain(j), 5);
	/* retention 0: nothing kept, a rewind reports the loss */
	journal_set_retention(j, 0, 0);
	journal_window(j, &acked, &from);
	assert_int_equal(from, 0);
	assert_int_equal(journal_rewind(j, 50, &lost), 0);
	assert_int_equal(lost, 51);
	journal_close(j);
}

static void
test_compact(void **state)
{
	struct journal *j;
	uint64_t acked, from, lost;
	off_t big;

	(void)state;
	assert_non_null(j = journal_open(dir));
	/* past the 4 MiB mark, all acknowledged and retained */
	append(j, 100000);
	drain(j);
	big = file_size();
	assert_true(big > 4 * 1024 * 1024);
	/* keep only the newest ~1 MiB: the rest expires at the next ack,
	 * and the file is compacted to what is kept */
	journal_set_retention(j, 3600 * 1000, 1024 * 1024);
	append(j, 10);
	drain(j);
	assert_true(file_size() < big / 2);
	journal_window(j, &acked, &from);
	assert_true(from > 1);
	/* what is retained still reads back right, at its new place */
	assert_int_equal(journal_rewind(j, acked - 500, &lost), 500);
	assert_int_equal(lost, 0);
	assert_int_equal(drain(j), 500);
	/* and older than the window is lost */
	assert_int_equal(
	    journal_rewind(j, from - 2, &lost), (int64_t)(acked - from + 1));
	assert_int_equal(lost, from - 1);
	journal_close(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rewind),
	    cmocka_unit_test(test_compact),
	};
	char cmd[128];
	int rc;

	if (mkdtemp(dir) == NULL)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
