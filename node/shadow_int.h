/* shadow_int.h - what shadow.c (primary side, links to peers),
 * shadow_hold.c (holder side, shadow spool, promotion) and shadow_map.c
 * share.  Not for other modules: they use shadow.h. */
#ifndef SLUICE_SHADOW_INT_H
#define SLUICE_SHADOW_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proto.h"
#include "shadow.h"

struct bufferevent;
struct evbuffer;
struct event;
struct event_base;
struct evconnlistener;
struct spool;
struct ssl_ctx_st;

/* A frame is a 4-octet big-endian length and a protobuf message; the
 * largest is a ShadowCopy of SHADOW_DATA_MAX octets of data plus its
 * envelope. */
#define SHADOW_DATA_MAX  (64U * 1024 * 1024)
#define SHADOW_FRAME_MAX (SHADOW_DATA_MAX + 1024U * 1024)
#define SHADOW_LINKS_MAX 8     /* peers holding copies of ours at once */
#define SHADOW_TAKEN_MAX 65536 /* handoffs remembered (duplicates) */

/* ------------------------------------------------------------ maps */

/* String keys to a value, chained hash; keys are copied.  Loop thread. */
struct shadow_map_ent {
	struct shadow_map_ent *next;
	void *val;
	char key[];
};
struct shadow_map {
	struct shadow_map_ent **b;
	size_t nb, n;
};
int shadow_map_init(struct shadow_map *);
/* Frees the entries; free_val (may be NULL) is called on each value. */
void shadow_map_fini(struct shadow_map *, void (*free_val)(void *));
/* Inserts or replaces; returns the old value through *old (may be NULL).
 * -1 on memory. */
int shadow_map_put(struct shadow_map *, const char *key, void *val, void **old);
void *shadow_map_get(const struct shadow_map *, const char *key);
/* Removes key; its value or NULL. */
void *shadow_map_del(struct shadow_map *, const char *key);

/* ----------------------------------------------------------- frames */

/* Appends m as one frame to out.  -1 on memory. */
int shadow_frame_add(struct evbuffer *out, const ProtobufCMessage *m);
/* The next whole frame of in: 1 with p and len pointing into in (drain
 * 4 + *len after use), 0 when more octets are needed, -1 when the
 * announced length is over SHADOW_FRAME_MAX (a broken peer). */
int shadow_frame_peek(struct evbuffer *in, const uint8_t **p, size_t *len);

/* ---------------------------------------------------- primary side */

struct shadow_pending; /* a copy on its way (shadow.c) */
struct shadow_link;    /* a connection to a holder (shadow.c) */

/* ----------------------------------------------------- holder side */

struct shadow_conn;      /* a primary connected to us (shadow_hold.c) */
struct shadow_hold_wait; /* a copy being committed (shadow_hold.c) */

struct shadow {
	struct node *n;
	struct event_base *base;
	char address[256]; /* advertised, "" no listener */
	char name[128];
	struct ssl_ctx_st *srv_ctx, *cli_ctx; /* NULL: plain TCP */
	bool insecure;                        /* plain TCP off loopback */

	/* primary side (shadow.c) */
	struct shadow_link *links[SHADOW_LINKS_MAX];
	int cur;                  /* links[] of the current peer, -1 none */
	char peer[128];           /* its name, for logs */
	char static_peer[256];    /* config shadow_peer, "" none */
	struct shadow_map gated;  /* qid -> struct shadow_pending */
	struct shadow_map where;  /* qid -> link slot + 1 (uintptr_t) */
	struct event *ev_release; /* batches releases */
	char degraded[256];       /* why messages went unprotected, "" */

	/* holder side (shadow_hold.c) */
	struct spool *sp; /* <spool>/shadow */
	struct evconnlistener *lev;
	TAILQ_HEAD(, shadow_conn) conns;
	TAILQ_HEAD(, shadow_hold_wait) waits;
	uint32_t next_conn;
	struct shadow_map held; /* "NODE QID" -> shadow queue id (char *) */
	/* handoffs taken (drain --handoff): "NODE QID" -> our queue id, so
	 * one sent again (its ack was lost) is answered, not queued twice;
	 * the last SHADOW_TAKEN_MAX, oldest dropped first (taken_ring) */
	struct shadow_map taken;
	char **taken_ring;
	size_t taken_next;
	struct event *ev_promote;
	struct event *ev_expire; /* drops copies never released */
	char **lost; /* names whose shadows are promoted (loop copy) */
	size_t nlost;
	int promoting; /* copies into our queue in flight */

	/* counters, any thread */
	atomic_uint_fast64_t held_count, held_bytes;
	atomic_uint_fast64_t copied, unprotected, refused, promoted;
	atomic_uint_fast64_t pending_release;
};

/* shadow_hold.c */
int shadow_hold_open(
    struct shadow *, const char *listen, char *err, size_t errlen);
void shadow_hold_close(struct shadow *);
/* The posted list of lost nodes changed or a heartbeat came: promote. */
void shadow_hold_promote(struct shadow *, char *const *lost, size_t n);

#endif
