/* test_mailbox.c - closures posted from other threads run on the loop
 * thread, each once, in each poster's order; none is lost when the
 * mailbox closes with some still queued (mailbox_free runs them, so each
 * arg is freed by its fn: LeakSanitizer checks that in build-asan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>

#include "mailbox.h"

#define POSTERS 4
#define PER     50000

struct box {
	struct event_base *base;
	struct mailbox *mb;
	pthread_t loop;         /* the thread that must run every closure */
	uint64_t next[POSTERS]; /* next sequence number expected per poster */
	uint64_t ran;
	uint64_t want;
	int wrong_thread, out_of_order;
};

struct msg {
	struct box *b;
	int poster;
	uint64_t seq;
};

static void
on_msg(void *arg)
{
	struct msg *m = arg;
	struct box *b = m->b;

	if (!pthread_equal(pthread_self(), b->loop))
		b->wrong_thread++;
	if (m->seq != b->next[m->poster])
		b->out_of_order++;
	b->next[m->poster] = m->seq + 1;
	if (++b->ran == b->want && b->base != NULL)
		event_base_loopbreak(b->base);
	free(m);
}

struct poster {
	struct box *b;
	int id;
	uint64_t n;
};

static void *
post_many(void *arg)
{
	struct poster *p = arg;
	struct msg *m;
	uint64_t i;

	for (i = 0; i < p->n; i++) {
		m = malloc(sizeof(*m));
		assert_non_null(m);
		m->b = p->b;
		m->poster = p->id;
		m->seq = i;
		assert_int_equal(mailbox_post(p->b->mb, on_msg, m), 0);
	}
	return NULL;
}

static void
test_many_threads_in_order(void **state)
{
	struct poster p[POSTERS];
	pthread_t t[POSTERS];
	struct box b;
	int i;

	(void)state;
	memset(&b, 0, sizeof(b));
	b.base = event_base_new();
	b.mb = mailbox_new(b.base);
	assert_non_null(b.mb);
	b.loop = pthread_self();
	b.want = (uint64_t)POSTERS * PER;
	for (i = 0; i < POSTERS; i++) {
		p[i].b = &b;
		p[i].id = i;
		p[i].n = PER;
		assert_int_equal(
		    pthread_create(&t[i], NULL, post_many, &p[i]), 0);
	}
	/* Runs until the last closure breaks the loop: a lost wake-up
	 * would hang here (ctest's timeout fails the test). */
	assert_int_equal(event_base_loop(b.base, EVLOOP_NO_EXIT_ON_EMPTY), 0);
	for (i = 0; i < POSTERS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(b.ran, b.want);
	assert_int_equal(b.wrong_thread, 0);
	assert_int_equal(b.out_of_order, 0);
	for (i = 0; i < POSTERS; i++)
		assert_int_equal(b.next[i], PER);
	mailbox_free(b.mb);
	event_base_free(b.base);
}

/* Posted but the loop never ran: mailbox_free runs them all, in order. */
static void
test_free_runs_the_rest(void **state)
{
	struct event_base *base = event_base_new();
	struct poster p = {0};
	pthread_t t;
	struct box b;

	(void)state;
	memset(&b, 0, sizeof(b));
	b.mb = mailbox_new(base);
	b.loop = pthread_self();
	b.want = 1000;
	p.b = &b;
	p.n = 1000;
	assert_int_equal(pthread_create(&t, NULL, post_many, &p), 0);
	pthread_join(t, NULL);
	assert_int_equal(b.ran, 0);
	mailbox_free(b.mb);
	assert_int_equal(b.ran, 1000);
	assert_int_equal(b.next[0], 1000);
	assert_int_equal(b.out_of_order, 0);
	event_base_free(base);
}

struct chain {
	struct mailbox *mb;
	struct event_base *base;
	int left, ran;
};

/* A closure that posts the next one: it runs on a later turn. */
static void
on_chain(void *arg)
{
	struct chain *c = arg;

	c->ran++;
	if (--c->left > 0)
		assert_int_equal(mailbox_post(c->mb, on_chain, c), 0);
	else
		event_base_loopbreak(c->base);
}

static void
test_post_from_a_closure(void **state)
{
	struct chain c;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.base = event_base_new();
	c.mb = mailbox_new(c.base);
	c.left = 100;
	assert_int_equal(mailbox_post(c.mb, on_chain, &c), 0);
	assert_int_equal(event_base_loop(c.base, EVLOOP_NO_EXIT_ON_EMPTY), 0);
	assert_int_equal(c.ran, 100);
	mailbox_free(c.mb);
	event_base_free(c.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_many_threads_in_order),
	    cmocka_unit_test(test_free_runs_the_rest),
	    cmocka_unit_test(test_post_from_a_closure),
	};

	if (evthread_use_pthreads() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
