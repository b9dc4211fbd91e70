/* mailbox.h - the one thread-safe way into the loop thread.
 *
 * Any thread posts a closure; it runs once on the loop thread, in posting
 * order, from one libevent event (the loop's base must have
 * evthread_use_pthreads()).  The uplink thread hands the loop everything
 * it receives this way; nothing else of the loop is touched from another
 * thread.  Loop-owned state therefore needs no lock and no atomic. */
#ifndef SLUICE_MAILBOX_H
#define SLUICE_MAILBOX_H

struct event_base;
struct mailbox;

typedef void mailbox_fn(void *arg);

/* Loop thread.  NULL on ENOMEM. */
struct mailbox *mailbox_new(struct event_base *);
/* Loop thread, after every posting thread has stopped: runs what is still
 * queued (so no closure is lost and every arg is freed by its fn), then
 * frees the mailbox. */
void mailbox_free(struct mailbox *);
/* Any thread.  fn(arg) runs once on the loop thread, after everything
 * posted before it; ownership of arg passes to fn.  -1 (ENOMEM): fn will
 * not run and arg stays the caller's. */
int mailbox_post(struct mailbox *, mailbox_fn *fn, void *arg);

#endif
