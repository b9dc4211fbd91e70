/* auth.c - password checks on a worker thread, with a cache of successes
 * (auth.h).  Jobs go to the worker through a mutex-protected list; results
 * come back through a pipe the loop watches.  Passwords are wiped from
 * memory as soon as they are checked. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"
#include "passwd.h"

#define AUTH_CACHE_SIZE 1024
#define AUTH_CACHE_TTL  3600

struct auth_job {
	struct auth_job *next;
	uint64_t cookie;
	bool ok;
	uint8_t mac[32];
	char *pass;
	char hash[PASSWD_HASH_MAX];
	bool has_hash;
};

struct auth_cache_entry {
	uint8_t mac[32];
	int64_t expire_at;
};

struct auth {
	struct event_base *base;
	auth_cb cb;
	void *cb_arg;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct auth_job *todo, *done;
	size_t pending;
	int pipe[2];
	struct event *ev;
	uint8_t key[32];
	char dummy[PASSWD_HASH_MAX];
	struct auth_cache_entry cache[AUTH_CACHE_SIZE];
	size_t cache_next;
};

static void
auth_mac(const struct auth *a, const char *user, const char *pass,
    const char *hash, uint8_t mac[32])
{
	/* The NULs keep ("ab","c") and ("a","bc") apart. */
	unsigned int len = 32;
	size_t ul = strlen(user) + 1, pl = strlen(pass) + 1,
	       hl = strlen(hash) + 1;
	unsigned char *buf = malloc(ul + pl + hl);

	if (buf == NULL) {
		memset(mac, 0, 32);
		return;
	}
	memcpy(buf, user, ul);
	memcpy(buf + ul, pass, pl);
	memcpy(buf + ul + pl, hash, hl);
	HMAC(
	    EVP_sha256(), a->key, sizeof(a->key), buf, ul + pl + hl, mac, &len);
	OPENSSL_cleanse(buf, ul + pl + hl);
	free(buf);
}

static void *
auth_worker(void *arg)
{
	struct auth *a = arg;
	struct auth_job *j, **pp;
	char c = 1;

	pthread_setname_np(pthread_self(), "auth-check");
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->todo == NULL && !a->stop)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		j = a->todo;
		a->todo = j->next;
		pthread_mutex_unlock(&a->mu);

		j->ok =
		    passwd_verify(j->pass, j->has_hash ? j->hash : a->dummy) &&
		    j->has_hash;
		OPENSSL_cleanse(j->pass, strlen(j->pass));
		free(j->pass);
		j->pass = NULL;

		pthread_mutex_lock(&a->mu);
		j->next = NULL;
		for (pp = &a->done; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = j;
		while (write(a->pipe[1], &c, 1) == -1 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static void
auth_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct auth *a = arg;
	struct auth_job *list, *j;
	char buf[64];
	int64_t now = (int64_t)time(NULL);

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&a->mu);
	list = a->done;
	a->done = NULL;
	pthread_mutex_unlock(&a->mu);
	while ((j = list) != NULL) {
		list = j->next;
		if (j->ok) {
			memcpy(a->cache[a->cache_next].mac, j->mac, 32);
			a->cache[a->cache_next].expire_at =
			    now + AUTH_CACHE_TTL;
			a->cache_next = (a->cache_next + 1) % AUTH_CACHE_SIZE;
		}
		a->pending--;
		a->cb(a->cb_arg, j->cookie, j->ok);
		free(j);
	}
}

struct auth *
auth_new(
    struct event_base *base, auth_cb cb, void *arg, char *err, size_t errlen)
{
	struct auth *a;
	int i;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->base = base;
	a->cb = cb;
	a->cb_arg = arg;
	a->pipe[0] = a->pipe[1] = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (RAND_bytes(a->key, sizeof(a->key)) != 1) {
		snprintf(err, errlen, "auth: no random bytes");
		goto fail;
	}
	/* unknown users are checked against this so they take as long */
	if (passwd_hash("sluice-no-such-user", a->dummy, sizeof(a->dummy)) ==
	    -1) {
		snprintf(err, errlen, "auth: cannot hash");
		goto fail;
	}
	if (pipe(a->pipe) == -1) {
		snprintf(err, errlen, "auth: pipe: %s", strerror(errno));
		goto fail;
	}
	for (i = 0; i < 2; i++)
		fcntl(a->pipe[i], F_SETFL, O_NONBLOCK);
	fcntl(a->pipe[0], F_SETFD, FD_CLOEXEC);
	fcntl(a->pipe[1], F_SETFD, FD_CLOEXEC);
	a->ev =
	    event_new(base, a->pipe[0], EV_READ | EV_PERSIST, auth_on_done, a);
	if (a->ev == NULL || event_add(a->ev, NULL) == -1) {
		snprintf(err, errlen, "auth: event");
		goto fail;
	}
	if (pthread_create(&a->thread, NULL, auth_worker, a) != 0) {
		snprintf(err, errlen, "auth: thread");
		goto fail;
	}
	a->started = true;
	return a;
fail:
	auth_free(a);
	return NULL;
}

static void
job_free_list(struct auth_job *j)
{
	struct auth_job *next;

	for (; j != NULL; j = next) {
		next = j->next;
		if (j->pass != NULL) {
			OPENSSL_cleanse(j->pass, strlen(j->pass));
			free(j->pass);
		}
		free(j);
	}
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	job_free_list(a->todo);
	job_free_list(a->done);
	if (a->ev != NULL)
		event_free(a->ev);
	if (a->pipe[0] != -1)
		close(a->pipe[0]);
	if (a->pipe[1] != -1)
		close(a->pipe[1]);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	OPENSSL_cleanse(a->key, sizeof(a->key));
	free(a);
}

enum auth_start
auth_verify(struct auth *a, const char *user, const char *pass,
    const char *hash, uint64_t cookie)
{
	struct auth_job *j, **pp;
	int64_t now = (int64_t)time(NULL);
	size_t i;

	if (hash != NULL && strlen(hash) >= PASSWD_HASH_MAX)
		hash = NULL;
	if (a->pending >= AUTH_QUEUE_MAX)
		return AUTH_BUSY;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return AUTH_BUSY;
	if (hash != NULL) {
		auth_mac(a, user, pass, hash, j->mac);
		for (i = 0; i < AUTH_CACHE_SIZE; i++)
			if (a->cache[i].expire_at > now &&
			    CRYPTO_memcmp(a->cache[i].mac, j->mac, 32) == 0) {
				free(j);
				return AUTH_CACHED_OK;
			}
		strcpy(j->hash, hash);
		j->has_hash = true;
	}
	if ((j->pass = strdup(pass)) == NULL) {
		free(j);
		return AUTH_BUSY;
	}
	j->cookie = cookie;
	pthread_mutex_lock(&a->mu);
	for (pp = &a->todo; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = j;
	a->pending++;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return AUTH_QUEUED;
}
