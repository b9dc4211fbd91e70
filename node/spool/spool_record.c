/* spool_record.c - the spool's on-disk encoding (docs/spool.md):
 * little-endian integers (CRC32C is lib/crc32c.c), segment headers, envelope
 * records, queue ids. Pure: no I/O, no state; malformed input is a NULL/-1
 * return. */
#include "spool_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
spool_put16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

void
spool_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

void
spool_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

uint16_t
spool_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t
spool_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint64_t
spool_get64(const uint8_t *p)
{
	return (uint64_t)spool_get32(p) | (uint64_t)spool_get32(p + 4) << 32;
}

/* Segment header: magic[8] version u32 hdr_len u32 seq u64 reserved u32
 * crc u32 (CRC32C of the first 28 octets). */
void
spool_seg_hdr_encode(uint8_t h[SPOOL_SEG_HDR], uint64_t seq)
{
	memset(h, 0, SPOOL_SEG_HDR);
	memcpy(h, SPOOL_SEG_MAGIC, 8);
	spool_put32(h + 8, SPOOL_VERSION);
	spool_put32(h + 12, SPOOL_SEG_HDR);
	spool_put64(h + 16, seq);
	spool_put32(h + 28, crc32c(0, h, 28));
}

int
spool_seg_hdr_check(const uint8_t h[SPOOL_SEG_HDR], uint64_t seq)
{
	uint32_t version;

	if (memcmp(h, SPOOL_SEG_MAGIC, 8) != 0 ||
	    spool_get32(h + 28) != crc32c(0, h, 28))
		return -1;
	version = spool_get32(h + 8);
	if ((version != 1 && version != SPOOL_VERSION) ||
	    spool_get32(h + 12) != SPOOL_SEG_HDR || spool_get64(h + 16) != seq)
		return -1;
	return (int)version;
}

/* Version 2: the CRC32C of "LQRC" and the seq, so a record is valid in
 * one segment only.  Version 1 records start from 0. */
uint32_t
spool_rec_seed(uint64_t seq, int version)
{
	uint8_t b[12];

	if (version < 2)
		return 0;
	spool_put32(b, SPOOL_REC_MAGIC);
	spool_put64(b + 4, seq);
	return crc32c(0, b, sizeof(b));
}

/* MSG tail: committed_at i64, received_at i64, flags u32 (1 smtputf8,
 * 2 8bitmime declared, 4 8-bit body, 8 8-bit headers), nrcpts u32, then
 * sender, client, helo, auth_user, message_id and each recipient as
 * {len u32, octets}.
 * Flag 16 (SPOOL_ENV_F_DKIM): one more string follows the recipients,
 * the DKIM-Signature fields sent before the data.
 * Flag 32 (SPOOL_ENV_F_LISTENER): one more string after that, the name of
 * the listener the message came in on.
 * Flag 64 (SPOOL_ENV_F_HOLD): the message is held from its commit (the
 * AUTH user's hold flag); a later state record (release) overrides it.
 * Flag 128 (SPOOL_ENV_F_ORIGIN): then one more string, the origin of a
 * shadow copy ("NODE QUEUEID", docs/redundancy.md; shadow spools only).
 * Flag 256 (SPOOL_ENV_F_DKIM7): no string; the DKIM signature covers
 * the 7-bit form of the 8-bit data (docs/dkim.md).
 * Records without these flags (older nodes) read as before. */
#define SPOOL_ENV_F_DKIM     16U
#define SPOOL_ENV_F_LISTENER 32U
#define SPOOL_ENV_F_HOLD     64U
#define SPOOL_ENV_F_ORIGIN   128U
#define SPOOL_ENV_F_DKIM7    256U
static size_t
str_len(const char *s)
{
	return s == NULL ? 0 : strlen(s);
}

static uint8_t *
put_str(uint8_t *p, const char *s)
{
	size_t n = str_len(s);

	spool_put32(p, (uint32_t)n);
	if (n > 0)
		memcpy(p + 4, s, n);
	return p + 4 + n;
}

uint8_t *
spool_env_encode(
    const struct spool_envelope *env, int64_t committed_at, size_t *lenp)
{
	const char *fixed[5] = {env->sender, env->client, env->helo,
	    env->auth_user, env->message_id};
	size_t len = 24;
	uint8_t *buf, *p;

	if (env->nrcpts > UINT32_MAX / 4)
		return NULL;
	for (int i = 0; i < 5; i++)
		len += 4 + str_len(fixed[i]);
	for (size_t i = 0; i < env->nrcpts; i++)
		len += 4 + str_len(env->rcpts[i]);
	if (str_len(env->dkim) > 0)
		len += 4 + str_len(env->dkim);
	if (str_len(env->listener) > 0)
		len += 4 + str_len(env->listener);
	if (str_len(env->origin) > 0)
		len += 4 + str_len(env->origin);
	if ((buf = malloc(len)) == NULL)
		return NULL;
	spool_put64(buf, (uint64_t)committed_at);
	spool_put64(buf + 8, (uint64_t)env->received_at);
	spool_put32(
	    buf + 16, (env->smtputf8 ? 1U : 0) | (env->eightbit ? 2U : 0) |
	                  (env->body8bit ? 4U : 0) | (env->hdr8bit ? 8U : 0));
	if (str_len(env->dkim) > 0)
		spool_put32(buf + 16, spool_get32(buf + 16) | SPOOL_ENV_F_DKIM);
	if (str_len(env->listener) > 0)
		spool_put32(
		    buf + 16, spool_get32(buf + 16) | SPOOL_ENV_F_LISTENER);
	if (env->hold)
		spool_put32(buf + 16, spool_get32(buf + 16) | SPOOL_ENV_F_HOLD);
	if (env->dkim7 && str_len(env->dkim) > 0)
		spool_put32(
		    buf + 16, spool_get32(buf + 16) | SPOOL_ENV_F_DKIM7);
	if (str_len(env->origin) > 0)
		spool_put32(
		    buf + 16, spool_get32(buf + 16) | SPOOL_ENV_F_ORIGIN);
	spool_put32(buf + 20, (uint32_t)env->nrcpts);
	p = buf + 24;
	for (int i = 0; i < 5; i++)
		p = put_str(p, fixed[i]);
	for (size_t i = 0; i < env->nrcpts; i++)
		p = put_str(p, env->rcpts[i]);
	if (str_len(env->dkim) > 0)
		p = put_str(p, env->dkim);
	if (str_len(env->listener) > 0)
		p = put_str(p, env->listener);
	if (str_len(env->origin) > 0)
		p = put_str(p, env->origin);
	*lenp = len;
	return buf;
}

/* The tail of a MSG record (above) into a fresh entry; NULL if it is
 * malformed. */
struct spool_ent *
spool_ent_decode_tail(
    uint64_t id, uint64_t dlen, const uint8_t *p, size_t len, uint16_t flags)
{
	struct spool_ent *e;
	const uint8_t *end = p + len;
	const char **fixed[5];
	size_t has_dkim, has_listener, has_origin;
	uint32_t n;
	char *s;

	if (len < 24)
		return NULL;
	n = spool_get32(p + 20);
	if (n > (len - 24) / 4)
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->id = id;
	spool_qid_format(e->id, e->qid);
	e->data_len = dlen;
	e->committed_at = (int64_t)spool_get64(p);
	e->env.received_at = (int64_t)spool_get64(p + 8);
	e->env.smtputf8 = (spool_get32(p + 16) & 1) != 0;
	e->env.eightbit = (spool_get32(p + 16) & 2) != 0;
	e->env.body8bit = (spool_get32(p + 16) & 4) != 0;
	e->env.hdr8bit = (spool_get32(p + 16) & 8) != 0;
	e->env.nrcpts = n;
	/* Strings are copied NUL-terminated into one block no larger than
	 * the record. */
	e->env.hold = (spool_get32(p + 16) & SPOOL_ENV_F_HOLD) != 0;
	e->env.dkim7 = (spool_get32(p + 16) & SPOOL_ENV_F_DKIM7) != 0;
	if (e->env.hold)
		e->state = SPOOL_HELD;
	e->strings = malloc(len + 8 + n);
	e->rcpts = calloc((size_t)n + 1, sizeof(*e->rcpts));
	e->rcpt_status = calloc((size_t)n + 1, 1);
	if (e->strings == NULL || e->rcpts == NULL || e->rcpt_status == NULL)
		goto bad;
	s = e->strings;
	fixed[0] = &e->env.sender;
	fixed[1] = &e->env.client;
	fixed[2] = &e->env.helo;
	fixed[3] = &e->env.auth_user;
	fixed[4] = &e->env.message_id;
	has_dkim = (spool_get32(p + 16) & SPOOL_ENV_F_DKIM) != 0;
	has_listener = (spool_get32(p + 16) & SPOOL_ENV_F_LISTENER) != 0;
	has_origin = (spool_get32(p + 16) & SPOOL_ENV_F_ORIGIN) != 0;
	p += 24;
	for (size_t i = 0;
	     i < 5 + (size_t)n + has_dkim + has_listener + has_origin; i++) {
		uint32_t sl;
		if (end - p < 4)
			goto bad;
		sl = spool_get32(p);
		p += 4;
		if (sl > (size_t)(end - p))
			goto bad;
		memcpy(s, p, sl);
		s[sl] = '\0';
		if (i < 5)
			*fixed[i] = s;
		else if (i < 5 + (size_t)n)
			e->rcpts[i - 5] = s;
		else if (has_dkim && i == 5 + (size_t)n)
			e->env.dkim = s;
		else if (has_listener && i == 5 + (size_t)n + has_dkim)
			e->env.listener = s;
		else
			e->env.origin = s;
		s += sl + 1;
		p += sl;
	}
	e->env.rcpts = e->rcpts;
	e->npending = n;
	if (flags & SPOOL_MSG_F_STATE) {
		/* A compaction copy carries the queue state with it. */
		uint32_t st;
		if ((size_t)(end - p) != 12 + (size_t)n)
			goto bad;
		st = spool_get32(p);
		if (st > SPOOL_HELD)
			goto bad;
		e->state = (enum spool_state)st;
		e->next_attempt_at = (int64_t)spool_get64(p + 4);
		p += 12;
		for (uint32_t i = 0; i < n; i++) {
			if (p[i] > SPOOL_RCPT_BOUNCED)
				goto bad;
			e->rcpt_status[i] = p[i];
			if (p[i] != SPOOL_RCPT_PENDING)
				e->npending--;
		}
		p += n;
	}
	if (p != end)
		goto bad;
	return e;
bad:
	spool_ent_free(e);
	return NULL;
}

/* MSG payload: id u64, data_len u64, data, tail. */
struct spool_ent *
spool_ent_decode(const uint8_t *pl, size_t len, uint16_t flags)
{
	uint64_t dlen;

	if (len < 16)
		return NULL;
	dlen = spool_get64(pl + 8);
	if (dlen > len - 16)
		return NULL;
	return spool_ent_decode_tail(spool_get64(pl), dlen, pl + 16 + dlen,
	    len - 16 - (size_t)dlen, flags);
}

uint8_t *
spool_ent_encode_state(const struct spool_ent *e, size_t *lenp)
{
	size_t len, n = e->env.nrcpts;
	uint8_t *buf, *nb;

	if ((buf = spool_env_encode(&e->env, e->committed_at, &len)) == NULL)
		return NULL;
	if ((nb = realloc(buf, len + 12 + n)) == NULL) {
		free(buf);
		return NULL;
	}
	spool_put32(nb + len, (uint32_t)e->state);
	spool_put64(nb + len + 4, (uint64_t)e->next_attempt_at);
	memcpy(nb + len + 12, e->rcpt_status, n);
	*lenp = len + 12 + n;
	return nb;
}

void
spool_qid_format(uint64_t id, char out[SPOOL_QID_MAX])
{
	snprintf(out, SPOOL_QID_MAX, "%014" PRIX64, id);
}

int
spool_qid_parse(const char *s, uint64_t *id)
{
	uint64_t v = 0;
	size_t n = 0;

	if (s == NULL)
		return -1;
	for (; s[n] != '\0'; n++) {
		int d;
		if (s[n] >= '0' && s[n] <= '9')
			d = s[n] - '0';
		else if (s[n] >= 'A' && s[n] <= 'F')
			d = s[n] - 'A' + 10;
		else
			return -1;
		if (n >= 16)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	if (n == 0)
		return -1;
	*id = v;
	return 0;
}
