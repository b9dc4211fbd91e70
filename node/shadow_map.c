/* shadow_map.c - the string-keyed maps and the frame codec of the shadow
 * channel (shadow_int.h).  No state of its own, no I/O beyond evbuffers. */
#include "shadow_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define SHADOW_MAP_BUCKETS 16384

static size_t
shadow_map_hash(const char *k)
{
	size_t h = 5381;

	while (*k != '\0')
		h = h * 33 ^ (unsigned char)*k++;
	return h;
}

int
shadow_map_init(struct shadow_map *m)
{
	m->nb = SHADOW_MAP_BUCKETS;
	m->n = 0;
	m->b = calloc(m->nb, sizeof(*m->b));
	return m->b == NULL ? -1 : 0;
}

void
shadow_map_fini(struct shadow_map *m, void (*free_val)(void *))
{
	struct shadow_map_ent *e, *next;
	size_t i;

	if (m->b == NULL)
		return;
	for (i = 0; i < m->nb; i++)
		for (e = m->b[i]; e != NULL; e = next) {
			next = e->next;
			if (free_val != NULL)
				free_val(e->val);
			free(e);
		}
	free(m->b);
	m->b = NULL;
	m->n = 0;
}

int
shadow_map_put(struct shadow_map *m, const char *key, void *val, void **old)
{
	struct shadow_map_ent *e, **head = &m->b[shadow_map_hash(key) % m->nb];
	size_t len = strlen(key);

	if (old != NULL)
		*old = NULL;
	for (e = *head; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0) {
			if (old != NULL)
				*old = e->val;
			e->val = val;
			return 0;
		}
	if ((e = malloc(sizeof(*e) + len + 1)) == NULL)
		return -1;
	memcpy(e->key, key, len + 1);
	e->val = val;
	e->next = *head;
	*head = e;
	m->n++;
	return 0;
}

void *
shadow_map_get(const struct shadow_map *m, const char *key)
{
	struct shadow_map_ent *e;

	for (e = m->b[shadow_map_hash(key) % m->nb]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->val;
	return NULL;
}

void *
shadow_map_del(struct shadow_map *m, const char *key)
{
	struct shadow_map_ent *e, **pp = &m->b[shadow_map_hash(key) % m->nb];
	void *v;

	for (; (e = *pp) != NULL; pp = &e->next)
		if (strcmp(e->key, key) == 0) {
			*pp = e->next;
			v = e->val;
			free(e);
			m->n--;
			return v;
		}
	return NULL;
}

int
shadow_frame_add(struct evbuffer *out, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	struct evbuffer_iovec v;
	uint8_t *p;

	if (len > SHADOW_FRAME_MAX ||
	    evbuffer_reserve_space(out, (ev_ssize_t)(len + 4), &v, 1) < 1)
		return -1;
	p = v.iov_base;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	protobuf_c_message_pack(m, p + 4);
	v.iov_len = len + 4;
	return evbuffer_commit_space(out, &v, 1) == 0 ? 0 : -1;
}

int
shadow_frame_peek(struct evbuffer *in, const uint8_t **p, size_t *len)
{
	uint8_t h[4];
	size_t n;

	if (evbuffer_copyout(in, h, 4) < 4)
		return 0;
	n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
	if (n > SHADOW_FRAME_MAX)
		return -1;
	if (evbuffer_get_length(in) < 4 + n)
		return 0;
	if ((*p = evbuffer_pullup(in, (ev_ssize_t)(4 + n))) == NULL)
		return -1;
	*p += 4;
	*len = n;
	return 1;
}
