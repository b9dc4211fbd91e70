/* ratelimit.c - per-IP and per-user counters (ratelimit.h): a chained hash
 * table of small entries.  An entry lives while it has connections, a
 * current message window, a failure window or a block; otherwise the next
 * visit to its bucket frees it. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#define RL_BUCKETS 4096

struct rl_entry {
	struct rl_entry *next;
	unsigned conns;
	int64_t msg_window_at; /* start of the current minute */
	int64_t msgs;
	int64_t fail_window_at;
	int64_t fails;
	int64_t blocked_until;
	int64_t expire_at; /* reclaimable after this */
	char key[RATELIMIT_KEY_MAX];
};

struct ratelimit {
	struct rl_entry *buckets[RL_BUCKETS];
	size_t nkeys;
	int64_t now; /* last time seen, for reclaim */
};

static unsigned
rl_hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % RL_BUCKETS;
}

struct ratelimit *
ratelimit_new(void)
{
	return calloc(1, sizeof(struct ratelimit));
}

void
ratelimit_free(struct ratelimit *rl)
{
	struct rl_entry *e, *next;
	size_t i;

	if (rl == NULL)
		return;
	for (i = 0; i < RL_BUCKETS; i++)
		for (e = rl->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(rl);
}

static bool
rl_idle(const struct rl_entry *e, int64_t now)
{
	return e->conns == 0 && e->expire_at <= now;
}

/* Finds key, reclaiming idle neighbours; creates it when create is set
 * (NULL when out of room or memory: callers fail open for counters,
 * closed for connections). */
static struct rl_entry *
rl_get(struct ratelimit *rl, const char *key, bool create)
{
	struct rl_entry **pp, *e, *found = NULL;
	unsigned h = rl_hash(key);

	for (pp = &rl->buckets[h]; (e = *pp) != NULL;) {
		if (strcmp(e->key, key) == 0) {
			found = e;
			pp = &e->next;
		} else if (rl_idle(e, rl->now)) {
			*pp = e->next;
			free(e);
			rl->nkeys--;
		} else
			pp = &e->next;
	}
	if (found != NULL || !create)
		return found;
	if (rl->nkeys >= RATELIMIT_MAX_KEYS || strlen(key) >= sizeof(e->key))
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	strcpy(e->key, key);
	e->next = rl->buckets[h];
	rl->buckets[h] = e;
	rl->nkeys++;
	return e;
}

static void
rl_keep(struct rl_entry *e, int64_t until)
{
	if (until > e->expire_at)
		e->expire_at = until;
}

bool
ratelimit_conn_open(
    struct ratelimit *rl, const char *ip, int64_t max, int64_t now)
{
	struct rl_entry *e;

	rl->now = now;
	if ((e = rl_get(rl, ip, true)) == NULL)
		return false;
	if ((int64_t)e->conns >= max)
		return false;
	e->conns++;
	return true;
}

void
ratelimit_conn_close(struct ratelimit *rl, const char *ip)
{
	struct rl_entry *e;

	if ((e = rl_get(rl, ip, false)) != NULL && e->conns > 0)
		e->conns--;
}

unsigned
ratelimit_conns(struct ratelimit *rl, const char *ip)
{
	struct rl_entry *e = rl_get(rl, ip, false);

	return e != NULL ? e->conns : 0;
}

bool
ratelimit_msg_allowed(
    struct ratelimit *rl, const char *key, int64_t per_minute, int64_t now)
{
	struct rl_entry *e;

	rl->now = now;
	if (per_minute <= 0 || (e = rl_get(rl, key, false)) == NULL)
		return true;
	if (now - e->msg_window_at >= 60)
		return true;
	return e->msgs < per_minute;
}

void
ratelimit_msg_count(struct ratelimit *rl, const char *key, int64_t now)
{
	struct rl_entry *e;

	rl->now = now;
	if ((e = rl_get(rl, key, true)) == NULL)
		return;
	if (now - e->msg_window_at >= 60) {
		e->msg_window_at = now;
		e->msgs = 0;
	}
	e->msgs++;
	rl_keep(e, e->msg_window_at + 60);
}

bool
ratelimit_auth_blocked(
    struct ratelimit *rl, const char *ip, int64_t now, int64_t *until)
{
	struct rl_entry *e;

	rl->now = now;
	if ((e = rl_get(rl, ip, false)) == NULL || e->blocked_until <= now)
		return false;
	if (until != NULL)
		*until = e->blocked_until;
	return true;
}

bool
ratelimit_auth_failure(struct ratelimit *rl, const char *ip,
    int64_t max_failures, int64_t block_s, int64_t now)
{
	struct rl_entry *e;

	rl->now = now;
	if ((e = rl_get(rl, ip, true)) == NULL)
		return false;
	if (e->blocked_until > now)
		return false; /* already blocked */
	if (now - e->fail_window_at >= block_s) {
		e->fail_window_at = now;
		e->fails = 0;
	}
	e->fails++;
	rl_keep(e, e->fail_window_at + block_s);
	if (e->fails < max_failures)
		return false;
	e->blocked_until = now + block_s;
	e->fails = 0;
	rl_keep(e, e->blocked_until);
	return true;
}
