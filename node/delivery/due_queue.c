/* due_queue.c - min-heap of (due time, insertion number) over a slab of
 * entries, with a chained hash from queue id to entry.  Entries, heap and
 * buckets refer to each other by 32-bit index; the slab reuses freed
 * entries through a free list.  Pure: see due_queue.h. */
#include "due_queue.h"

#include <stdlib.h>
#include <string.h>

#define DUE_NONE UINT32_MAX

struct due_ent {
	char qid[DUE_QID_MAX];
	int64_t due;
	uint64_t seq;
	uint32_t tag;
	uint32_t pos;  /* heap slot; DUE_NONE when free */
	uint32_t next; /* hash chain, or free list */
};

struct due_queue {
	struct due_ent *ents;
	uint32_t nents, cap, free;
	uint32_t *heap; /* [cap] entry indices */
	uint32_t len;
	uint32_t *bucket; /* [nbucket] first entry of each chain */
	uint32_t nbucket; /* power of two */
	uint64_t seq;
};

static uint32_t
due_hash(const char *qid)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*qid != '\0')
		h = (h ^ (uint8_t)*qid++) * 16777619u;
	return h;
}

uint32_t
due_queue_tag(const char *hop)
{
	return 1u << (due_hash(hop != NULL ? hop : "") % 32);
}

struct due_queue *
due_queue_new(void)
{
	struct due_queue *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->free = DUE_NONE;
	q->nbucket = 64;
	if ((q->bucket = malloc(q->nbucket * sizeof(*q->bucket))) == NULL) {
		free(q);
		return NULL;
	}
	memset(q->bucket, 0xff, q->nbucket * sizeof(*q->bucket));
	return q;
}

void
due_queue_free(struct due_queue *q)
{
	if (q == NULL)
		return;
	free(q->ents);
	free(q->heap);
	free(q->bucket);
	free(q);
}

size_t
due_queue_len(const struct due_queue *q)
{
	return q->len;
}

int64_t
due_queue_next(const struct due_queue *q)
{
	return q->len > 0 ? q->ents[q->heap[0]].due : INT64_MAX;
}

/* ------------------------------------------------------------ heap */

static bool
due_less(const struct due_queue *q, uint32_t a, uint32_t b)
{
	const struct due_ent *x = &q->ents[a], *y = &q->ents[b];

	return x->due < y->due || (x->due == y->due && x->seq < y->seq);
}

static void
due_place(struct due_queue *q, uint32_t pos, uint32_t e)
{
	q->heap[pos] = e;
	q->ents[e].pos = pos;
}

static void
due_up(struct due_queue *q, uint32_t pos)
{
	uint32_t e = q->heap[pos];

	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;

		if (!due_less(q, e, q->heap[parent]))
			break;
		due_place(q, pos, q->heap[parent]);
		pos = parent;
	}
	due_place(q, pos, e);
}

static void
due_down(struct due_queue *q, uint32_t pos)
{
	uint32_t e = q->heap[pos];

	for (;;) {
		uint32_t c = 2 * pos + 1;

		if (c >= q->len)
			break;
		if (c + 1 < q->len && due_less(q, q->heap[c + 1], q->heap[c]))
			c++;
		if (!due_less(q, q->heap[c], e))
			break;
		due_place(q, pos, q->heap[c]);
		pos = c;
	}
	due_place(q, pos, e);
}

static void
due_fix(struct due_queue *q, uint32_t pos)
{
	uint32_t e = q->heap[pos];

	due_up(q, pos);
	if (q->ents[e].pos == pos)
		due_down(q, pos);
}

/* ------------------------------------------------------------ hash */

static uint32_t
due_find(const struct due_queue *q, const char *qid)
{
	uint32_t e = q->bucket[due_hash(qid) & (q->nbucket - 1)];

	while (e != DUE_NONE && strcmp(q->ents[e].qid, qid) != 0)
		e = q->ents[e].next;
	return e;
}

static void
due_link(struct due_queue *q, uint32_t e)
{
	uint32_t *b = &q->bucket[due_hash(q->ents[e].qid) & (q->nbucket - 1)];

	q->ents[e].next = *b;
	*b = e;
}

static void
due_unlink(struct due_queue *q, uint32_t e)
{
	uint32_t *pp = &q->bucket[due_hash(q->ents[e].qid) & (q->nbucket - 1)];

	while (*pp != e)
		pp = &q->ents[*pp].next;
	*pp = q->ents[e].next;
}

/* Room for one more entry: slab, heap and (at load 1) the buckets. */
static int
due_grow(struct due_queue *q)
{
	uint32_t i;

	if (q->free == DUE_NONE && q->nents == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 64;
		struct due_ent *ents;
		uint32_t *heap;

		if (cap > UINT32_MAX / 2)
			return -1;
		if ((ents = realloc(q->ents, cap * sizeof(*ents))) == NULL)
			return -1;
		q->ents = ents;
		if ((heap = realloc(q->heap, cap * sizeof(*heap))) == NULL)
			return -1;
		q->heap = heap;
		q->cap = cap;
	}
	if (q->len + 1 > q->nbucket) {
		uint32_t nb = q->nbucket * 2, *b = malloc(nb * sizeof(*b));

		if (b == NULL)
			return -1;
		memset(b, 0xff, nb * sizeof(*b));
		free(q->bucket);
		q->bucket = b;
		q->nbucket = nb;
		for (i = 0; i < q->len; i++)
			due_link(q, q->heap[i]);
	}
	return 0;
}

int
due_queue_set(
    struct due_queue *q, const char *qid, int64_t due_ms, uint32_t tag)
{
	uint32_t e;
	size_t n = strlen(qid);

	if (n == 0 || n >= DUE_QID_MAX)
		return -1;
	if ((e = due_find(q, qid)) != DUE_NONE) {
		q->ents[e].due = due_ms;
		q->ents[e].seq = q->seq++;
		q->ents[e].tag = tag;
		due_fix(q, q->ents[e].pos);
		return 0;
	}
	if (due_grow(q) == -1)
		return -1;
	if (q->free != DUE_NONE) {
		e = q->free;
		q->free = q->ents[e].next;
	} else
		e = q->nents++;
	memcpy(q->ents[e].qid, qid, n + 1);
	q->ents[e].due = due_ms;
	q->ents[e].seq = q->seq++;
	q->ents[e].tag = tag;
	due_link(q, e);
	q->heap[q->len] = e;
	q->ents[e].pos = q->len++;
	due_up(q, q->len - 1);
	return 0;
}

static void
due_drop(struct due_queue *q, uint32_t e)
{
	uint32_t pos = q->ents[e].pos, last;

	due_unlink(q, e);
	last = q->heap[--q->len];
	if (pos < q->len) {
		due_place(q, pos, last);
		due_fix(q, pos);
	}
	q->ents[e].pos = DUE_NONE;
	q->ents[e].qid[0] = '\0';
	q->ents[e].next = q->free;
	q->free = e;
}

bool
due_queue_remove(struct due_queue *q, const char *qid)
{
	uint32_t e = due_find(q, qid);

	if (e == DUE_NONE)
		return false;
	due_drop(q, e);
	return true;
}

bool
due_queue_get(const struct due_queue *q, const char *qid, int64_t *due_ms)
{
	uint32_t e = due_find(q, qid);

	if (e == DUE_NONE)
		return false;
	if (due_ms != NULL)
		*due_ms = q->ents[e].due;
	return true;
}

bool
due_queue_pop(struct due_queue *q, int64_t now_ms, char out[DUE_QID_MAX])
{
	uint32_t e;

	if (q->len == 0 || q->ents[q->heap[0]].due > now_ms)
		return false;
	e = q->heap[0];
	memcpy(out, q->ents[e].qid, DUE_QID_MAX);
	due_drop(q, e);
	return true;
}

size_t
due_queue_wake(struct due_queue *q, uint32_t mask, int64_t now_ms)
{
	size_t n = 0;
	uint32_t i;

	for (i = 0; i < q->len; i++) {
		struct due_ent *e = &q->ents[q->heap[i]];

		if ((mask == UINT32_MAX || (e->tag & mask) != 0) &&
		    e->due > now_ms) {
			e->due = now_ms;
			n++;
		}
	}
	if (n > 0) /* rebuild: Floyd's bottom-up heapify, O(n) */
		for (i = q->len / 2; i-- > 0;)
			due_down(q, i);
	return n;
}

void
due_queue_foreach(const struct due_queue *q,
    void (*cb)(const char *qid, int64_t due_ms, void *arg), void *arg)
{
	uint32_t i;

	for (i = 0; i < q->len; i++)
		cb(q->ents[q->heap[i]].qid, q->ents[q->heap[i]].due, arg);
}
