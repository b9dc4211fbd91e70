/* spool.h - the node's durable queue; only spool.c touches the spool
 * directory's queue files.  Loop thread only; the fsync batches run on a
 * worker thread and come back to the loop (group commit).
 *
 * Contract with the SMTP server: a message is acknowledged with 250 only
 * from the commit callback with ok == true, i.e. after its data and its
 * envelope are on stable storage.  Contract with the delivery engine (a
 * later issue): messages are enumerated, read, marked per recipient and
 * removed through this API only. */
#ifndef SLUICE_SPOOL_H
#define SLUICE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct node_stats;
struct spool;
struct spool_msg;

#define SPOOL_QID_MAX 24	/* queue id string incl. NUL */

struct spool_envelope {
	const char	*sender;	/* "" for the null sender <> */
	const char	*const *rcpts;
	size_t		 nrcpts;
	const char	*client;	/* "[198.51.100.7]:52100" style */
	const char	*helo;
	const char	*auth_user;	/* NULL or "" when not authenticated */
	const char	*message_id;	/* Message-ID header or "" */
	int64_t		 received_at;	/* unix seconds */
	bool		 smtputf8;
	bool		 eightbit;
};

/* Opens (creating) dir, recovers: committed messages are queued exactly
 * once, partial ones removed.  stats may be NULL. NULL on error, logged. */
struct spool	*spool_open(struct event_base *, const char *dir,
		    struct node_stats *stats);
void		 spool_close(struct spool *);

/* Starts a message; NULL on error (the session answers 451 4.3.0). */
struct spool_msg *spool_msg_new(struct spool *);
const char	*spool_msg_id(const struct spool_msg *);
/* Appends message data (already un-dot-stuffed, CRLF line ends).
 * -1 on error (disk full: 452 4.3.1). */
int		 spool_msg_write(struct spool_msg *, const void *, size_t);
void		 spool_msg_abort(struct spool_msg *);

/* Called on the loop thread once the commit is durable (ok) or failed.
 * The spool owns and frees msg after the callback returns.  The callback
 * gets back the cookie it was given, never a session pointer the spool
 * would keep: the session looks itself up by cookie and may be gone. */
typedef void	(*spool_commit_cb)(uint64_t cookie, const char *queue_id,
		    bool ok);
/* Hands msg to group commit: env is copied before return. */
void		 spool_msg_commit(struct spool_msg *,
		    const struct spool_envelope *, spool_commit_cb,
		    uint64_t cookie);

#endif
