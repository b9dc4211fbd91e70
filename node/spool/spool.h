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
#include <stdio.h>
#include <sys/types.h>

struct event_base;
struct node_stats;
struct spool;
struct spool_msg;

#define SPOOL_QID_MAX 24 /* queue id string incl. NUL */

struct spool_envelope {
	const char *sender; /* "" for the null sender <> */
	const char *const *rcpts;
	size_t nrcpts;
	const char *client; /* "[198.51.100.7]:52100" style */
	const char *helo;
	const char *auth_user;  /* NULL or "" when not authenticated */
	const char *message_id; /* Message-ID header or "" */
	int64_t received_at;    /* unix seconds */
	bool smtputf8;
	bool eightbit; /* the client declared BODY=8BITMIME */
	bool body8bit; /* octets > 127 found in the body */
	bool hdr8bit;  /* octets > 127 found in the header block */
	/* DKIM-Signature fields computed once at acceptance (signer.h),
	 * sent before the data on every attempt; NULL or "": unsigned. */
	const char *dkim;
	/* The signature covers the 7-bit (mime8) form of 8-bit data: the
	 * message always goes converted (docs/dkim.md). */
	bool dkim7;
	/* The listener the message came in on (its name; route
	 * conditions), NULL or "" unknown: mail spooled before issue 15. */
	const char *listener;
	/* Queued held (SPOOL_HELD) from the start: the AUTH user's hold
	 * flag.  Only read at commit; spool_info.state says the state. */
	bool hold;
	/* Shadow spools only (docs/redundancy.md): whose message this is
	 * a copy of, "NODE QUEUEID"; NULL or "" in a node's own queue. */
	const char *origin;
};

/* Opens (creating) dir, recovers: committed messages are queued exactly
 * once, partial ones removed.  stats may be NULL. NULL on error, logged. */
struct spool *spool_open(
    struct event_base *, const char *dir, struct node_stats *stats);
void spool_close(struct spool *);

/* Starts a message; NULL on error (the session answers 451 4.3.0). */
struct spool_msg *spool_msg_new(struct spool *);
const char *spool_msg_id(const struct spool_msg *);
/* Appends message data (already un-dot-stuffed, CRLF line ends).
 * -1 on error (disk full: 452 4.3.1). */
int spool_msg_write(struct spool_msg *, const void *, size_t);
void spool_msg_abort(struct spool_msg *);
/* The data written so far when it is still in memory (not spilled to a
 * tmp file): 0 with p and len valid until the next write, commit or abort;
 * -1 when spilled or failed.  (Shadow copies are sent from it while the
 * commit runs, docs/redundancy.md.) */
int spool_msg_peek(const struct spool_msg *, const uint8_t **p, size_t *len);

/* Called on the loop thread once the commit is durable (ok) or failed.
 * The spool owns and frees msg after the callback returns.  The callback
 * gets back the cookie it was given, never a session pointer the spool
 * would keep: the session looks itself up by cookie and may be gone. */
typedef void (*spool_commit_cb)(
    void *arg, uint64_t cookie, const char *queue_id, bool ok);
/* Hands msg to group commit: env is copied before return.  arg (the
 * caller's context: its server, its engine) comes back with the cookie. */
void spool_msg_commit(struct spool_msg *, const struct spool_envelope *,
    spool_commit_cb, void *arg, uint64_t cookie);

/* A record to make durable with a message (the node's received event, in
 * its event journal): the flush worker calls write() once the message's
 * record is written, before the batch's fdatasync, then the sync hook
 * after that fdatasync and before the commit callback says ok.  drop()
 * frees a note whose message failed before it was written.  Each frees
 * the note. */
struct spool_note {
	void (*write)(struct spool_note *);
	void (*drop)(struct spool_note *);
};
/* Make the notes durable: the flush worker calls begin() just before an
 * fdatasync that covers notes and end() after it, so the two syncs run
 * side by side; end() returns once the notes are durable. */
void spool_set_sync_hooks(struct spool *, void (*begin)(void *arg),
    void (*end)(void *arg), void *arg);
/* spool_msg_commit with a note (NULL: none); the spool owns it. */
void spool_msg_commit_note(struct spool_msg *, const struct spool_envelope *,
    spool_commit_cb, void *arg, uint64_t cookie, struct spool_note *);

/*
 * Additions (the delivery engine, queue listing, tests).
 *
 * Queue state of a message.  Every change below is applied in memory at
 * once (spool_foreach sees it) and journaled with group commit; the
 * optional callback says when it is durable.  A change lost to a crash
 * before it was durable is redone by the caller (at-least-once).
 */
enum spool_state {
	SPOOL_ACTIVE = 0,   /* due now */
	SPOOL_DEFERRED = 1, /* waiting for next_attempt_at */
	SPOOL_HELD = 2,     /* operator hold: never due until released */
};
enum spool_rcpt_status {
	SPOOL_RCPT_PENDING = 0,
	SPOOL_RCPT_DELIVERED = 1,
	SPOOL_RCPT_BOUNCED = 2,
};

/* A queued message as seen by spool_foreach/spool_lookup.  Pointers are
 * owned by the spool and valid until the message is removed or the spool
 * closed; copy what must outlive the callback. */
struct spool_info {
	const char *queue_id;
	struct spool_envelope env;
	const uint8_t *rcpt_status; /* [env.nrcpts] spool_rcpt_status */
	size_t npending;            /* recipients still PENDING */
	uint64_t size;              /* message data octets */
	enum spool_state state;
	int64_t next_attempt_at; /* unix s, 0: now */
	int64_t committed_at;    /* unix s */
};

/* Options for spool_open_opts; zero fields take the defaults. */
struct spool_opts {
	uint64_t segment_size;     /* preallocated segment, default 64 MiB */
	size_t spill_size;         /* in-memory data before a tmp file,
	                            * default 256 KiB */
	uint64_t compact_delay_ms; /* a closed segment less than a quarter
	                            * live is compacted after this long,
	                            * default 30 s */
	uint32_t lazy_sync_ms;     /* bookkeeping records (rcpt done, state,
	                            * remove) wait at most this long for a
	                            * commit to share its fdatasync, default
	                            * 20 ms */
};
struct spool *spool_open_opts(struct event_base *, const char *dir,
    struct node_stats *, const struct spool_opts *);

/* Calls cb for every queued message, oldest commit first; a non-zero
 * return stops the walk and is returned.  cb must not remove messages. */
typedef int (*spool_foreach_cb)(const struct spool_info *, void *arg);
int spool_foreach(struct spool *, spool_foreach_cb, void *arg);
/* 0 and *out filled, or -1 if queue_id is not queued. */
int spool_lookup(struct spool *, const char *queue_id, struct spool_info *out);

/* Where a message's data lies: *fd (owned by the spool, read it with
 * pread only), *off, *len.  Valid until control returns to the event loop:
 * compaction may move a message to a newer segment and close the old one
 * (spool_read resolves the id on every call).  The data is exactly what
 * spool_msg_write was given.  0, or -1 if not queued. */
int spool_data(struct spool *, const char *queue_id, int *fd, uint64_t *off,
    uint64_t *len);
/* Reads up to n octets of the data from off; octets read or -1. */
ssize_t spool_read(
    struct spool *, const char *queue_id, uint64_t off, void *, size_t n);

/* Called on the loop thread when a change is durable (ok) or failed. */
typedef void (*spool_done_cb)(uint64_t cookie, const char *queue_id, bool ok);
/* Recipient idx (of env.rcpts) is delivered or bounced: journaled so a
 * restart does not deliver it again.  -1 if unknown id/idx. cb may be
 * NULL. */
int spool_rcpt_done(struct spool *, const char *queue_id, size_t idx,
    enum spool_rcpt_status, spool_done_cb, uint64_t cookie);
/* Moves the message to state (active/deferred/held) with its next
 * attempt time. -1 if unknown. */
int spool_set_state(struct spool *, const char *queue_id, enum spool_state,
    int64_t next_attempt_at, spool_done_cb, uint64_t cookie);
/* Removes the message (a tombstone in the log; its segment is reclaimed
 * once nothing in it is live).  -1 if unknown. */
int spool_remove(
    struct spool *, const char *queue_id, spool_done_cb, uint64_t cookie);

/* One watcher (the delivery engine's due-time index) is told of every
 * change of the set of queued messages, on the loop thread, as it
 * happens: a message queued (its commit durable; after the commit
 * callback, so the 250 is on its way first), moved by spool_set_state,
 * or removed (removed true; state and next_attempt_at then mean
 * nothing).  Messages already queued when the watch is set are not
 * reported: walk them with spool_foreach.  cb NULL stops the watch. */
typedef void (*spool_watch_cb)(void *arg, const char *queue_id,
    enum spool_state, int64_t next_attempt_at, bool removed);
void spool_watch(struct spool *, spool_watch_cb, void *arg);

/* errno of the failure being reported, valid inside a commit or done
 * callback with ok == false (ENOSPC: answer 452 4.3.1, else 451 4.3.0).
 * spool_msg_write leaves errno set itself. */
int spool_last_errno(const struct spool *);

/* Counters for tests and /metrics. */
#define SPOOL_SYNC_BUCKETS 12
struct spool_counters {
	uint64_t commits;  /* messages made durable */
	uint64_t records;  /* all records made durable */
	uint64_t flushes;  /* fdatasync batches */
	uint64_t failures; /* failed commits/records */
	uint64_t segments; /* segment files now on disk */
	uint64_t segments_deleted;
	uint64_t segments_recycled; /* reclaimed files reused as new ones */
	uint64_t relocated;         /* messages moved by compaction */
	/* Group-commit latency (the fdatasync of a batch, with the journal
	 * notes it covers): how many took at most spool_sync_bounds_us[i],
	 * not cumulative; the last bucket is the rest.  sync_us: the sum. */
	uint64_t sync_buckets[SPOOL_SYNC_BUCKETS];
	uint64_t sync_us;
};
extern const uint64_t spool_sync_bounds_us[SPOOL_SYNC_BUCKETS - 1];
void spool_counters(const struct spool *, struct spool_counters *);

/* Reads the queue in dir without changing anything (no lock, no
 * truncation, no reclaim) and prints one line per queued message:
 *   QUEUEID state=active size=N from=<s> to=<r1>,<r2> done=<r3>
 * Returns the number of messages, or -1 on error.  For tests and
 * tools (tests/spool/spool_list.c). */
int spool_dump(const char *dir, FILE *);

#endif
