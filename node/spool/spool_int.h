/* spool_int.h - private to spool*.c: the on-disk format (docs/spool.md),
 * the loop-side index and the jobs the flush worker runs.  The loop thread
 * owns struct spool except the job queues (under mu) and the worker's
 * segment writer (worker thread only). */
#ifndef SLUICE_SPOOL_INT_H
#define SLUICE_SPOOL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "crc32c.h"
#include "spool.h"

/* Segment file: <dir>/queue/<16 hex seq>.seg, a 32-octet header then
 * records.  All integers little-endian.  Version 2 seeds each record's
 * CRC with the segment's seq (spool_rec_seed), so the records a recycled
 * file held in its previous life never read as valid in its new one;
 * version 1 files (seed 0) are still read. */
#define SPOOL_SUBDIR    "queue"
#define SPOOL_SEG_MAGIC "SLUICEQ\n"
#define SPOOL_VERSION   2
#define SPOOL_SEG_HDR   32
/* A reclaimed segment kept for reuse as the next one (spool_flush.c):
 * its blocks are written already, so appends into it overwrite them and
 * each fdatasync flushes data only. */
#define SPOOL_RECYCLED "recycled.spare"
/* Record: 16-octet header {magic, type u16, flags u16, len u32, crc u32}
 * then len octets of payload, padded with zeros to a multiple of 8.  The
 * CRC32C runs from the segment's seed over the header's first 12 octets,
 * then the payload. */
#define SPOOL_REC_MAGIC     0x4352514cU /* "LQRC" on disk */
#define SPOOL_REC_HDR       16
#define SPOOL_LAZY_MS       20 /* default longest wait of a bookkeeping sync */
#define SPOOL_MSG_HEAD      32 /* rec hdr + id u64 + data_len u64 */
#define SPOOL_MSG_FIRST     4096  /* a message's first buffer */
#define SPOOL_MSG_GROW      32768 /* its first growth */
#define SPOOL_REC_MAX       (UINT32_MAX - 64)
#define SPOOL_DEF_SEGMENT   (64ULL << 20)
#define SPOOL_COMPACT_SLICE (1ULL << 20) /* bytes copied per round */
#define SPOOL_DEF_SPILL     (256U << 10)

/* MSG record header flag: the tail ends with the queue state (a copy made
 * by compaction). */
#define SPOOL_MSG_F_STATE 0x0001

enum spool_rec_type {
	SPOOL_REC_MSG = 1,
	SPOOL_REC_RCPT = 2,
	SPOOL_REC_STATE = 3,
	SPOOL_REC_REMOVE = 4,
};

static inline uint64_t
spool_align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

/* spool_record.c: pure encoding and decoding. */
void spool_put16(uint8_t *, uint16_t);
void spool_put32(uint8_t *, uint32_t);
void spool_put64(uint8_t *, uint64_t);
uint16_t spool_get16(const uint8_t *);
uint32_t spool_get32(const uint8_t *);
uint64_t spool_get64(const uint8_t *);
void spool_seg_hdr_encode(uint8_t[SPOOL_SEG_HDR], uint64_t seq);
/* The header's version (1 or 2) when it is segment seq's, else -1. */
int spool_seg_hdr_check(const uint8_t[SPOOL_SEG_HDR], uint64_t seq);
/* Where the CRC of every record of segment seq starts, by version. */
uint32_t spool_rec_seed(uint64_t seq, int version);
/* Envelope tail of a MSG record: committed_at, then the envelope.  Returns
 * a malloc'd buffer of *lenp octets, or NULL. */
uint8_t *spool_env_encode(
    const struct spool_envelope *, int64_t committed_at, size_t *lenp);
struct spool_ent;
/* The same for a queued message, followed by the state trailer (state u32,
 * next_attempt_at i64, rcpt_status u8[nrcpts]) of a compaction copy. */
uint8_t *spool_ent_encode_state(const struct spool_ent *, size_t *lenp);
void spool_qid_format(uint64_t id, char[SPOOL_QID_MAX]);
int spool_qid_parse(const char *, uint64_t *);

/* A segment as the loop sees it. */
struct spool_seg {
	uint64_t seq;
	int fd;              /* O_RDONLY, for spool_data readers */
	uint64_t live;       /* messages in it not durably removed */
	uint64_t live_bytes; /* their data octets */
	uint64_t *deps;      /* older segments its records describe */
	size_t ndeps, capdeps;
	bool closed;           /* the worker writes no more to it */
	uint64_t closed_at_ms; /* monotonic, when the loop saw it closed */
	bool unlinking;        /* unlink job queued */
	TAILQ_ENTRY(spool_seg) entry;
};
TAILQ_HEAD(spool_segs, spool_seg);

/* A queued message. */
struct spool_ent {
	uint64_t id;
	char qid[SPOOL_QID_MAX];
	struct spool_seg *seg;
	uint64_t data_off, data_len;
	struct spool_envelope env;
	const char **rcpts;
	uint8_t *rcpt_status;
	size_t npending;
	char *strings; /* backing store of env strings */
	enum spool_state state;
	int64_t next_attempt_at;
	int64_t committed_at;
	bool relocating; /* a compaction copy is in flight */
	struct spool_ent *hnext;
	TAILQ_ENTRY(spool_ent) entry;
};
TAILQ_HEAD(spool_ents, spool_ent);

struct spool_index {
	struct spool_ent **buckets;
	size_t nbuckets, n;
	struct spool_ents order; /* commit order: oldest first */
};

enum spool_job_kind { SPOOL_JOB_WRITE, SPOOL_JOB_UNLINK };

/* A unit of durability work.  Filled by the loop, run by the worker,
 * completed on the loop. */
struct spool_job {
	enum spool_job_kind kind;
	enum spool_rec_type type;
	uint64_t id;      /* message the record is about */
	uint64_t msg_seg; /* segment holding that message */
	/* Record bytes: buf[0..len) with the 16-octet header in front (crc
	 * filled by the worker); for a spilled message buf is the 32-octet
	 * head, then spill_len octets from spill_fd, then tail. */
	uint8_t *buf;
	size_t len;
	int spill_fd;
	uint64_t spill_off; /* where the data starts in spill_fd */
	uint64_t spill_len;
	uint16_t flags;     /* record header flags */
	bool reloc;         /* MSG: a compaction copy of a queued message */
	bool moving;        /* about a message whose copy was in flight */
	uint64_t msg_bytes; /* data octets of the message it is about */
	uint8_t *tail;
	size_t tail_len;
	char *spill_path;
	/* Results. */
	bool ok;
	bool unsynced; /* worker: written, not yet synced */
	bool lazy;     /* bookkeeping: its sync may wait (SPOOL_LAZY_MS) */
	int err;
	uint64_t seg_seq; /* where the record landed */
	uint64_t rec_off;
	/* Completion. */
	struct spool_ent *ent; /* MSG: indexed once durable */
	spool_commit_cb commit_cb;
	void *commit_arg;
	spool_done_cb done_cb;
	uint64_t cookie;
	struct spool_note *note; /* MSG: written with it (spool.h) */
	bool noted;              /* worker: its note was written */
	STAILQ_ENTRY(spool_job) entry;
};
STAILQ_HEAD(spool_jobs, spool_job);

struct spool_msg {
	struct spool *spool;
	uint64_t id;
	char qid[SPOOL_QID_MAX];
	uint8_t *buf; /* SPOOL_MSG_HEAD reserved, then data */
	size_t len, cap;
	int spill_fd; /* -1 until spilled */
	char *spill_path;
	uint64_t data_len;
	bool failed;
	int err; /* errno of the failed write */
};

struct spool {
	struct event_base *base;
	char *dir; /* <spool dir>/queue */
	int dirfd;
	int lockfd;
	struct node_stats *stats;
	uint64_t segment_size;
	size_t spill_size;
	uint64_t compact_delay_ms;
	uint32_t lazy_sync_ms;
	struct event *ev_tick;
	spool_watch_cb watch; /* the delivery engine's due-time index */
	void *watch_arg;
	uint64_t next_id;
	uint64_t next_seq; /* first segment the worker creates */
	struct spool_index idx;
	struct spool_segs segs;
	uint64_t nactive, ndeferred, nheld, bytes;

	/* Worker hand-off. */
	pthread_t worker;
	bool worker_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct spool_jobs todo; /* under mu */
	struct spool_jobs done; /* under mu */
	bool stopping;          /* under mu */
	int efd;                /* eventfd: done is non-empty */
	struct event *ev_done;

	/* Called by the worker after an fdatasync that covered notes. */
	void (*sync_begin)(void *);
	void (*sync_end)(void *);
	void *sync_arg;

	/* Worker-only segment writer. */
	int w_fd;
	uint64_t w_seq, w_off;
	bool w_full;
	bool w_spare_asked; /* a spare was asked for while writing w_seq */
	uint32_t w_seed;    /* spool_rec_seed of w_seq */

	/* The prep thread (spool_flush.c): the next segment is created
	 * ahead of need, and reclaimed segments are unlinked (with the
	 * directory fsync), both outside the worker's commit batches. */
	pthread_t prep;
	bool prep_started;
	pthread_cond_t prep_cv;    /* the prep thread has work */
	pthread_cond_t spare_cv;   /* a spare's creation has ended */
	struct spool_jobs unlinks; /* under mu */
	int spare_fd;              /* under mu: -1 when none is ready */
	uint64_t spare_seq;        /* under mu */
	bool spare_wanted;         /* under mu: asked, not yet begun */
	bool spare_busy;           /* under mu: asked, not yet ended */
	bool prep_stopping;        /* under mu */
	int recycle_fd;            /* under mu: SPOOL_RECYCLED, or -1 */

	_Atomic uint64_t n_commits, n_records, n_flushes, n_failures;
	_Atomic uint64_t n_sync[SPOOL_SYNC_BUCKETS], sync_us;
	uint64_t n_segments, n_segments_deleted;
	_Atomic uint64_t n_recycled; /* seg_recycled (worker or prep) */
	int last_errno;              /* of the failure being reported */
	size_t nrelocating;          /* compaction copies in flight */
	uint64_t n_relocated;
};

/* spool_flush.c */
int spool_flush_start(struct spool *);
void spool_flush_stop(struct spool *);
void spool_flush_submit(struct spool *, struct spool_job *);
void spool_flush_post_done(struct spool *, struct spool_job *);

/* spool_recover.c: builds the index from the segments in s->dir;
 * readonly leaves the files as they are (spool_dump). */
int spool_recover(struct spool *, bool readonly);

/* spool.c: index and segment bookkeeping shared with recovery. */
struct spool_ent *spool_index_find(struct spool_index *, uint64_t id);
void spool_index_add(struct spool *, struct spool_ent *);
void spool_index_del(struct spool *, struct spool_ent *);
void spool_ent_free(struct spool_ent *);
struct spool_seg *spool_seg_find(struct spool *, uint64_t seq);
struct spool_seg *spool_seg_add(struct spool *, uint64_t seq, int fd);
void spool_seg_dep(struct spool_seg *, uint64_t on);
/* Parses a MSG record payload (after the 16-octet header) into an entry;
 * NULL if malformed. */
struct spool_ent *spool_ent_decode(
    const uint8_t *payload, size_t len, uint16_t flags);
struct spool_ent *spool_ent_decode_tail(uint64_t id, uint64_t data_len,
    const uint8_t *tail, size_t len, uint16_t flags);
void spool_set_rcpt(
    struct spool *, struct spool_ent *, size_t idx, enum spool_rcpt_status);
void spool_apply_state(struct spool *, struct spool_ent *, enum spool_state,
    int64_t next_attempt_at);

#endif
