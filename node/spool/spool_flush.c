/* spool_flush.c - the spool's one worker thread: group commit.
 *
 * The loop queues jobs (records to append); the worker takes every job
 * queued so far, appends the records to the active segment,
 * makes them durable with ONE fdatasync and posts the batch back to the loop
 * (eventfd).  While it syncs, new jobs queue up for the next batch, so the
 * batch grows with the load: one flush acknowledges every message that
 * finished in its window.  Bookkeeping records (recipient done, state,
 * removal: nothing waits on them to answer a client) are written at once
 * but their sync waits for the next batch that holds a commit, or
 * lazy_sync_ms (default 20) at most: with delivery running beside ingest, a
 * commit no longer queues behind a sync made only for delivery bookkeeping
 * (except the timed one, after lazy_sync_ms without a commit).  A crash of
 * the process loses nothing written (the page cache survives it); a
 * power cut may undo the last lazy_sync_ms of bookkeeping, which the
 * delivery engine redoes (at least once, as before).  A failed write or sync
 * fails the jobs it covers, cuts the segment back to its last good record and
 * starts a new one.
 *
 * A second thread, prep, keeps file-system work with its own fsyncs out of
 * the commit batches: it creates the next segment (file, preallocation,
 * header, fdatasync, directory fsync) while the active one is half full,
 * and it unlinks reclaimed segments (one directory fsync per batch of
 * unlinks).  Before, a batch that filled a segment, or that carried an
 * unlink, waited for those fsyncs before its commits were acknowledged.
 *
 * One reclaimed segment is kept (renamed SPOOL_RECYCLED) instead of
 * unlinked, and becomes the next segment made: its blocks hold data
 * already, so the appends overwrite them and a commit's fdatasync has no
 * extent to convert from "unwritten" (ext4 does that on a worker thread
 * at I/O completion and, without a journal, writes the inode back
 * synchronously inside the fdatasync).  The version 2 record CRC, seeded
 * with the segment's seq, keeps its old records from reading as valid. */
#include "spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const uint8_t zeros[8];

/* Ends writing to the active segment: its space past the last record is
 * given back.  The caller has synced what it needs. */
static void
seg_retire(struct spool *s)
{
	char name[32];

	if (s->w_fd == -1)
		return;
	if (s->w_off == SPOOL_SEG_HDR) {
		/* Nothing was ever written to it (a full disk refuses every
		 * record): no job refers to it, the loop never saw it. */
		snprintf(name, sizeof(name), "%016" PRIX64 ".seg", s->w_seq);
		unlinkat(s->dirfd, name, 0);
	} else if (ftruncate(s->w_fd, (off_t)s->w_off) == -1)
		log_warn("spool segment %016" PRIX64 " truncate", s->w_seq);
	close(s->w_fd);
	s->w_fd = -1;
	s->w_full = false;
}

/* The kept reclaimed segment renamed to name, or -1 when there is none
 * (or the rename fails: it is then dropped). */
static int
seg_recycled(struct spool *s, const char *name)
{
	int fd;

	pthread_mutex_lock(&s->mu);
	fd = s->recycle_fd;
	s->recycle_fd = -1;
	pthread_mutex_unlock(&s->mu);
	if (fd == -1)
		return -1;
	/* Until the new header is durable, name holds an old header whose
	 * seq is not name's: recovery drops it as never written. */
	if (renameat(s->dirfd, SPOOL_RECYCLED, s->dirfd, name) == -1) {
		log_warn("spool %s: rename to %s", SPOOL_RECYCLED, name);
		close(fd);
		unlinkat(s->dirfd, SPOOL_RECYCLED, 0);
		return -1;
	}
	atomic_fetch_add(&s->n_recycled, 1);
	return fd;
}

/* Creates segment seq: header, preallocation, file and directory entry
 * durable before any record goes in.  0 and *fdp, or -1 with errno. */
static int
seg_file_create(struct spool *s, uint64_t seq, int *fdp)
{
	uint8_t hdr[SPOOL_SEG_HDR];
	char name[32];
	int fd, rv, saved;

	snprintf(name, sizeof(name), "%016" PRIX64 ".seg", seq);
	fd = seg_recycled(s, name);
	if (fd == -1)
		fd = openat(s->dirfd, name,
		    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	/* Preallocated blocks make each append+fdatasync cheap (no block
	 * allocation per sync); without the space we still try to write.
	 * A recycled file gets back only what seg_retire gave up. */
	if ((rv = posix_fallocate(fd, 0, (off_t)s->segment_size)) != 0 &&
	    rv != EOPNOTSUPP && rv != ENOSPC)
		log_warnx("spool segment %016" PRIX64 " fallocate: %s", seq,
		    strerror(rv));
	spool_seg_hdr_encode(hdr, seq);
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    fdatasync(fd) == -1 || fsync(s->dirfd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(s->dirfd, name, 0);
		errno = saved;
		return -1;
	}
	*fdp = fd;
	return 0;
}

/* The next segment to write: the spare the prep thread made ahead (waiting
 * for it when it is being made), else one created here. */
static int
seg_create(struct spool *s)
{
	uint64_t seq;
	int fd;

	pthread_mutex_lock(&s->mu);
	while (s->spare_busy)
		pthread_cond_wait(&s->spare_cv, &s->mu);
	fd = s->spare_fd;
	seq = s->spare_seq;
	s->spare_fd = -1;
	pthread_mutex_unlock(&s->mu);
	if (fd == -1) {
		seq = s->next_seq;
		if (seg_file_create(s, seq, &fd) == -1)
			return -1;
		s->next_seq++;
	}
	s->w_fd = fd;
	s->w_seq = seq;
	s->w_seed = spool_rec_seed(seq, SPOOL_VERSION);
	s->w_off = SPOOL_SEG_HDR;
	s->w_full = false;
	s->w_spare_asked = false;
	return 0;
}

/* Once the active segment is half full, the prep thread makes the next
 * one, so a batch that fills it does not wait for a file, its
 * preallocation and two fsyncs. */
static void
seg_ask_spare(struct spool *s)
{
	if (s->w_spare_asked || s->w_off < s->segment_size / 2)
		return;
	s->w_spare_asked = true;
	pthread_mutex_lock(&s->mu);
	if (s->spare_fd == -1 && !s->spare_busy) {
		s->spare_seq = s->next_seq++;
		s->spare_wanted = true;
		s->spare_busy = true;
		pthread_cond_signal(&s->prep_cv);
	}
	pthread_mutex_unlock(&s->mu);
}

/* Writes one record at w_off; 0 or -1 with errno.  The header goes last
 * so a record is never valid before all of it is written. */
static int
rec_write(struct spool *s, struct spool_job *j)
{
	uint8_t *h = j->buf;
	uint64_t off = s->w_off, total, pos;
	uint32_t crc;
	size_t pad;

	total = j->len + j->spill_len + j->tail_len;
	pad = spool_align8(total) - total;
	if (total - SPOOL_REC_HDR > SPOOL_REC_MAX) {
		errno = EFBIG;
		return -1;
	}
	spool_put32(h, SPOOL_REC_MAGIC);
	spool_put16(h + 4, (uint16_t)j->type);
	spool_put16(h + 6, j->flags);
	spool_put32(h + 8, (uint32_t)(total - SPOOL_REC_HDR));
	crc = crc32c(s->w_seed, h, 12);
	crc = crc32c(crc, h + SPOOL_REC_HDR, j->len - SPOOL_REC_HDR);
	if (j->spill_fd == -1) {
		struct iovec iov[2] = {
		    {h + SPOOL_REC_HDR, j->len - SPOOL_REC_HDR},
		    {(void *)(uintptr_t)zeros, pad}};
		crc = crc32c(crc, NULL, 0);
		spool_put32(h + 12, crc);
		ssize_t want = (ssize_t)(j->len - SPOOL_REC_HDR + pad);
		if (pwritev(s->w_fd, iov, 2, (off_t)(off + SPOOL_REC_HDR)) !=
		    want)
			goto short_write;
	} else {
		static __thread uint8_t chunk[64 << 10];
		uint64_t done = 0;
		pos = off + j->len;
		if (pwrite(s->w_fd, h + SPOOL_REC_HDR, j->len - SPOOL_REC_HDR,
		        (off_t)(off + SPOOL_REC_HDR)) !=
		    (ssize_t)(j->len - SPOOL_REC_HDR))
			goto short_write;
		while (done < j->spill_len) {
			size_t want = sizeof(chunk);
			ssize_t r;
			if (want > j->spill_len - done)
				want = (size_t)(j->spill_len - done);
			r = pread(j->spill_fd, chunk, want,
			    (off_t)(j->spill_off + done));
			if (r <= 0) {
				if (r == 0)
					errno = EIO;
				return -1;
			}
			crc = crc32c(crc, chunk, (size_t)r);
			if (pwrite(s->w_fd, chunk, (size_t)r, (off_t)pos) != r)
				goto short_write;
			pos += (uint64_t)r;
			done += (uint64_t)r;
		}
		crc = crc32c(crc, j->tail, j->tail_len);
		struct iovec iov[2] = {
		    {j->tail, j->tail_len}, {(void *)(uintptr_t)zeros, pad}};
		if (pwritev(s->w_fd, iov, 2, (off_t)pos) !=
		    (ssize_t)(j->tail_len + pad))
			goto short_write;
		spool_put32(h + 12, crc);
	}
	if (pwrite(s->w_fd, h, SPOOL_REC_HDR, (off_t)off) != SPOOL_REC_HDR)
		goto short_write;
	j->seg_seq = s->w_seq;
	j->rec_off = off;
	s->w_off = off + total + pad;
	return 0;
short_write:
	if (errno == 0)
		errno = ENOSPC;
	return -1;
}

/* Upper bounds of the commit-latency buckets (spool.h), in microseconds:
 * 0.5 ms to 2.5 s, what /metrics exports as sluice_spool_commit_seconds. */
const uint64_t spool_sync_bounds_us[SPOOL_SYNC_BUCKETS - 1] = {500, 1000, 2500,
    5000, 10000, 25000, 50000, 100000, 250000, 1000000, 2500000};

static void
sync_observe(struct spool *s, uint64_t us)
{
	size_t i;

	for (i = 0; i < SPOOL_SYNC_BUCKETS - 1; i++)
		if (us <= spool_sync_bounds_us[i])
			break;
	atomic_fetch_add(&s->n_sync[i], 1);
	atomic_fetch_add(&s->sync_us, us);
}

/* Syncs the active segment and settles the jobs written to it since the
 * last sync (those marked unsynced in out). */
static void
batch_sync(struct spool *s, struct spool_jobs *out)
{
	struct spool_job *j;
	struct timespec t0, t1;
	bool any = false, noted = false;
	int ok;

	STAILQ_FOREACH(j, out, entry)
	{
		if (j->unsynced)
			any = true;
		if (j->unsynced && j->noted)
			noted = true;
	}
	if (!any)
		return;
	/* The notes written with these records (received events in the
	 * node's journal) are made durable alongside, before any of them is
	 * acknowledged. */
	noted = noted && s->sync_begin != NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (noted)
		s->sync_begin(s->sync_arg);
	ok = fdatasync(s->w_fd) == 0;
	s->n_flushes++;
	if (noted)
		s->sync_end(s->sync_arg);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	sync_observe(s, (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
	                           (t1.tv_nsec - t0.tv_nsec) / 1000));
	if (!ok) {
		/* After a failed fsync the page cache cannot be trusted:
		 * nothing in this window is acknowledged. */
		log_warn("spool segment %016" PRIX64 " fdatasync", s->w_seq);
		s->w_full = true;
	}
	STAILQ_FOREACH(j, out, entry)
	{
		if (!j->unsynced)
			continue;
		j->unsynced = false;
		j->ok = ok;
		if (!ok)
			j->err = EIO;
	}
}

static void
job_write(struct spool *s, struct spool_job *j, struct spool_jobs *out)
{
	uint64_t need = spool_align8(j->len + j->spill_len + j->tail_len);
	uint64_t good;

	if (s->w_fd != -1 && (s->w_full || (s->w_off + need > s->segment_size &&
	                                       s->w_off > SPOOL_SEG_HDR))) {
		batch_sync(s, out);
		seg_retire(s);
	}
	j->ok = false;
	if (s->w_fd == -1 && seg_create(s) == -1) {
		j->err = errno;
		return;
	}
	good = s->w_off;
	if (rec_write(s, j) == -1) {
		j->err = errno;
		/* Nothing of it may survive: cut back to the last good
		 * record (seg_retire truncates) and use a fresh segment. */
		s->w_off = good;
		s->w_full = true;
		return;
	}
	j->unsynced = true;
	seg_ask_spare(s);
	if (j->note != NULL) {
		j->note->write(j->note);
		j->note = NULL;
		j->noted = true;
	}
}

/* Deadline for held bookkeeping: lazy_sync_ms from now (the clock of
 * pthread_cond_timedwait). */
static void
lazy_deadline(const struct spool *s, struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += s->lazy_sync_ms / 1000;
	ts->tv_nsec += (long)(s->lazy_sync_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool
lazy_due(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec &&
	           now.tv_nsec >= deadline->tv_nsec);
}

static void *
worker_main(void *arg)
{
	struct spool *s = arg;
	struct spool_jobs out, held;
	struct spool_job *j, *first;
	struct timespec deadline = {0, 0};
	uint64_t one = 1;

	pthread_setname_np(pthread_self(), "spool-flush");
	STAILQ_INIT(&held);
	for (;;) {
		bool eager, timed_out = false, had_held;

		pthread_mutex_lock(&s->mu);
		while (STAILQ_EMPTY(&s->todo) && !s->stopping && !timed_out) {
			if (STAILQ_EMPTY(&held))
				pthread_cond_wait(&s->cv, &s->mu);
			else
				timed_out = pthread_cond_timedwait(&s->cv,
				                &s->mu, &deadline) == ETIMEDOUT;
		}
		if (STAILQ_EMPTY(&s->todo) && STAILQ_EMPTY(&held) &&
		    s->stopping) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		/* A stream of bookkeeping alone must not postpone its own
		 * sync for ever: the deadline holds whether or not we slept. */
		eager = s->stopping || timed_out ||
		        (!STAILQ_EMPTY(&held) && lazy_due(&deadline));
		/* The held jobs go first (written already, synced with this
		 * batch); only the new ones are walked: a long run of held
		 * bookkeeping walked at every wake-up cost more CPU than the
		 * writes (53 % of the node at 4 000 msg/s). */
		first = STAILQ_FIRST(&s->todo);
		had_held = !STAILQ_EMPTY(&held);
		STAILQ_INIT(&out);
		STAILQ_CONCAT(&out, &held);
		STAILQ_CONCAT(&out, &s->todo);
		pthread_mutex_unlock(&s->mu);

		for (j = first; j != NULL; j = STAILQ_NEXT(j, entry)) {
			job_write(s, j, &out);
			/* a commit, or a failure to report */
			if (!j->lazy || !j->unsynced)
				eager = true;
		}
		if (!eager) {
			/* Only bookkeeping: written, its sync waits for the
			 * next commit's or for lazy_sync_ms from the first of
			 * them (held was moved into out above: testing it
			 * here restarted the clock at every job, and a steady
			 * stream of bookkeeping was never synced alone). */
			if (!had_held)
				lazy_deadline(s, &deadline);
			STAILQ_CONCAT(&held, &out);
			continue;
		}
		batch_sync(s, &out);
		if (s->w_full)
			seg_retire(s);
		STAILQ_FOREACH(j, &out, entry)
		{
			if (j->spill_path != NULL)
				unlinkat(s->dirfd, j->spill_path, 0);
		}
		pthread_mutex_lock(&s->mu);
		STAILQ_CONCAT(&s->done, &out);
		pthread_mutex_unlock(&s->mu);
		if (write(s->efd, &one, sizeof(one)) == -1)
			log_warn("spool eventfd");
	}
	if (s->w_fd != -1) {
		if (fdatasync(s->w_fd) == -1)
			log_warn("spool fdatasync at close");
		seg_retire(s);
	}
	return NULL;
}

/* Keeps reclaimed segment name for reuse when none is kept yet: renamed
 * (so recovery no longer reads it; the caller's directory fsync makes
 * that durable) and left open for seg_recycled. */
static bool
seg_keep(struct spool *s, const char *name)
{
	bool want;
	int fd;

	pthread_mutex_lock(&s->mu);
	want = s->recycle_fd == -1;
	pthread_mutex_unlock(&s->mu);
	if (!want)
		return false;
	if ((fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC)) == -1)
		return false;
	if (renameat(s->dirfd, name, s->dirfd, SPOOL_RECYCLED) == -1) {
		close(fd);
		return false;
	}
	pthread_mutex_lock(&s->mu);
	s->recycle_fd = fd;
	pthread_mutex_unlock(&s->mu);
	return true;
}

/* Unlinks the reclaimed segments queued so far, makes that durable with
 * one directory fsync and posts them back to the loop.  Unlinks are
 * durable before the loop forgets a segment: later segments may only go
 * once it is gone for good.  Called and returns under mu. */
static void
prep_unlink(struct spool *s)
{
	struct spool_jobs batch;
	struct spool_job *j;
	char name[32];
	uint64_t one = 1;

	STAILQ_INIT(&batch);
	STAILQ_CONCAT(&batch, &s->unlinks);
	pthread_mutex_unlock(&s->mu);
	STAILQ_FOREACH(j, &batch, entry)
	{
		snprintf(name, sizeof(name), "%016" PRIX64 ".seg", j->seg_seq);
		if (seg_keep(s, name)) {
			j->ok = true;
			continue;
		}
		j->ok = unlinkat(s->dirfd, name, 0) == 0 || errno == ENOENT;
	}
	if (fsync(s->dirfd) == -1)
		log_warn("spool directory fsync");
	pthread_mutex_lock(&s->mu);
	STAILQ_CONCAT(&s->done, &batch);
	pthread_mutex_unlock(&s->mu);
	if (write(s->efd, &one, sizeof(one)) == -1)
		log_warn("spool eventfd");
	pthread_mutex_lock(&s->mu);
}

/* The prep thread: spare segments and unlinks (see spool_int.h). */
static void *
prep_main(void *arg)
{
	struct spool *s = arg;
	char name[32];
	uint64_t seq;
	int fd, rv;

	pthread_setname_np(pthread_self(), "spool-prep");
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (STAILQ_EMPTY(&s->unlinks) && !s->spare_wanted &&
		       !s->prep_stopping)
			pthread_cond_wait(&s->prep_cv, &s->mu);
		if (s->spare_wanted) {
			s->spare_wanted = false;
			seq = s->spare_seq;
			pthread_mutex_unlock(&s->mu);
			rv = seg_file_create(s, seq, &fd);
			if (rv == -1)
				log_warn("spool segment %016" PRIX64
				         " (made ahead)",
				    seq);
			pthread_mutex_lock(&s->mu);
			s->spare_fd = rv == 0 ? fd : -1;
			s->spare_busy = false;
			pthread_cond_broadcast(&s->spare_cv);
		} else if (!STAILQ_EMPTY(&s->unlinks))
			prep_unlink(s);
		else
			break; /* stopping, nothing left */
	}
	if (s->spare_fd != -1) {
		/* never written: no record refers to it */
		snprintf(
		    name, sizeof(name), "%016" PRIX64 ".seg", s->spare_seq);
		close(s->spare_fd);
		s->spare_fd = -1;
		unlinkat(s->dirfd, name, 0);
		(void)fsync(s->dirfd);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int
spool_flush_start(struct spool *s)
{
	int rv;

	s->w_fd = -1;
	if ((rv = pthread_create(&s->prep, NULL, prep_main, s)) != 0) {
		log_warnx("spool prep thread: %s", strerror(rv));
		return -1;
	}
	s->prep_started = true;
	if ((rv = pthread_create(&s->worker, NULL, worker_main, s)) != 0) {
		log_warnx("spool worker: %s", strerror(rv));
		return -1;
	}
	s->worker_started = true;
	return 0;
}

void
spool_flush_stop(struct spool *s)
{
	if (s->worker_started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->worker, NULL);
		s->worker_started = false;
	}
	/* after the worker: it may wait for a spare being made */
	if (s->prep_started) {
		pthread_mutex_lock(&s->mu);
		s->prep_stopping = true;
		pthread_cond_signal(&s->prep_cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->prep, NULL);
		s->prep_started = false;
	}
}

void
spool_flush_submit(struct spool *s, struct spool_job *j)
{
	pthread_mutex_lock(&s->mu);
	if (j->kind == SPOOL_JOB_UNLINK) {
		STAILQ_INSERT_TAIL(&s->unlinks, j, entry);
		pthread_cond_signal(&s->prep_cv);
	} else {
		STAILQ_INSERT_TAIL(&s->todo, j, entry);
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
}

/* A job that failed before reaching the worker still completes on the
 * loop, never inside the caller's stack. */
void
spool_flush_post_done(struct spool *s, struct spool_job *j)
{
	uint64_t one = 1;

	pthread_mutex_lock(&s->mu);
	STAILQ_INSERT_TAIL(&s->done, j, entry);
	pthread_mutex_unlock(&s->mu);
	if (write(s->efd, &one, sizeof(one)) == -1)
		log_warn("spool eventfd");
}
