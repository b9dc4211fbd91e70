/* mailbox.c - closures posted from any thread, run on the loop (mailbox.h).
 *
 * A mutex-protected FIFO and one libevent event.  Posting to an empty
 * queue activates the event (event_active is thread-safe once libevent
 * runs with pthreads); the callback takes the whole queue under the lock
 * and runs it outside, so a closure may post again (it runs on the next
 * turn, not inside this one). */
#include "mailbox.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

struct mailbox_item {
	struct mailbox_item *next;
	mailbox_fn *fn;
	void *arg;
};

struct mailbox {
	struct event *ev;
	pthread_mutex_t mu;
	struct mailbox_item *head, **tail; /* under mu */
};

/* Takes the queue; the caller runs it. */
static struct mailbox_item *
mailbox_take(struct mailbox *mb)
{
	struct mailbox_item *l;

	pthread_mutex_lock(&mb->mu);
	l = mb->head;
	mb->head = NULL;
	mb->tail = &mb->head;
	pthread_mutex_unlock(&mb->mu);
	return l;
}

static void
mailbox_run(struct mailbox_item *l)
{
	struct mailbox_item *next;

	for (; l != NULL; l = next) {
		next = l->next;
		l->fn(l->arg);
		free(l);
	}
}

static void
mailbox_on_post(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mailbox_run(mailbox_take(arg));
}

struct mailbox *
mailbox_new(struct event_base *base)
{
	struct mailbox *mb;

	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return NULL;
	if ((mb->ev = event_new(base, -1, 0, mailbox_on_post, mb)) == NULL) {
		free(mb);
		return NULL;
	}
	pthread_mutex_init(&mb->mu, NULL);
	mb->tail = &mb->head;
	return mb;
}

void
mailbox_free(struct mailbox *mb)
{
	if (mb == NULL)
		return;
	mailbox_run(mailbox_take(mb));
	event_free(mb->ev);
	pthread_mutex_destroy(&mb->mu);
	free(mb);
}

int
mailbox_post(struct mailbox *mb, mailbox_fn *fn, void *arg)
{
	struct mailbox_item *it;
	int was_empty;

	if ((it = malloc(sizeof(*it))) == NULL)
		return -1;
	it->next = NULL;
	it->fn = fn;
	it->arg = arg;
	pthread_mutex_lock(&mb->mu);
	was_empty = mb->head == NULL;
	*mb->tail = it;
	mb->tail = &it->next;
	pthread_mutex_unlock(&mb->mu);
	/* Once per batch: the callback takes everything queued by then. */
	if (was_empty)
		event_active(mb->ev, EV_READ, 0);
	return 0;
}
