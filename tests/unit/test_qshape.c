/* test_qshape.c - the queue summary by domain (node/control/qshape.c):
 * a table of queued messages in, the rows out: counts per domain (a
 * message counted once per domain, only pending recipients, domains
 * case-folded), deferred and held, age buckets, order, the top-N cut and
 * the "(other)" row past the tracked domains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "qshape.h"
#include "spool.h"

#define NOW 1700000000

struct msg {
	const char *rcpts[4];
	const char *status; /* per recipient: p pending, d done */
	enum spool_state state;
	int64_t age_min;
};

static void
add(struct qshape *q, const struct msg *m)
{
	uint8_t st[4];
	struct spool_info si;
	size_t n;

	memset(&si, 0, sizeof(si));
	for (n = 0; n < 4 && m->rcpts[n] != NULL; n++)
		st[n] = m->status[n] == 'p' ? SPOOL_RCPT_PENDING
		                            : SPOOL_RCPT_DELIVERED;
	si.queue_id = "Q";
	si.env.sender = "s@example.org";
	si.env.rcpts = m->rcpts;
	si.env.nrcpts = n;
	si.rcpt_status = st;
	si.state = m->state;
	si.committed_at = NOW - m->age_min * 60;
	assert_int_equal(qshape_add(q, &si), 0);
}

static void
test_table(void **state)
{
	static const struct msg in[] = {
	    /* two recipients at one domain: one message there */
	    {{"a@gmail.com", "b@GMAIL.com"}, "pp", SPOOL_DEFERRED, 3},
	    {{"c@gmail.com", "d@yahoo.com"}, "pp", SPOOL_ACTIVE, 12},
	    /* delivered recipients do not count */
	    {{"e@yahoo.com", "f@outlook.com"}, "dp", SPOOL_HELD, 200},
	    {{"g@Outlook.COM"}, "p", SPOOL_DEFERRED, 45},
	    {{"h@gmail.com"}, "p", SPOOL_ACTIVE, 0},
	    /* no '@': the empty domain */
	    {{"postmaster"}, "p", SPOOL_ACTIVE, 161},
	};
	static const struct {
		const char *domain;
		uint64_t messages, deferred, held;
		uint64_t ages[QSHAPE_NAGE];
	} want[] = {
	    /* most messages first, then by name */
	    {"gmail.com", 3, 1, 0, {2, 0, 1, 0, 0, 0, 0}},
	    {"outlook.com", 2, 1, 1, {0, 0, 0, 0, 1, 0, 1}},
	    {"", 1, 0, 0, {0, 0, 0, 0, 0, 0, 1}},
	    {"yahoo.com", 1, 0, 0, {0, 0, 1, 0, 0, 0, 0}},
	};
	Sluice__QueueShape **rows;
	struct qshape *q = qshape_new(NOW);
	size_t i, k, n;

	(void)state;
	assert_non_null(q);
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		add(q, &in[i]);
	n = qshape_top(q, &rows);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < n; i++) {
		assert_string_equal(rows[i]->domain, want[i].domain);
		assert_int_equal(rows[i]->messages, want[i].messages);
		assert_int_equal(rows[i]->deferred, want[i].deferred);
		assert_int_equal(rows[i]->held, want[i].held);
		assert_int_equal(rows[i]->n_age_buckets, QSHAPE_NAGE);
		for (k = 0; k < QSHAPE_NAGE; k++)
			assert_int_equal(
			    rows[i]->age_buckets[k], want[i].ages[k]);
	}
	qshape_free(q);
}

/* More domains than tracked: the rest share "(other)"; only the largest
 * QSHAPE_SEND rows are reported. */
static void
test_bounds(void **state)
{
	char names[QSHAPE_SCAN + 10][32];
	struct msg m;
	Sluice__QueueShape **rows;
	struct qshape *q = qshape_new(NOW);
	size_t i, n, other = 0;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.status = "p";
	m.state = SPOOL_DEFERRED;
	for (i = 0; i < QSHAPE_SCAN + 10; i++) {
		snprintf(names[i], sizeof(names[i]), "u@d%04zu.example", i);
		m.rcpts[0] = names[i];
		add(q, &m);
	}
	/* d0000 gets two more messages: the largest row */
	m.rcpts[0] = names[0];
	add(q, &m);
	add(q, &m);
	n = qshape_top(q, &rows);
	assert_int_equal(n, QSHAPE_SEND);
	/* the 11 past the table (QSHAPE_SCAN - 1 real rows + "(other)") */
	assert_string_equal(rows[0]->domain, "(other)");
	assert_int_equal(rows[0]->messages, 11);
	assert_string_equal(rows[1]->domain, "d0000.example");
	assert_int_equal(rows[1]->messages, 3);
	for (i = 2; i < n; i++) {
		assert_int_equal(rows[i]->messages, 1);
		other += strcmp(rows[i]->domain, "(other)") == 0;
	}
	assert_int_equal(other, 0);
	qshape_free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
