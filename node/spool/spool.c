/* spool.c - the node's durable queue: an append-only segment log with
 * group commit (docs/spool.md).
 *
 * The loop thread owns the index of queued messages and the segment
 * bookkeeping; spool_flush.c's worker appends records and fdatasyncs them
 * in batches, and the results come back here (eventfd) where commit
 * callbacks run and the index changes.  Errors from the disk are answered
 * politely: the commit callback gets ok == false and nothing partial is
 * kept.  Called by the SMTP session (commit) and the delivery engine. */
#include "spool_int.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "node.h"

static struct spool_ent *find_qid(struct spool *, const char *);

static const char *const state_names[] = {"active", "deferred", "held"};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Index: id -> entry, chained hash plus a commit-order list. */

static size_t
bucket(const struct spool_index *x, uint64_t id)
{
	id ^= id >> 29;
	id *= 0xbf58476d1ce4e5b9ULL;
	id ^= id >> 32;
	return (size_t)(id & (x->nbuckets - 1));
}

struct spool_ent *
spool_index_find(struct spool_index *x, uint64_t id)
{
	struct spool_ent *e;

	if (x->nbuckets == 0)
		return NULL;
	for (e = x->buckets[bucket(x, id)]; e != NULL; e = e->hnext)
		if (e->id == id)
			return e;
	return NULL;
}

static void
index_grow(struct spool_index *x)
{
	size_t nb = x->nbuckets ? x->nbuckets * 2 : 1024;
	struct spool_ent **b = calloc(nb, sizeof(*b)), *e, *next;
	struct spool_index nx = {.buckets = b, .nbuckets = nb};

	if (b == NULL)
		return; /* chains just get longer */
	for (size_t i = 0; i < x->nbuckets; i++)
		for (e = x->buckets[i]; e != NULL; e = next) {
			size_t k = bucket(&nx, e->id);
			next = e->hnext;
			e->hnext = b[k];
			b[k] = e;
		}
	free(x->buckets);
	x->buckets = b;
	x->nbuckets = nb;
}

static void
count_state(struct spool *s, enum spool_state st, int d)
{
	uint64_t *c = st == SPOOL_HELD       ? &s->nheld
	              : st == SPOOL_DEFERRED ? &s->ndeferred
	                                     : &s->nactive;
	*c += (uint64_t)(int64_t)d;
}

void
spool_index_add(struct spool *s, struct spool_ent *e)
{
	struct spool_index *x = &s->idx;
	size_t k;

	if (x->n >= x->nbuckets)
		index_grow(x);
	if (x->nbuckets == 0)
		fatalx("spool index: out of memory");
	k = bucket(x, e->id);
	e->hnext = x->buckets[k];
	x->buckets[k] = e;
	x->n++;
	TAILQ_INSERT_TAIL(&x->order, e, entry);
	count_state(s, e->state, 1);
	s->bytes += e->data_len;
}

void
spool_index_del(struct spool *s, struct spool_ent *e)
{
	struct spool_index *x = &s->idx;
	struct spool_ent **pp = &x->buckets[bucket(x, e->id)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	x->n--;
	TAILQ_REMOVE(&x->order, e, entry);
	count_state(s, e->state, -1);
	s->bytes -= e->data_len;
}

void
spool_ent_free(struct spool_ent *e)
{
	if (e == NULL)
		return;
	free(e->strings);
	free(e->rcpts);
	free(e->rcpt_status);
	free(e);
}

void
spool_set_rcpt(
    struct spool *s, struct spool_ent *e, size_t idx, enum spool_rcpt_status st)
{
	(void)s;
	if (e->rcpt_status[idx] == SPOOL_RCPT_PENDING &&
	    st != SPOOL_RCPT_PENDING)
		e->npending--;
	else if (e->rcpt_status[idx] != SPOOL_RCPT_PENDING &&
	         st == SPOOL_RCPT_PENDING)
		e->npending++;
	e->rcpt_status[idx] = (uint8_t)st;
}

void
spool_apply_state(struct spool *s, struct spool_ent *e, enum spool_state st,
    int64_t next_attempt_at)
{
	count_state(s, e->state, -1);
	e->state = st;
	e->next_attempt_at = next_attempt_at;
	count_state(s, e->state, 1);
}

/* Segments, kept in sequence order. */

struct spool_seg *
spool_seg_find(struct spool *s, uint64_t seq)
{
	struct spool_seg *g;

	TAILQ_FOREACH(g, &s->segs, entry)
	{
		if (g->seq == seq)
			return g;
	}
	return NULL;
}

struct spool_seg *
spool_seg_add(struct spool *s, uint64_t seq, int fd)
{
	struct spool_seg *g, *at;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->seq = seq;
	g->fd = fd;
	TAILQ_FOREACH(at, &s->segs, entry)
	{
		if (at->seq > seq)
			break;
		/* The worker never goes back to an older segment. */
		if (!at->closed)
			at->closed_at_ms = now_ms();
		at->closed = true;
	}
	if (at != NULL) {
		g->closed = true;
		g->closed_at_ms = now_ms();
		TAILQ_INSERT_BEFORE(at, g, entry);
	} else
		TAILQ_INSERT_TAIL(&s->segs, g, entry);
	s->n_segments++;
	return g;
}

void
spool_seg_dep(struct spool_seg *g, uint64_t on)
{
	for (size_t i = 0; i < g->ndeps; i++)
		if (g->deps[i] == on)
			return;
	if (g->ndeps == g->capdeps) {
		size_t nc = g->capdeps ? g->capdeps * 2 : 4;
		uint64_t *nd = realloc(g->deps, nc * sizeof(*nd));
		if (nd == NULL)
			fatalx("spool: out of memory");
		g->deps = nd;
		g->capdeps = nc;
	}
	g->deps[g->ndeps++] = on;
}

/* The segment a record landed in, opened for readers on first sight. */
static struct spool_seg *
seg_get(struct spool *s, uint64_t seq)
{
	struct spool_seg *g;
	char name[32];
	int fd;

	if ((g = spool_seg_find(s, seq)) != NULL)
		return g;
	snprintf(name, sizeof(name), "%016" PRIX64 ".seg", seq);
	if ((fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC)) == -1)
		log_warn("spool open %s", name);
	if ((g = spool_seg_add(s, seq, fd)) == NULL)
		fatalx("spool: out of memory");
	return g;
}

static void
stats_publish(struct spool *s)
{
	struct node_stats *st = s->stats;
	struct spool_ent *old;

	if (st == NULL)
		return;
	old = TAILQ_FIRST(&s->idx.order);
	atomic_store(&st->queue_messages, s->idx.n);
	atomic_store(&st->queue_bytes, s->bytes);
	atomic_store(&st->queue_active, s->nactive);
	atomic_store(&st->queue_deferred, s->ndeferred);
	atomic_store(&st->queue_held, s->nheld);
	atomic_store(&st->queue_oldest_at, old ? old->committed_at : 0);
}

/* Segment reclaim.  A segment goes when no message in it is live, it is
 * no longer written, and every older segment its records describe is
 * gone: otherwise deleting its tombstones would bring removed messages
 * back at the next recovery. */
static void
reclaim(struct spool *s)
{
	struct spool_seg *g;

	if (s->base == NULL)
		return; /* read-only (spool_dump) */
	TAILQ_FOREACH(g, &s->segs, entry)
	{
		struct spool_job *j;
		bool deps_gone = true;

		if (g->unlinking || !g->closed || g->live > 0)
			continue;
		for (size_t i = 0; i < g->ndeps && deps_gone; i++)
			deps_gone = spool_seg_find(s, g->deps[i]) == NULL;
		if (!deps_gone)
			continue;
		if ((j = calloc(1, sizeof(*j))) == NULL)
			return;
		g->unlinking = true;
		if (g->fd != -1)
			close(g->fd);
		g->fd = -1;
		j->kind = SPOOL_JOB_UNLINK;
		j->seg_seq = g->seq;
		j->spill_fd = -1;
		spool_flush_submit(s, j);
	}
}

/* Compaction.  A closed segment whose live data is under a quarter of a
 * segment, closed for compact_delay_ms, has its live messages copied to
 * the active segment, each as one MSG record carrying its queue state
 * (SPOOL_MSG_F_STATE); the old segment then empties and is reclaimed.  One
 * segment at a time.  The copy supersedes the old record the way a
 * tombstone does, so its segment depends on the old one (reclaim order). */
static int
relocate_one(struct spool *s, struct spool_ent *e)
{
	struct spool_job *j;
	uint8_t *tail;
	size_t tlen;
	int fd;

	if ((tail = spool_ent_encode_state(e, &tlen)) == NULL)
		return -1;
	if ((fd = dup(e->seg->fd)) == -1) {
		free(tail);
		return -1;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->buf = malloc(SPOOL_MSG_HEAD)) == NULL)
		fatalx("spool: out of memory");
	spool_put64(j->buf + SPOOL_REC_HDR, e->id);
	spool_put64(j->buf + SPOOL_REC_HDR + 8, e->data_len);
	j->len = SPOOL_MSG_HEAD;
	j->spill_fd = fd; /* the job's own: the old segment may close */
	j->spill_off = e->data_off;
	j->spill_len = e->data_len;
	j->tail = tail;
	j->tail_len = tlen;
	j->flags = SPOOL_MSG_F_STATE;
	j->kind = SPOOL_JOB_WRITE;
	j->type = SPOOL_REC_MSG;
	j->id = e->id;
	j->reloc = true;
	j->msg_seg = e->seg->seq;
	j->msg_bytes = e->data_len;
	e->relocating = true;
	s->nrelocating++;
	spool_flush_submit(s, j);
	return 0;
}

static void
compact(struct spool *s)
{
	struct spool_seg *g, *newest = TAILQ_LAST(&s->segs, spool_segs);
	struct spool_ent *e;
	uint64_t now = now_ms(), budget = 0;

	if (s->base == NULL || s->nrelocating > 0)
		return;
	TAILQ_FOREACH(g, &s->segs, entry)
	{
		if (g == newest)
			return;
		if (g->closed && !g->unlinking && g->live > 0 && g->fd != -1 &&
		    g->live_bytes * 4 <= s->segment_size &&
		    now - g->closed_at_ms >= s->compact_delay_ms)
			break;
	}
	if (g == NULL)
		return;
	log_debug("spool segment %016" PRIX64 " compacting messages=%" PRIu64
	          " bytes=%" PRIu64,
	    g->seq, g->live, g->live_bytes);
	/* A bounded slice per round, so that commits sharing the worker's
	 * batches never wait behind a long copy. */
	TAILQ_FOREACH(e, &s->idx.order, entry)
	{
		if (e->seg != g || e->relocating)
			continue;
		if (relocate_one(s, e) == -1) {
			log_warn("%s spool compaction", e->qid);
			break;
		}
		if ((budget += e->data_len + 512) >= SPOOL_COMPACT_SLICE)
			break;
	}
}

static void
reloc_done(struct spool *s, struct spool_job *j, struct spool_seg *g)
{
	struct spool_ent *e = spool_index_find(&s->idx, j->id);
	struct spool_seg *old;

	s->nrelocating--;
	if (e != NULL)
		e->relocating = false;
	if (!j->ok)
		return; /* it stays where it was */
	s->n_relocated++;
	spool_seg_dep(g, j->msg_seg);
	/* Removed meanwhile: its tombstone follows the copy in the log and
	 * the old segment's count drops when that is durable. */
	if (e == NULL || e->seg->seq != j->msg_seg)
		return;
	old = e->seg;
	old->live--;
	old->live_bytes -= e->data_len;
	e->seg = g;
	e->data_off = j->rec_off + SPOOL_MSG_HEAD;
	g->live++;
	g->live_bytes += e->data_len;
}

static void
job_free(struct spool_job *j)
{
	if (j == NULL)
		return;
	free(j->buf);
	free(j->tail);
	if (j->spill_fd != -1)
		close(j->spill_fd);
	free(j->spill_path);
	spool_ent_free(j->ent);
	if (j->note != NULL)
		j->note->drop(j->note);
	free(j);
}

static void
complete(struct spool *s, struct spool_job *j)
{
	struct spool_seg *g = NULL, *mg;
	char qid[SPOOL_QID_MAX];

	spool_qid_format(j->id, qid);
	if (j->kind == SPOOL_JOB_UNLINK) {
		if ((g = spool_seg_find(s, j->seg_seq)) == NULL)
			return;
		if (!j->ok) {
			log_warn(
			    "spool unlink segment %016" PRIX64, j->seg_seq);
			return;
		}
		log_debug("spool segment %016" PRIX64 " reclaimed", g->seq);
		TAILQ_REMOVE(&s->segs, g, entry);
		free(g->deps);
		free(g);
		s->n_segments--;
		s->n_segments_deleted++;
		return;
	}
	if (j->seg_seq != 0)
		g = seg_get(s, j->seg_seq);
	s->last_errno = j->ok ? 0 : j->err;
	if (j->ok)
		s->n_records++;
	else {
		s->n_failures++;
		errno = j->err;
		log_warn("%s spool %s", qid,
		    j->type == SPOOL_REC_MSG ? "commit" : "update");
	}
	if (j->reloc) {
		reloc_done(s, j, g);
		return;
	}
	if (j->type == SPOOL_REC_MSG) {
		enum spool_state st = SPOOL_ACTIVE;
		if (j->ok) {
			struct spool_ent *e = j->ent;
			st = e->state; /* held: the user's hold flag */
			j->ent = NULL;
			e->seg = g;
			e->data_off = j->rec_off + SPOOL_MSG_HEAD;
			g->live++;
			g->live_bytes += e->data_len;
			spool_index_add(s, e);
			s->n_commits++;
			stats_publish(s);
		}
		if (j->commit_cb != NULL)
			j->commit_cb(j->commit_arg, j->cookie, qid, j->ok);
		/* not if the callback withdrew it (spool_remove) already */
		if (j->ok && s->watch != NULL && find_qid(s, qid) != NULL)
			s->watch(s->watch_arg, qid, st, 0, false);
		return;
	}
	/* Records about a message in an older segment pin that segment's
	 * deletion before their own. */
	if (g != NULL && j->msg_seg != g->seq)
		spool_seg_dep(g, j->msg_seg);
	/* Queued while a compaction copy of the message was in flight: the
	 * copy landed between msg_seg and g (which segment is not known
	 * here, the message may be gone), and this record must outlive it
	 * too, or a removed message (a lost state) comes back with the copy
	 * after a restart. */
	if (g != NULL && j->moving)
		TAILQ_FOREACH(mg, &s->segs, entry)
		{
			if (mg->seq > j->msg_seg && mg->seq < g->seq)
				spool_seg_dep(g, mg->seq);
		}
	if (j->type == SPOOL_REC_REMOVE && j->ok &&
	    (mg = spool_seg_find(s, j->msg_seg)) != NULL) {
		mg->live--;
		mg->live_bytes -= j->msg_bytes;
	}
	if (j->done_cb != NULL)
		j->done_cb(j->cookie, qid, j->ok);
}

static void
spool_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct spool *s = arg;
	struct spool_jobs done;
	struct spool_job *j;
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("spool eventfd read");
	pthread_mutex_lock(&s->mu);
	STAILQ_INIT(&done);
	STAILQ_CONCAT(&done, &s->done);
	pthread_mutex_unlock(&s->mu);
	/* A new segment seen in this batch closes the older ones: look at
	 * every record's segment before reclaiming anything. */
	while ((j = STAILQ_FIRST(&done)) != NULL) {
		STAILQ_REMOVE_HEAD(&done, entry);
		complete(s, j);
		job_free(j);
	}
	reclaim(s);
	compact(s);
}

static void
spool_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	compact(arg);
}

static int
mkdir_p(const char *path, bool *created)
{
	if (mkdir(path, 0700) == 0) {
		*created = true;
		return 0;
	}
	return errno == EEXIST ? 0 : -1;
}

static void
free_state(struct spool *s)
{
	struct spool_ent *e;
	struct spool_seg *g;

	while ((e = TAILQ_FIRST(&s->idx.order)) != NULL) {
		TAILQ_REMOVE(&s->idx.order, e, entry);
		spool_ent_free(e);
	}
	free(s->idx.buckets);
	while ((g = TAILQ_FIRST(&s->segs)) != NULL) {
		TAILQ_REMOVE(&s->segs, g, entry);
		if (g->fd != -1)
			close(g->fd);
		free(g->deps);
		free(g);
	}
	if (s->recycle_fd != -1)
		close(s->recycle_fd);
	if (s->dirfd != -1)
		close(s->dirfd);
	free(s->dir);
}

static struct spool *
spool_alloc(const char *dir)
{
	struct spool *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->dirfd = s->lockfd = s->efd = s->w_fd = s->spare_fd = -1;
	s->recycle_fd = -1;
	TAILQ_INIT(&s->idx.order);
	TAILQ_INIT(&s->segs);
	STAILQ_INIT(&s->todo);
	STAILQ_INIT(&s->done);
	STAILQ_INIT(&s->unlinks);
	s->next_seq = 1;
	s->next_id = now_us();
	s->segment_size = SPOOL_DEF_SEGMENT;
	s->spill_size = SPOOL_DEF_SPILL;
	s->compact_delay_ms = 30000;
	s->lazy_sync_ms = SPOOL_LAZY_MS;
	if (asprintf(&s->dir, "%s/%s", dir, SPOOL_SUBDIR) == -1) {
		free(s);
		return NULL;
	}
	return s;
}

struct spool *
spool_open(struct event_base *base, const char *dir, struct node_stats *st)
{
	return spool_open_opts(base, dir, st, NULL);
}

struct spool *
spool_open_opts(struct event_base *base, const char *dir, struct node_stats *st,
    const struct spool_opts *o)
{
	struct spool *s;
	bool created = false;
	char *tmp = NULL;

	if ((s = spool_alloc(dir)) == NULL)
		return NULL;
	s->base = base;
	s->stats = st;
	if (o != NULL && o->segment_size > 0)
		s->segment_size =
		    o->segment_size < 4096 ? 4096 : o->segment_size;
	if (o != NULL && o->spill_size > 0)
		s->spill_size = o->spill_size;
	if (o != NULL && o->compact_delay_ms > 0)
		s->compact_delay_ms = o->compact_delay_ms;
	if (o != NULL && o->lazy_sync_ms > 0)
		s->lazy_sync_ms = o->lazy_sync_ms;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->prep_cv, NULL);
	pthread_cond_init(&s->spare_cv, NULL);
	if (mkdir_p(dir, &created) == -1 || mkdir_p(s->dir, &created) == -1 ||
	    asprintf(&tmp, "%s/tmp", s->dir) == -1 ||
	    mkdir_p(tmp, &created) == -1) {
		log_warn("spool mkdir %s", s->dir);
		goto fail;
	}
	if ((s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		log_warn("spool open %s", s->dir);
		goto fail;
	}
	if (created) {
		/* The new directories themselves must survive a crash. */
		int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd != -1) {
			fsync(pfd);
			close(pfd);
		}
		fsync(s->dirfd);
	}
	s->lockfd =
	    openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd == -1 || flock(s->lockfd, LOCK_EX | LOCK_NB) == -1) {
		log_warn("spool lock %s/lock (another process?)", s->dir);
		goto fail;
	}
	if (spool_recover(s, false) == -1)
		goto fail;
	if (s->next_id < now_us())
		s->next_id = now_us();
	if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (s->ev_done = event_new(base, s->efd, EV_READ | EV_PERSIST,
	         spool_on_done, s)) == NULL ||
	    event_add(s->ev_done, NULL) == -1) {
		log_warn("spool eventfd");
		goto fail;
	}
	{
		struct timeval tick = {1, 0};
		if ((s->ev_tick = event_new(
		         base, -1, EV_PERSIST, spool_on_tick, s)) == NULL ||
		    event_add(s->ev_tick, &tick) == -1) {
			log_warnx("spool timer");
			goto fail;
		}
	}
	if (spool_flush_start(s) == -1)
		goto fail;
	reclaim(s);
	stats_publish(s);
	log_info("spool open dir=%s messages=%zu bytes=%" PRIu64
	         " segments=%" PRIu64,
	    s->dir, s->idx.n, s->bytes, s->n_segments);
	free(tmp);
	return s;
fail:
	free(tmp);
	spool_close(s);
	return NULL;
}

void
spool_close(struct spool *s)
{
	struct spool_job *j;

	if (s == NULL)
		return;
	/* In-flight work is finished (made durable) but its callbacks are
	 * not run: whoever closes the spool is tearing the sessions down. */
	spool_flush_stop(s);
	STAILQ_CONCAT(&s->done, &s->todo);
	STAILQ_CONCAT(&s->done, &s->unlinks);
	while ((j = STAILQ_FIRST(&s->done)) != NULL) {
		STAILQ_REMOVE_HEAD(&s->done, entry);
		job_free(j);
	}
	if (s->ev_tick != NULL)
		event_free(s->ev_tick);
	if (s->ev_done != NULL)
		event_free(s->ev_done);
	if (s->efd != -1)
		close(s->efd);
	if (s->lockfd != -1)
		close(s->lockfd);
	free_state(s);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->prep_cv);
	pthread_cond_destroy(&s->spare_cv);
	free(s);
}

/* Receiving a message. */

struct spool_msg *
spool_msg_new(struct spool *s)
{
	struct spool_msg *m;
	uint64_t t = now_us();

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->cap = SPOOL_MSG_FIRST;
	if ((m->buf = malloc(m->cap)) == NULL) {
		free(m);
		return NULL;
	}
	m->spool = s;
	m->len = SPOOL_MSG_HEAD;
	m->spill_fd = -1;
	/* Ids follow the clock in microseconds and never repeat: recovery
	 * moves next_id past every id on disk. */
	m->id = s->next_id > t ? s->next_id : t;
	s->next_id = m->id + 1;
	spool_qid_format(m->id, m->qid);
	return m;
}

const char *
spool_msg_id(const struct spool_msg *m)
{
	return m->qid;
}

static int
write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Big messages go to tmp/<qid> so no session holds more than spill_size
 * in memory; the worker copies them into the segment at commit. */
static int
msg_spill(struct spool_msg *m)
{
	struct spool *s = m->spool;
	uint8_t *nb;

	if (asprintf(&m->spill_path, "tmp/%s", m->qid) == -1) {
		m->spill_path = NULL;
		return -1;
	}
	m->spill_fd = openat(s->dirfd, m->spill_path,
	    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (m->spill_fd == -1)
		return -1;
	if (write_all(m->spill_fd, m->buf + SPOOL_MSG_HEAD,
	        m->len - SPOOL_MSG_HEAD) == -1)
		return -1;
	m->len = SPOOL_MSG_HEAD;
	if ((nb = realloc(m->buf, SPOOL_MSG_HEAD)) != NULL) {
		m->buf = nb;
		m->cap = SPOOL_MSG_HEAD;
	}
	return 0;
}

int
spool_msg_write(struct spool_msg *m, const void *p, size_t n)
{
	int saved;

	if (m->failed)
		return -1;
	if (m->spill_fd == -1 &&
	    m->len - SPOOL_MSG_HEAD + n > m->spool->spill_size &&
	    msg_spill(m) == -1)
		goto fail;
	if (m->spill_fd != -1) {
		if (write_all(m->spill_fd, p, n) == -1)
			goto fail;
	} else {
		if (m->len + n > m->cap) {
			/* Past the first 4 KiB straight to 32 KiB: doubling
			 * from 4 KiB moved a 20 KB message three times. */
			size_t nc =
			    m->cap < SPOOL_MSG_GROW ? SPOOL_MSG_GROW : m->cap;
			uint8_t *nb;
			while (nc < m->len + n)
				nc *= 2;
			if ((nb = realloc(m->buf, nc)) == NULL)
				goto fail;
			m->buf = nb;
			m->cap = nc;
		}
		memcpy(m->buf + m->len, p, n);
		m->len += n;
	}
	m->data_len += n;
	return 0;
fail:
	saved = errno;
	log_warn("%s spool write", m->qid);
	m->failed = true;
	m->err = saved;
	errno = saved;
	return -1;
}

int
spool_msg_peek(const struct spool_msg *m, const uint8_t **p, size_t *len)
{
	if (m->failed || m->spill_fd != -1)
		return -1;
	*p = m->buf + SPOOL_MSG_HEAD;
	*len = m->len - SPOOL_MSG_HEAD;
	return 0;
}

static void
msg_free(struct spool_msg *m)
{
	if (m == NULL)
		return;
	if (m->spill_fd != -1) {
		close(m->spill_fd);
		unlinkat(m->spool->dirfd, m->spill_path, 0);
	}
	free(m->spill_path);
	free(m->buf);
	free(m);
}

void
spool_msg_abort(struct spool_msg *m)
{
	msg_free(m);
}

void
spool_msg_commit(struct spool_msg *m, const struct spool_envelope *env,
    spool_commit_cb cb, void *arg, uint64_t cookie)
{
	spool_msg_commit_note(m, env, cb, arg, cookie, NULL);
}

void
spool_set_sync_hooks(
    struct spool *s, void (*begin)(void *), void (*end)(void *), void *arg)
{
	s->sync_begin = begin;
	s->sync_end = end;
	s->sync_arg = arg;
}

void
spool_msg_commit_note(struct spool_msg *m, const struct spool_envelope *env,
    spool_commit_cb cb, void *arg, uint64_t cookie, struct spool_note *note)
{
	struct spool *s = m->spool;
	struct spool_job *j;
	uint8_t *tail = NULL;
	size_t tlen = 0;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatalx("spool: out of memory");
	j->note = note;
	j->kind = SPOOL_JOB_WRITE;
	j->type = SPOOL_REC_MSG;
	j->id = m->id;
	j->commit_cb = cb;
	j->commit_arg = arg;
	j->cookie = cookie;
	j->spill_fd = -1;
	if (m->failed) {
		j->err = m->err;
		msg_free(m);
		spool_flush_post_done(s, j);
		return;
	}
	if ((tail = spool_env_encode(
	         env, (int64_t)(now_us() / 1000000), &tlen)) == NULL ||
	    (j->ent = spool_ent_decode_tail(
	         m->id, m->data_len, tail, tlen, 0)) == NULL) {
		free(tail);
		msg_free(m);
		j->ok = false;
		j->err = EIO;
		spool_flush_post_done(s, j);
		return;
	}
	spool_put64(m->buf + SPOOL_REC_HDR, m->id);
	spool_put64(m->buf + SPOOL_REC_HDR + 8, m->data_len);
	if (m->spill_fd != -1) {
		j->buf = m->buf;
		j->len = SPOOL_MSG_HEAD;
		j->spill_fd = m->spill_fd;
		j->spill_len = m->data_len;
		j->spill_path = m->spill_path;
		j->tail = tail;
		j->tail_len = tlen;
	} else {
		uint8_t *nb = m->buf;
		if (m->len + tlen > m->cap &&
		    (nb = realloc(m->buf, m->len + tlen)) == NULL)
			fatalx("spool: out of memory");
		memcpy(nb + m->len, tail, tlen);
		free(tail);
		j->buf = nb;
		j->len = m->len + tlen;
	}
	free(m);
	spool_flush_submit(s, j);
}

/* The delivery engine's view. */

static void
info_fill(const struct spool_ent *e, struct spool_info *out)
{
	out->queue_id = e->qid;
	out->env = e->env;
	out->rcpt_status = e->rcpt_status;
	out->npending = e->npending;
	out->size = e->data_len;
	out->state = e->state;
	out->next_attempt_at = e->next_attempt_at;
	out->committed_at = e->committed_at;
}

static struct spool_ent *
find_qid(struct spool *s, const char *qid)
{
	uint64_t id;

	if (spool_qid_parse(qid, &id) == -1)
		return NULL;
	return spool_index_find(&s->idx, id);
}

int
spool_foreach(struct spool *s, spool_foreach_cb cb, void *arg)
{
	struct spool_ent *e;
	struct spool_info info;
	int rv;

	TAILQ_FOREACH(e, &s->idx.order, entry)
	{
		info_fill(e, &info);
		if ((rv = cb(&info, arg)) != 0)
			return rv;
	}
	return 0;
}

int
spool_lookup(struct spool *s, const char *qid, struct spool_info *out)
{
	struct spool_ent *e;

	if ((e = find_qid(s, qid)) == NULL)
		return -1;
	info_fill(e, out);
	return 0;
}

int
spool_data(
    struct spool *s, const char *qid, int *fd, uint64_t *off, uint64_t *len)
{
	struct spool_ent *e;

	if ((e = find_qid(s, qid)) == NULL || e->seg->fd == -1)
		return -1;
	*fd = e->seg->fd;
	*off = e->data_off;
	*len = e->data_len;
	return 0;
}

ssize_t
spool_read(struct spool *s, const char *qid, uint64_t off, void *buf, size_t n)
{
	struct spool_ent *e;

	if ((e = find_qid(s, qid)) == NULL || e->seg->fd == -1)
		return -1;
	if (off >= e->data_len)
		return 0;
	if (n > e->data_len - off)
		n = (size_t)(e->data_len - off);
	return pread(e->seg->fd, buf, n, (off_t)(e->data_off + off));
}

/* Queues a small record about message e. */
static void
update(struct spool *s, struct spool_ent *e, enum spool_rec_type type,
    const uint8_t *pl, size_t plen, spool_done_cb cb, uint64_t cookie)
{
	struct spool_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->buf = malloc(SPOOL_REC_HDR + plen)) == NULL)
		fatalx("spool: out of memory");
	memcpy(j->buf + SPOOL_REC_HDR, pl, plen);
	j->len = SPOOL_REC_HDR + plen;
	j->kind = SPOOL_JOB_WRITE;
	j->type = type;
	j->id = e->id;
	j->msg_seg = e->seg->seq;
	j->msg_bytes = e->data_len;
	j->moving = e->relocating;
	j->spill_fd = -1;
	j->done_cb = cb;
	j->cookie = cookie;
	j->lazy = true; /* rides with the next commit's sync */
	spool_flush_submit(s, j);
}

int
spool_rcpt_done(struct spool *s, const char *qid, size_t idx,
    enum spool_rcpt_status st, spool_done_cb cb, uint64_t cookie)
{
	struct spool_ent *e;
	uint8_t pl[16];

	if ((e = find_qid(s, qid)) == NULL || idx >= e->env.nrcpts ||
	    st > SPOOL_RCPT_BOUNCED)
		return -1;
	spool_set_rcpt(s, e, idx, st);
	spool_put64(pl, e->id);
	spool_put32(pl + 8, (uint32_t)idx);
	spool_put32(pl + 12, (uint32_t)st);
	update(s, e, SPOOL_REC_RCPT, pl, sizeof(pl), cb, cookie);
	return 0;
}

int
spool_set_state(struct spool *s, const char *qid, enum spool_state st,
    int64_t next_attempt_at, spool_done_cb cb, uint64_t cookie)
{
	struct spool_ent *e;
	uint8_t pl[24];

	if ((e = find_qid(s, qid)) == NULL || st > SPOOL_HELD)
		return -1;
	spool_apply_state(s, e, st, next_attempt_at);
	stats_publish(s);
	if (s->watch != NULL)
		s->watch(s->watch_arg, qid, st, next_attempt_at, false);
	spool_put64(pl, e->id);
	spool_put32(pl + 8, (uint32_t)st);
	spool_put32(pl + 12, 0);
	spool_put64(pl + 16, (uint64_t)next_attempt_at);
	update(s, e, SPOOL_REC_STATE, pl, sizeof(pl), cb, cookie);
	return 0;
}

int
spool_remove(
    struct spool *s, const char *qid, spool_done_cb cb, uint64_t cookie)
{
	struct spool_ent *e;
	uint8_t pl[8];
	char id[SPOOL_QID_MAX]; /* qid may point into e */

	if ((e = find_qid(s, qid)) == NULL)
		return -1;
	snprintf(id, sizeof(id), "%s", e->qid);
	spool_put64(pl, e->id);
	update(s, e, SPOOL_REC_REMOVE, pl, sizeof(pl), cb, cookie);
	/* Gone from the queue now; its segment's live count drops when the
	 * tombstone is durable. */
	spool_index_del(s, e);
	spool_ent_free(e);
	stats_publish(s);
	if (s->watch != NULL)
		s->watch(s->watch_arg, id, SPOOL_ACTIVE, 0, true);
	return 0;
}

void
spool_watch(struct spool *s, spool_watch_cb cb, void *arg)
{
	s->watch = cb;
	s->watch_arg = arg;
}

int
spool_last_errno(const struct spool *s)
{
	return s->last_errno;
}

void
spool_counters(const struct spool *s, struct spool_counters *c)
{
	size_t i;

	c->commits = s->n_commits;
	c->records = s->n_records;
	c->flushes = s->n_flushes;
	c->failures = s->n_failures;
	c->segments = s->n_segments;
	c->segments_deleted = s->n_segments_deleted;
	c->segments_recycled = atomic_load(&s->n_recycled);
	c->relocated = s->n_relocated;
	for (i = 0; i < SPOOL_SYNC_BUCKETS; i++)
		c->sync_buckets[i] = atomic_load(&s->n_sync[i]);
	c->sync_us = atomic_load(&s->sync_us);
}

int
spool_dump(const char *dir, FILE *fp)
{
	struct spool *s;
	struct spool_ent *e;
	int n = 0;

	if ((s = spool_alloc(dir)) == NULL)
		return -1;
	if ((s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		int rv = errno == ENOENT ? 0 : -1;
		free_state(s);
		free(s);
		return rv;
	}
	if (spool_recover(s, true) == -1) {
		free_state(s);
		free(s);
		return -1;
	}
	TAILQ_FOREACH(e, &s->idx.order, entry)
	{
		fprintf(fp,
		    "%s state=%s size=%" PRIu64 " from=<%s> to=", e->qid,
		    state_names[e->state], e->data_len, e->env.sender);
		for (size_t i = 0; i < e->env.nrcpts; i++)
			fprintf(fp, "%s<%s>%s", i ? "," : "", e->rcpts[i],
			    e->rcpt_status[i] == SPOOL_RCPT_DELIVERED
			        ? ":delivered"
			    : e->rcpt_status[i] == SPOOL_RCPT_BOUNCED
			        ? ":bounced"
			        : "");
		fputc('\n', fp);
		n++;
	}
	free_state(s);
	free(s);
	return n;
}
