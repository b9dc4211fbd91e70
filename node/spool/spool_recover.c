/* spool_recover.c - rebuilds the queue from the segment files at
 * spool_open (and for spool_dump, read-only).
 *
 * Segments are replayed in sequence order, records in file order.  The
 * first record whose header, length or CRC32C does not check ends the
 * segment: everything after it belongs to a window that was never
 * acknowledged (a batch is acknowledged only after its fdatasync).  The
 * torn tail is truncated, half-created segments and spill files of
 * interrupted sessions are removed. */
#include "spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Removes spill files left by sessions that never committed. */
static void
clean_tmp(struct spool *s)
{
	DIR *d;
	struct dirent *de;
	int tfd;

	if ((tfd = openat(s->dirfd, "tmp", O_RDONLY | O_DIRECTORY)) == -1)
		return;
	if ((d = fdopendir(tfd)) == NULL) {
		close(tfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(tfd, de->d_name, 0) == 0)
			log_info(
			    "spool removed interrupted tmp/%s", de->d_name);
	}
	closedir(d);
}

static int
list_segments(struct spool *s, uint64_t **seqsp, size_t *np)
{
	DIR *d;
	struct dirent *de;
	uint64_t *seqs = NULL, seq;
	size_t n = 0, cap = 0;
	int fd;

	if ((fd = dup(s->dirfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		log_warn("spool %s", s->dir);
		if (fd != -1)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		char hex[17];
		if (l != 20 || strcmp(de->d_name + 16, ".seg") != 0)
			continue;
		memcpy(hex, de->d_name, 16);
		hex[16] = '\0';
		if (spool_qid_parse(hex, &seq) == -1)
			continue;
		if (n == cap) {
			uint64_t *ns;
			cap = cap ? cap * 2 : 16;
			if ((ns = realloc(seqs, cap * sizeof(*ns))) == NULL) {
				free(seqs);
				closedir(d);
				return -1;
			}
			seqs = ns;
		}
		seqs[n++] = seq;
	}
	closedir(d);
	if (n > 0)
		qsort(seqs, n, sizeof(*seqs), cmp_u64);
	*seqsp = seqs;
	*np = n;
	return 0;
}

static void
apply(struct spool *s, struct spool_seg *seg, uint64_t off, uint16_t type,
    uint16_t flags, const uint8_t *pl, uint32_t len, uint64_t *max_id)
{
	struct spool_ent *e, *old;
	uint64_t id;

	if (type == SPOOL_REC_MSG) {
		if ((e = spool_ent_decode(pl, len, flags)) == NULL) {
			log_warnx("spool segment %016" PRIX64 " offset %" PRIu64
			          ": bad message record",
			    seg->seq, off);
			return;
		}
		if ((old = spool_index_find(&s->idx, e->id)) != NULL) {
			/* A compaction copy: it supersedes the older record,
			 * which must be gone before the copy may go. */
			if (old->seg != seg)
				spool_seg_dep(seg, old->seg->seq);
			old->seg->live--;
			old->seg->live_bytes -= old->data_len;
		}
		e->seg = seg;
		e->data_off = off + SPOOL_MSG_HEAD;
		seg->live++;
		seg->live_bytes += e->data_len;
		spool_index_add(s, e);
		if (old != NULL) {
			/* The copy keeps the original's place in commit
			 * order. */
			TAILQ_REMOVE(&s->idx.order, e, entry);
			TAILQ_INSERT_BEFORE(old, e, entry);
			spool_index_del(s, old);
			spool_ent_free(old);
		}
		if (e->id > *max_id)
			*max_id = e->id;
		return;
	}
	if (len < 8)
		return;
	id = spool_get64(pl);
	if (id > *max_id)
		*max_id = id;
	if ((e = spool_index_find(&s->idx, id)) == NULL)
		return; /* its segment is gone already */
	if (e->seg != seg)
		spool_seg_dep(seg, e->seg->seq);
	switch (type) {
	case SPOOL_REC_RCPT:
		if (len >= 16 && spool_get32(pl + 8) < e->env.nrcpts)
			spool_set_rcpt(s, e, spool_get32(pl + 8),
			    (enum spool_rcpt_status)spool_get32(pl + 12));
		break;
	case SPOOL_REC_STATE:
		if (len >= 24 && spool_get32(pl + 8) <= SPOOL_HELD)
			spool_apply_state(s, e,
			    (enum spool_state)spool_get32(pl + 8),
			    (int64_t)spool_get64(pl + 16));
		break;
	case SPOOL_REC_REMOVE:
		e->seg->live--;
		e->seg->live_bytes -= e->data_len;
		spool_index_del(s, e);
		spool_ent_free(e);
		break;
	}
}

/* Replays one segment; returns the offset just past its last good record
 * or 0 if the header itself is bad. */
static uint64_t
scan(struct spool *s, struct spool_seg *seg, uint64_t size, uint64_t *max_id)
{
	uint8_t
	    h[SPOOL_REC_HDR > SPOOL_SEG_HDR ? SPOOL_REC_HDR : SPOOL_SEG_HDR];
	uint64_t off = SPOOL_SEG_HDR;
	uint8_t *pl = NULL;
	size_t plcap = 0;
	uint32_t seed;
	int version;

	if (size < SPOOL_SEG_HDR ||
	    pread(seg->fd, h, SPOOL_SEG_HDR, 0) != SPOOL_SEG_HDR ||
	    (version = spool_seg_hdr_check(h, seg->seq)) == -1)
		return 0;
	seed = spool_rec_seed(seg->seq, version);
	while (off + SPOOL_REC_HDR <= size) {
		uint32_t len, crc;
		uint16_t type;
		if (pread(seg->fd, h, SPOOL_REC_HDR, (off_t)off) !=
		    SPOOL_REC_HDR)
			break;
		type = spool_get16(h + 4);
		len = spool_get32(h + 8);
		if (spool_get32(h) != SPOOL_REC_MAGIC || type < SPOOL_REC_MSG ||
		    type > SPOOL_REC_REMOVE || len > size - off - SPOOL_REC_HDR)
			break;
		if (len > plcap) {
			uint8_t *np = realloc(pl, len);
			if (np == NULL)
				break;
			pl = np;
			plcap = len;
		}
		if (pread(seg->fd, pl, len, (off_t)(off + SPOOL_REC_HDR)) !=
		    (ssize_t)len)
			break;
		crc = crc32c(crc32c(seed, h, 12), pl, len);
		if (crc != spool_get32(h + 12))
			break;
		apply(s, seg, off, type, spool_get16(h + 6), pl, len, max_id);
		off = spool_align8(off + SPOOL_REC_HDR + len);
	}
	free(pl);
	return off < size ? off : size;
}

int
spool_recover(struct spool *s, bool readonly)
{
	uint64_t *seqs = NULL, max_id = 0;
	size_t n = 0;
	bool dirty_dir = false;

	if (!readonly) {
		clean_tmp(s);
		/* The reclaimed segment kept for reuse, from the last run. */
		s->recycle_fd =
		    openat(s->dirfd, SPOOL_RECYCLED, O_RDWR | O_CLOEXEC);
	}
	if (list_segments(s, &seqs, &n) == -1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char name[32];
		struct stat st;
		struct spool_seg *seg;
		uint64_t end;
		int fd;

		snprintf(name, sizeof(name), "%016" PRIX64 ".seg", seqs[i]);
		fd = openat(
		    s->dirfd, name, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (fd == -1 && errno == ENOENT)
			continue; /* reclaimed while we listed (spool_dump) */
		if (fd == -1 || fstat(fd, &st) == -1) {
			log_warn("spool %s/%s", s->dir, name);
			if (fd != -1)
				close(fd);
			free(seqs);
			return -1;
		}
		if ((seg = spool_seg_add(s, seqs[i], fd)) == NULL) {
			close(fd);
			free(seqs);
			return -1;
		}
		seg->closed = true;
		end = scan(s, seg, (uint64_t)st.st_size, &max_id);
		if (end == 0) {
			/* Created but never written: no record in it was
			 * ever acknowledged. */
			if (!readonly && seg->live == 0 && seg->ndeps == 0) {
				log_info(
				    "spool removed empty segment %s", name);
				unlinkat(s->dirfd, name, 0);
				dirty_dir = true;
				TAILQ_REMOVE(&s->segs, seg, entry);
				close(seg->fd);
				free(seg->deps);
				free(seg);
				s->n_segments--;
			}
			continue;
		}
		if (!readonly && end < (uint64_t)st.st_size) {
			/* A torn tail, an unacknowledged window or the
			 * preallocation of a segment that was being
			 * written. */
			if (ftruncate(fd, (off_t)end) == -1 ||
			    fdatasync(fd) == -1)
				log_warn("spool truncate %s", name);
		}
		s->next_seq = seqs[i] + 1;
	}
	if (n > 0 && seqs[n - 1] + 1 > s->next_seq)
		s->next_seq = seqs[n - 1] + 1;
	if (max_id >= s->next_id)
		s->next_id = max_id + 1;
	if (dirty_dir && fsync(s->dirfd) == -1)
		log_warn("spool fsync %s", s->dir);
	free(seqs);
	return 0;
}
