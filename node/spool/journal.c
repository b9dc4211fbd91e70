/* journal.c - on-disk event journal (journal.h).
 *
 * <dir>/events.journal holds records [u32 length][u32 crc32c][packed Event],
 * appended with write(2): the page cache keeps them across a crash of the
 * process, and the syncer thread fdatasyncs before each report (and with
 * each spool commit that carries a received event), never under mu.  <dir>/
 * events.ack holds the highest sequence the controller acknowledged.  When
 * everything is acknowledged and the journal has grown past a limit, it is
 * truncated.  A torn tail record (power loss mid-append) is dropped at
 * open.  Unacknowledged events are also kept in memory for the uplink.
 *
 * Acknowledged events are retained (on disk only; in memory just their
 * place) for a window after their acknowledgement, time- and size-bounded
 * (journal_set_retention): a database failover can lose rows a controller
 * committed and acknowledged, and journal_rewind() makes them unacked
 * again when a controller says it has less than was acknowledged.  The
 * file is compacted once the expired records ahead of the retained ones
 * outgrow the live part; the copy runs outside mu (journal_compact).
 *
 * The journal shares the spool's filesystem, and a spool segment's
 * preallocation can take every free block.  So the journal reserves its
 * own blocks ahead of its end the same way (fallocate, KEEP_SIZE: the file
 * does not grow, appends land in blocks already owned), in steps of
 * JOURNAL_RESERVE, and journal_room() tells the SMTP session whether the
 * events of one more message fit before it accepts that message. */
#include "journal.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "rpc.h"
#include "spool.h"

#define JOURNAL_MAX_RECORD  (1024 * 1024)
#define JOURNAL_TRUNCATE_AT (4 * 1024 * 1024)
/* Blocks reserved ahead of the journal's end, taken in this step. */
#define JOURNAL_RESERVE (1024 * 1024)
/* Kept back for the delivery events of messages already accepted: a new
 * message is accepted only while its own events fit above it. */
#define JOURNAL_FLOOR (128 * 1024)
/* Acknowledged events kept for a failover that loses them (defaults of
 * journal_retention_s and journal_retention_mb). */
#define JOURNAL_RETAIN_MS    (15 * 60 * 1000)
#define JOURNAL_RETAIN_BYTES ((size_t)64 * 1024 * 1024)
/* Compaction copies under mu only a rest this small (journal_compact). */
#define JOURNAL_COMPACT_TAIL (64 * 1024)

struct journal_rec {
	uint64_t seq;
	uint8_t *buf; /* unacked: the packed event; acked: NULL */
	size_t len;
	off_t off;           /* of its header in the file */
	int64_t acked_at_ms; /* retained since (monotonic) */
};

struct journal {
	pthread_mutex_t mu;
	int fd;
	char *path;
	char *ack_path;
	uint64_t next_seq;
	uint64_t acked;
	off_t size;
	/* In seq order: nacked retained acknowledged records, then the
	 * unacknowledged ones. */
	struct journal_rec *recs;
	size_t nrecs, caprecs, nacked;
	size_t retained_bytes;
	int64_t retain_ms;
	size_t retain_bytes;
	bool dirty;        /* written since the last fdatasync */
	off_t reserved_to; /* blocks owned up to here (fallocate KEEP_SIZE) */
	bool no_reserve;   /* the filesystem cannot reserve: not enforced */
	bool said_full;    /* "cannot reserve" logged until it works again */
	bool compacting;   /* journal_compact copying without mu */
	bool dir_dirty;    /* renamed by a compaction: fsync the directory */
	char *dir;
	/* The syncer thread (journal_sync_begin/end), under mu. */
	pthread_t syncer;
	pthread_cond_t sync_cv, done_cv;
	uint64_t sync_req, sync_done;
	bool sync_stop;
};

static void *journal_syncer(void *);
static int journal_sync_dir(struct journal *);

static int64_t
journal_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
journal_keep(
    struct journal *j, uint64_t seq, uint8_t *buf, size_t len, off_t off)
{
	struct journal_rec *r;

	if (j->nrecs == j->caprecs) {
		size_t cap = j->caprecs ? j->caprecs * 2 : 256;
		if ((r = realloc(j->recs, cap * sizeof(*r))) == NULL)
			return -1;
		j->recs = r;
		j->caprecs = cap;
	}
	j->recs[j->nrecs].seq = seq;
	j->recs[j->nrecs].buf = buf;
	j->recs[j->nrecs].len = len;
	j->recs[j->nrecs].off = off;
	j->recs[j->nrecs].acked_at_ms = 0;
	j->nrecs++;
	return 0;
}

/* Under mu: acknowledged records past the window (or over the size
 * bound, oldest first) are no longer retained. */
static void
journal_expire(struct journal *j, int64_t now)
{
	size_t i, k;

	for (i = 0; i < j->nacked; i++) {
		if (now - j->recs[i].acked_at_ms <= j->retain_ms &&
		    j->retained_bytes <= j->retain_bytes)
			break;
		j->retained_bytes -= j->recs[i].len + 8;
	}
	if (i == 0)
		return;
	for (k = 0; i + k < j->nrecs; k++)
		j->recs[k] = j->recs[i + k];
	j->nrecs = k;
	j->nacked -= i;
}

static uint64_t
journal_read_ack(const char *path)
{
	FILE *f;
	unsigned long long v = 0;

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static int
journal_write_ack(struct journal *j, uint64_t v)
{
	char tmp[4096], buf[32];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", j->ack_path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return -1;
	n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", v);
	if (write(fd, buf, (size_t)n) != n || fdatasync(fd) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return rename(tmp, j->ack_path);
}

/* Reads the journal, keeps unacked records, truncates a torn tail. */
static int
journal_load(struct journal *j)
{
	uint8_t hdr[8], *buf;
	uint32_t len, crc;
	off_t off = 0;
	Sluice__Event *ev;
	ssize_t r;

	for (;;) {
		r = pread(j->fd, hdr, sizeof(hdr), off);
		if (r == 0)
			break;
		if (r != (ssize_t)sizeof(hdr))
			goto torn;
		memcpy(&len, hdr, 4);
		memcpy(&crc, hdr + 4, 4);
		if (len == 0 || len > JOURNAL_MAX_RECORD)
			goto torn;
		if ((buf = malloc(len)) == NULL)
			return -1;
		if (pread(j->fd, buf, len, off + 8) != (ssize_t)len ||
		    crc32c(0, buf, len) != crc) {
			free(buf);
			goto torn;
		}
		ev = sluice__event__unpack(NULL, len, buf);
		if (ev == NULL) {
			free(buf);
			goto torn;
		}
		if (ev->seq >= j->next_seq)
			j->next_seq = ev->seq + 1;
		if (ev->seq > j->acked) {
			if (journal_keep(j, ev->seq, buf, len, off) == -1) {
				free(buf);
				sluice__event__free_unpacked(ev, NULL);
				return -1;
			}
		} else {
			/* acknowledged before: retained for a window from
			 * now, as nothing says when */
			free(buf);
			if (journal_keep(j, ev->seq, NULL, len, off) == -1) {
				sluice__event__free_unpacked(ev, NULL);
				return -1;
			}
			j->recs[j->nrecs - 1].acked_at_ms = journal_now_ms();
			j->nacked++;
			j->retained_bytes += len + 8;
		}
		sluice__event__free_unpacked(ev, NULL);
		off += 8 + len;
	}
	j->size = off;
	return 0;
torn:
	log_warnx("journal %s: torn record at offset %lld, truncating", j->path,
	    (long long)off);
	if (ftruncate(j->fd, off) == -1)
		return -1;
	j->size = off;
	return 0;
}

/* Owns blocks up to size + JOURNAL_RESERVE.  Under mu.  -1 with errno
 * (ENOSPC) when the filesystem has no room; the reservation so far
 * stays. */
static int
journal_reserve(struct journal *j)
{
	off_t want = j->size + JOURNAL_RESERVE;

	if (j->no_reserve || j->reserved_to >= want)
		return 0;
	if (fallocate(j->fd, FALLOC_FL_KEEP_SIZE, j->size, JOURNAL_RESERVE) ==
	    -1) {
		if (errno == EOPNOTSUPP) {
			log_warnx("journal %s: the filesystem cannot reserve "
			          "space; a full disk can lose events",
			    j->path);
			j->no_reserve = true;
			return 0;
		}
		if (!j->said_full)
			log_warn("journal %s: cannot reserve space", j->path);
		j->said_full = true;
		return -1;
	}
	if (j->said_full)
		log_info("journal %s: space reserved again", j->path);
	j->said_full = false;
	j->reserved_to = want;
	return 0;
}

int
journal_room(struct journal *j, size_t need)
{
	int rv = 0;

	pthread_mutex_lock(&j->mu);
	if (!j->no_reserve &&
	    j->reserved_to - j->size < (off_t)(need + JOURNAL_FLOOR) &&
	    (journal_reserve(j) == -1 ||
	        j->reserved_to - j->size < (off_t)(need + JOURNAL_FLOOR))) {
		errno = ENOSPC;
		rv = -1;
	}
	pthread_mutex_unlock(&j->mu);
	return rv;
}

struct journal *
journal_open(const char *dir)
{
	struct journal *j;
	char path[4096];

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	pthread_mutex_init(&j->mu, NULL);
	snprintf(path, sizeof(path), "%s/events.journal", dir);
	j->path = strdup(path);
	snprintf(path, sizeof(path), "%s/events.ack", dir);
	j->ack_path = strdup(path);
	j->dir = strdup(dir);
	if (j->path == NULL || j->ack_path == NULL || j->dir == NULL)
		goto fail;
	j->acked = journal_read_ack(j->ack_path);
	j->next_seq = j->acked + 1;
	j->retain_ms = JOURNAL_RETAIN_MS;
	j->retain_bytes = JOURNAL_RETAIN_BYTES;
	if ((j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC,
	         0600)) == -1) {
		log_warn("journal %s", j->path);
		goto fail;
	}
	if (journal_load(j) == -1) {
		log_warn("journal %s: load", j->path);
		close(j->fd);
		goto fail;
	}
	/* What the file holds already is owned; reserve the rest now,
	 * before the spool's first segment can take it. */
	j->reserved_to = j->size;
	(void)journal_reserve(j);
	pthread_cond_init(&j->sync_cv, NULL);
	pthread_cond_init(&j->done_cv, NULL);
	if ((errno = pthread_create(&j->syncer, NULL, journal_syncer, j)) !=
	    0) {
		log_warn("journal %s: syncer thread", j->path);
		pthread_cond_destroy(&j->sync_cv);
		pthread_cond_destroy(&j->done_cv);
		close(j->fd);
		goto fail;
	}
	log_info("journal %s: %zu unacknowledged events, next seq %" PRIu64,
	    j->path, j->nrecs - j->nacked, j->next_seq);
	return j;
fail:
	free(j->path);
	free(j->ack_path);
	free(j->dir);
	free(j);
	return NULL;
}

void
journal_close(struct journal *j)
{
	size_t i;

	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	j->sync_stop = true;
	pthread_cond_signal(&j->sync_cv);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->syncer, NULL);
	pthread_cond_destroy(&j->sync_cv);
	pthread_cond_destroy(&j->done_cv);
	if (j->dirty)
		(void)fdatasync(j->fd);
	if (j->dir_dirty)
		(void)journal_sync_dir(j);
	close(j->fd);
	for (i = 0; i < j->nrecs; i++)
		free(j->recs[i].buf);
	free(j->recs);
	free(j->path);
	free(j->ack_path);
	free(j->dir);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

int
journal_append(struct journal *j, Sluice__Event *ev)
{
	struct timeval tv;
	uint8_t *rec;
	uint32_t len, crc;
	size_t n;
	int rv = -1;

	pthread_mutex_lock(&j->mu);
	ev->seq = j->next_seq;
	if (ev->at_ms == 0) {
		gettimeofday(&tv, NULL);
		ev->at_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	}
	n = sluice__event__get_packed_size(ev);
	if (n == 0 || n > JOURNAL_MAX_RECORD || (rec = malloc(n + 8)) == NULL)
		goto out;
	sluice__event__pack(ev, rec + 8);
	len = (uint32_t)n;
	crc = crc32c(0, rec + 8, n);
	memcpy(rec, &len, 4);
	memcpy(rec + 4, &crc, 4);
	if (write(j->fd, rec, n + 8) != (ssize_t)(n + 8)) {
		log_warn("journal %s: append", j->path);
		/* A short write leaves a torn record: cut it off again. */
		(void)!ftruncate(j->fd, j->size);
		free(rec);
		goto out;
	}
	j->size += (off_t)(n + 8);
	if (j->size > j->reserved_to)
		j->reserved_to = j->size; /* the write took blocks itself */
	j->dirty = true;
	memmove(rec, rec + 8, n);
	if (journal_keep(j, ev->seq, rec, n, j->size - (off_t)(n + 8)) == -1) {
		free(rec);
		goto out;
	}
	j->next_seq++;
	rv = 0;
out:
	pthread_mutex_unlock(&j->mu);
	return rv;
}

/* A received event waiting for its message's spool record. */
struct journal_note {
	struct spool_note base; /* first: the spool sees only this */
	struct journal *j;
	size_t len;
	uint8_t buf[]; /* the packed event, seq 0 */
};

static void
journal_note_write(struct spool_note *sn)
{
	struct journal_note *jn = (struct journal_note *)sn;
	Sluice__Event *ev;

	if ((ev = sluice__event__unpack(NULL, jn->len, jn->buf)) == NULL ||
	    journal_append(jn->j, ev) == -1)
		log_warnx("journal %s: a received event could not be "
		          "written",
		    jn->j->path);
	if (ev != NULL)
		sluice__event__free_unpacked(ev, NULL);
	free(jn);
}

static void
journal_note_drop(struct spool_note *sn)
{
	free(sn);
}

struct spool_note *
journal_note_new(struct journal *j, const Sluice__Event *ev)
{
	struct journal_note *jn;
	size_t n = sluice__event__get_packed_size(ev);

	if ((jn = malloc(sizeof(*jn) + n)) == NULL)
		return NULL;
	jn->base.write = journal_note_write;
	jn->base.drop = journal_note_drop;
	jn->j = j;
	jn->len = sluice__event__pack(ev, jn->buf);
	return &jn->base;
}

static int
journal_sync_dir(struct journal *j)
{
	int fd, rv;

	if ((fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rv = fsync(fd);
	close(fd);
	return rv;
}

/* The syncer thread: one fdatasync per request, outside the lock, so
 * appends go on meanwhile (one landing after the flag was read sets it
 * again and is synced next time). */
static void *
journal_syncer(void *arg)
{
	struct journal *j = arg;
	uint64_t target;
	bool dirty, dir_dirty;

	pthread_setname_np(pthread_self(), "journal-sync");
	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (j->sync_done == j->sync_req && !j->sync_stop)
			pthread_cond_wait(&j->sync_cv, &j->mu);
		if (j->sync_done == j->sync_req)
			break; /* stopping, nothing asked */
		target = j->sync_req;
		dirty = j->dirty;
		j->dirty = false;
		dir_dirty = j->dir_dirty;
		j->dir_dirty = false;
		pthread_mutex_unlock(&j->mu);
		/* A compaction's rename first: what the new file holds
		 * counts only once its name does. */
		if (dir_dirty && journal_sync_dir(j) == -1) {
			log_warn("journal %s: directory fsync", j->dir);
			pthread_mutex_lock(&j->mu);
			j->dir_dirty = true;
			pthread_mutex_unlock(&j->mu);
		}
		if (dirty && fdatasync(j->fd) == -1) {
			log_warn("journal %s: fdatasync", j->path);
			dirty = false;
			pthread_mutex_lock(&j->mu);
			j->dirty = true;
		} else
			pthread_mutex_lock(&j->mu);
		j->sync_done = target;
		pthread_cond_broadcast(&j->done_cv);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

void
journal_sync_begin(void *arg)
{
	struct journal *j = arg;

	pthread_mutex_lock(&j->mu);
	j->sync_req++;
	pthread_cond_signal(&j->sync_cv);
	pthread_mutex_unlock(&j->mu);
}

void
journal_sync_end(void *arg)
{
	struct journal *j = arg;

	pthread_mutex_lock(&j->mu);
	while (j->sync_done < j->sync_req)
		pthread_cond_wait(&j->done_cv, &j->mu);
	pthread_mutex_unlock(&j->mu);
}

size_t
journal_pending(struct journal *j, size_t max, Sluice__Event ***out)
{
	struct journal_rec *bufs;
	Sluice__Event **evs;
	size_t i, n = 0, durable;
	uint64_t want;

	*out = NULL;
	pthread_mutex_lock(&j->mu);
	/* What is reported is durable first (a seq the controller stored
	 * must never be reused after a crash).  The syncer thread does the
	 * fdatasync outside mu: the loop thread appending events (and the
	 * SMTP session asking journal_room) never waits for it.  Always a
	 * request, even when clean: a sync in progress may cover our
	 * records and must be over before they count. */
	durable = j->nrecs;
	want = ++j->sync_req;
	pthread_cond_signal(&j->sync_cv);
	while (j->sync_done < want && !j->sync_stop)
		pthread_cond_wait(&j->done_cv, &j->mu);
	if (durable <= j->nacked)
		goto out;
	if (max > durable - j->nacked)
		max = durable - j->nacked;
	if ((evs = calloc(max, sizeof(*evs))) == NULL ||
	    (bufs = calloc(max, sizeof(*bufs))) == NULL) {
		free(evs);
		goto out;
	}
	for (i = 0; i < max; i++)
		bufs[i] = j->recs[j->nacked + i];
	pthread_mutex_unlock(&j->mu);
	/* Unpacked without mu (a report's 1000 events took milliseconds
	 * the loop's appends waited for): an unacknowledged record's buffer
	 * is freed only by journal_ack and journal_rewind, which run on this
	 * same thread, the uplink. */
	for (i = 0; i < max; i++) {
		evs[n] = sluice__event__unpack(NULL, bufs[i].len, bufs[i].buf);
		if (evs[n] != NULL)
			n++;
	}
	free(bufs);
	*out = evs;
	return n;
out:
	pthread_mutex_unlock(&j->mu);
	return n;
}

void
journal_batch_free(Sluice__Event **evs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		sluice__event__free_unpacked(evs[i], NULL);
	free(evs);
}

/* Copies [pos, end) of the journal to fd (appending). */
static int
journal_copy(int from, int to, off_t pos, off_t end)
{
	uint8_t buf[65536];
	size_t want;
	ssize_t r;

	for (; pos < end; pos += r) {
		want = (size_t)(end - pos) < sizeof(buf) ? (size_t)(end - pos)
		                                         : sizeof(buf);
		r = pread(from, buf, want, pos);
		if (r <= 0 || write(to, buf, (size_t)r) != r)
			return -1;
	}
	return 0;
}

/* Called and returns under mu: the file from the first kept record on
 * moves to the start of a new file (tmp, fdatasync, rename), so expired
 * records give their space back.  The bulk (up to the retention bound,
 * 64 MiB by default) is copied and synced WITHOUT mu: the loop thread goes
 * on appending past it meanwhile.  Then what was appended during the copy,
 * again without mu, until at most JOURNAL_COMPACT_TAIL is left; only that
 * rest is copied and synced under mu before the new file takes the old
 * one's name and descriptor.  The rename becomes durable (directory fsync)
 * in the syncer before the next sync counts: an event appended to the new
 * file is never reported on the strength of a name that a power cut could
 * undo.  Only the uplink thread acks, so one compaction runs at a time;
 * records only expire meanwhile (offsets stay in the old file's terms
 * until the swap).  On failure everything stays as it was. */
static void
journal_compact(struct journal *j)
{
	char tmp[4200];
	off_t base = j->recs[0].off, done = base, end;
	size_t i;
	int fd, pass;
	bool ok;

	if (j->compacting)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", j->path);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
	         0600)) == -1) {
		log_warn("journal %s: compact", tmp);
		return;
	}
	j->compacting = true;
	for (pass = 0; pass < 4; pass++) {
		end = j->size;
		if (pass > 0 && end - done <= JOURNAL_COMPACT_TAIL)
			break;
		pthread_mutex_unlock(&j->mu);
		ok = journal_copy(j->fd, fd, done, end) == 0 &&
		     fdatasync(fd) == 0;
		pthread_mutex_lock(&j->mu);
		if (!ok)
			goto fail;
		done = end;
	}
	/* The syncer thread may be in fdatasync(j->fd): the descriptor
	 * number stays, dup3 swaps the file under it in one step. */
	if ((j->size > done && (journal_copy(j->fd, fd, done, j->size) == -1 ||
	                           fdatasync(fd) == -1)) ||
	    rename(tmp, j->path) == -1 || dup3(fd, j->fd, O_CLOEXEC) == -1)
		goto fail;
	close(fd);
	j->compacting = false;
	j->size -= base;
	j->reserved_to = j->size;
	j->dirty = false;
	j->dir_dirty = true;
	for (i = 0; i < j->nrecs; i++)
		j->recs[i].off -= base;
	(void)journal_reserve(j);
	return;
fail:
	log_warn("journal %s: compact", tmp);
	j->compacting = false;
	close(fd);
	unlink(tmp);
}

void
journal_ack(struct journal *j, uint64_t upto)
{
	int64_t now;
	size_t i;
	bool ack_failed;

	pthread_mutex_lock(&j->mu);
	if (upto <= j->acked) {
		pthread_mutex_unlock(&j->mu);
		return;
	}
	if (upto >= j->next_seq)
		upto = j->next_seq - 1;
	/* The ack file (write, fdatasync, rename) outside mu, like the
	 * journal's own syncs: only this thread (the uplink) acks. */
	pthread_mutex_unlock(&j->mu);
	ack_failed = journal_write_ack(j, upto) == -1;
	pthread_mutex_lock(&j->mu);
	now = journal_now_ms();
	for (i = j->nacked; i < j->nrecs && j->recs[i].seq <= upto; i++) {
		free(j->recs[i].buf);
		j->recs[i].buf = NULL;
		j->recs[i].acked_at_ms = now;
		j->retained_bytes += j->recs[i].len + 8;
	}
	j->nacked = i;
	if (ack_failed)
		log_warn("journal %s: ack", j->ack_path);
	j->acked = upto;
	journal_expire(j, now);
	if (j->compacting)
		; /* not while a compaction copies the file */
	else if (j->nrecs == 0 && j->size > JOURNAL_TRUNCATE_AT) {
		/* Frees the reserved blocks too: take a new reservation. */
		if (ftruncate(j->fd, 0) == 0) {
			j->size = 0;
			j->reserved_to = 0;
			(void)journal_reserve(j);
		}
	} else if (j->nrecs > 0 && j->recs[0].off > JOURNAL_TRUNCATE_AT &&
	           j->recs[0].off > j->size - j->recs[0].off)
		journal_compact(j);
	pthread_mutex_unlock(&j->mu);
}

uint64_t
journal_unacked(struct journal *j)
{
	uint64_t n;

	pthread_mutex_lock(&j->mu);
	n = j->nrecs - j->nacked;
	pthread_mutex_unlock(&j->mu);
	return n;
}

void
journal_set_retention(struct journal *j, int64_t ms, size_t bytes)
{
	pthread_mutex_lock(&j->mu);
	j->retain_ms = ms;
	j->retain_bytes = bytes;
	journal_expire(j, journal_now_ms());
	pthread_mutex_unlock(&j->mu);
}

int64_t
journal_rewind(struct journal *j, uint64_t stored, uint64_t *lost_from)
{
	struct journal_rec *r;
	int64_t n = 0;
	size_t i, first;

	*lost_from = 0;
	pthread_mutex_lock(&j->mu);
	if (stored >= j->acked) {
		pthread_mutex_unlock(&j->mu);
		return 0;
	}
	/* Acknowledged records past stored, in the window: unacked again,
	 * read back from the file. */
	for (i = 0; i < j->nacked && j->recs[i].seq <= stored; i++)
		;
	if ((i < j->nrecs ? j->recs[i].seq : j->next_seq) > stored + 1)
		*lost_from = stored + 1; /* expired: gone for good */
	for (first = i; i < j->nacked; i++) {
		r = &j->recs[i];
		if ((r->buf = malloc(r->len)) == NULL ||
		    pread(j->fd, r->buf, r->len, r->off + 8) !=
		        (ssize_t)r->len) {
			log_warn("journal %s: reading back seq %" PRIu64,
			    j->path, r->seq);
			for (; i + 1 > first; i--) {
				free(j->recs[i].buf);
				j->recs[i].buf = NULL;
			}
			n = -1;
			goto out;
		}
	}
	i = first;
	for (n = 0; i + (size_t)n < j->nacked; n++)
		j->retained_bytes -= j->recs[i + (size_t)n].len + 8;
	j->nacked = i;
	/* what is lost stays acknowledged: the first record resent (or the
	 * next one appended) follows the acknowledgement */
	if (*lost_from != 0)
		stored = (i < j->nrecs ? j->recs[i].seq : j->next_seq) - 1;
	j->acked = stored;
	if (journal_write_ack(j, stored) == -1)
		log_warn("journal %s: ack", j->ack_path);
out:
	pthread_mutex_unlock(&j->mu);
	return n;
}

void
journal_window(struct journal *j, uint64_t *acked, uint64_t *retained_from)
{
	pthread_mutex_lock(&j->mu);
	journal_expire(j, journal_now_ms());
	*acked = j->acked;
	*retained_from = j->nacked > 0 ? j->recs[0].seq : 0;
	pthread_mutex_unlock(&j->mu);
}
