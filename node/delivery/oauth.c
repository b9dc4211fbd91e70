/* oauth.c - the token cache and its HTTPS worker.  Loop side: hops, their
 * tokens and waiters, JWT signing and response parsing (oauth_jwt.c).
 * Worker side: one thread that POSTs queued requests with libcurl (one
 * easy handle, so the TLS connection to an endpoint is reused) and hands
 * each finished one back through a pipe.  Only the job queues are shared,
 * under one mutex. */
#include "oauth.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "oauth_conf.h"
#include "oauth_jwt.h"

#define OAUTH_BODY_MAX  65536 /* a token response is a few KB */
#define OAUTH_TIMEOUT_S 20    /* whole request */
#define OAUTH_CONNECT_S 10
#define OAUTH_RETRY_MS  2000 /* background refresh after a failure */
#define OAUTH_ERR       256

struct oauth_wait {
	TAILQ_ENTRY(oauth_wait) entry;
	struct oauth_hop *hop;
	oauth_token_cb *cb;
	void *arg;
};
TAILQ_HEAD(oauth_waits, oauth_wait);

struct oauth_hop {
	TAILQ_ENTRY(oauth_hop) entry;
	struct oauth *o;
	/* settings (the identity of the cache entry) */
	char *name, *kind, *url, *client_id, *scope, *user, *secret;
	bool cert;
	/* the key, loaded at the first request */
	EVP_PKEY *key;
	char x5t[64], x5t256[64];
	/* the token */
	char *token;
	int64_t got_ms, life_ms;
	bool fetching;
	int64_t failed_ms; /* last failed request, 0: none */
	char failed_why[OAUTH_ERR];
	struct oauth_waits waits;
};
TAILQ_HEAD(oauth_hops, oauth_hop);

struct oauth_job {
	TAILQ_ENTRY(oauth_job) entry;
	struct oauth_hop *hop; /* loop side only */
	char *url, *body;      /* request */
	long status;           /* result */
	char *resp;
	size_t resp_len;
	bool too_big;
	bool replay; /* no request: answers waiters with err */
	char err[OAUTH_ERR];
	int64_t started_ms;
};
TAILQ_HEAD(oauth_jobs, oauth_job);

struct oauth {
	struct event_base *base;
	struct event *ev;
	int pipe[2];
	char *ca_file;
	struct oauth_hops hops;
	pthread_t thread;
	pthread_mutex_t mx;
	pthread_cond_t cv;
	struct oauth_jobs todo, done; /* under mx */
	bool stop;                    /* under mx */
};

static int64_t
oauth_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
oauth_job_free(struct oauth_job *j)
{
	if (j == NULL)
		return;
	if (j->body != NULL)
		explicit_bzero(j->body, strlen(j->body));
	if (j->resp != NULL)
		explicit_bzero(j->resp, j->resp_len);
	free(j->url);
	free(j->body);
	free(j->resp);
	free(j);
}

/* ------------------------------------------------------------ worker */

static size_t
oauth_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct oauth_job *j = arg;
	size_t len = size * n;
	char *r;

	if (j->resp_len + len > OAUTH_BODY_MAX) {
		j->too_big = true;
		return 0;
	}
	if ((r = realloc(j->resp, j->resp_len + len + 1)) == NULL)
		return 0;
	j->resp = r;
	memcpy(j->resp + j->resp_len, p, len);
	j->resp_len += len;
	j->resp[j->resp_len] = '\0';
	return len;
}

/* A request in flight is abandoned when the node stops. */
static int
oauth_progress_cb(
    void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct oauth *o = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return __atomic_load_n(&o->stop, __ATOMIC_RELAXED) ? 1 : 0;
}

static void
oauth_perform(struct oauth *o, CURL *h, struct oauth_job *j)
{
	struct curl_slist *hdr = NULL;
	char cerr[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, j->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)OAUTH_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)OAUTH_CONNECT_S);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, j->body);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, oauth_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, oauth_progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, o);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	if (o->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	rc = curl_easy_perform(h);
	curl_slist_free_all(hdr);
	if (rc != CURLE_OK)
		snprintf(j->err, sizeof(j->err), "%s",
		    j->too_big ? "response larger than 64 KB"
		    : cerr[0]  ? cerr
		               : curl_easy_strerror(rc));
	else
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &j->status);
}

static void *
oauth_worker(void *arg)
{
	struct oauth *o = arg;
	struct oauth_job *j;
	CURL *h = curl_easy_init();
	char one = 1;

	pthread_setname_np(pthread_self(), "oauth-token");
	pthread_mutex_lock(&o->mx);
	for (;;) {
		while (!o->stop && TAILQ_EMPTY(&o->todo))
			pthread_cond_wait(&o->cv, &o->mx);
		if (o->stop)
			break;
		j = TAILQ_FIRST(&o->todo);
		TAILQ_REMOVE(&o->todo, j, entry);
		pthread_mutex_unlock(&o->mx);
		if (h == NULL)
			snprintf(
			    j->err, sizeof(j->err), "curl_easy_init failed");
		else
			oauth_perform(o, h, j);
		pthread_mutex_lock(&o->mx);
		TAILQ_INSERT_TAIL(&o->done, j, entry);
		/* A full pipe already has a wake-up in it. */
		if (write(o->pipe[1], &one, 1) == -1 && errno != EAGAIN)
			log_warn("oauth: wake-up pipe");
	}
	pthread_mutex_unlock(&o->mx);
	if (h != NULL)
		curl_easy_cleanup(h);
	return NULL;
}

/* -------------------------------------------------------------- loop */

static void
oauth_hop_answer(struct oauth_hop *hp, const char *token, const char *err)
{
	struct oauth_waits w = TAILQ_HEAD_INITIALIZER(w);
	struct oauth_wait *x;
	char *copy = token ? strdup(token) : NULL;

	/* Callbacks may cancel other waiters or wait again: detach first. */
	TAILQ_CONCAT(&w, &hp->waits, entry);
	while ((x = TAILQ_FIRST(&w)) != NULL) {
		TAILQ_REMOVE(&w, x, entry);
		x->cb(x->arg, copy,
		    copy != NULL ? NULL
		    : err        ? err
		                 : "out of memory");
		free(x);
	}
	if (copy != NULL) {
		explicit_bzero(copy, strlen(copy));
		free(copy);
	}
}

static void
oauth_job_done(struct oauth_job *j)
{
	struct oauth_hop *hp = j->hop;
	char err[OAUTH_ERR + 64], *token = NULL;
	int64_t expires_in = 0, now = oauth_now_ms();

	hp->fetching = false;
	if (j->err[0] == '\0' &&
	    oauth_parse_response(j->status, j->resp ? j->resp : "", j->resp_len,
	        &token, &expires_in, j->err, sizeof(j->err)) == 0) {
		if (hp->token != NULL) {
			explicit_bzero(hp->token, strlen(hp->token));
			free(hp->token);
		}
		hp->token = token;
		hp->got_ms = j->started_ms;
		hp->life_ms = expires_in * 1000;
		hp->failed_ms = 0;
		log_info("oauth: hop=%s token from %s, expires in %" PRId64
		         "s (%" PRId64 "ms)",
		    hp->name, hp->url, expires_in, now - j->started_ms);
		oauth_hop_answer(hp, hp->token, NULL);
		return;
	}
	snprintf(err, sizeof(err), "XOAUTH2 token request to %s failed: %s",
	    hp->url, j->err);
	if (!j->replay) {
		hp->failed_ms = now;
		snprintf(hp->failed_why, sizeof(hp->failed_why), "%s", j->err);
		log_warnx("oauth: hop=%s %s (%" PRId64 "ms)", hp->name, err,
		    now - j->started_ms);
	}
	oauth_hop_answer(hp, NULL, err);
}

static void
oauth_on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct oauth *o = arg;
	struct oauth_jobs done = TAILQ_HEAD_INITIALIZER(done);
	struct oauth_job *j;
	char buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&o->mx);
	TAILQ_CONCAT(&done, &o->done, entry);
	pthread_mutex_unlock(&o->mx);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		oauth_job_done(j);
		oauth_job_free(j);
	}
}

struct oauth *
oauth_new(
    struct event_base *base, const char *ca_file, char *err, size_t errlen)
{
	struct oauth *o = calloc(1, sizeof(*o));
	static bool curl_ready;

	if (o == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->base = base;
	o->pipe[0] = o->pipe[1] = -1;
	TAILQ_INIT(&o->hops);
	TAILQ_INIT(&o->todo);
	TAILQ_INIT(&o->done);
	pthread_mutex_init(&o->mx, NULL);
	pthread_cond_init(&o->cv, NULL);
	if (!curl_ready) {
		/* Before any thread: curl_global_init is not thread-safe. */
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "curl_global_init failed");
			goto fail;
		}
		curl_ready = true;
	}
	if (ca_file != NULL && (o->ca_file = strdup(ca_file)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (pipe2(o->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if ((o->ev = event_new(base, o->pipe[0], EV_READ | EV_PERSIST,
	         oauth_on_pipe, o)) == NULL ||
	    event_add(o->ev, NULL) == -1) {
		snprintf(err, errlen, "event_new failed");
		goto fail;
	}
	if ((errno = pthread_create(&o->thread, NULL, oauth_worker, o)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(errno));
		goto fail;
	}
	return o;
fail:
	if (o->ev != NULL)
		event_free(o->ev);
	if (o->pipe[0] != -1) {
		close(o->pipe[0]);
		close(o->pipe[1]);
	}
	pthread_mutex_destroy(&o->mx);
	pthread_cond_destroy(&o->cv);
	free(o->ca_file);
	free(o);
	return NULL;
}

static void
oauth_hop_free(struct oauth_hop *hp)
{
	struct oauth_wait *x;

	while ((x = TAILQ_FIRST(&hp->waits)) != NULL) {
		TAILQ_REMOVE(&hp->waits, x, entry);
		free(x);
	}
	if (hp->secret != NULL)
		explicit_bzero(hp->secret, strlen(hp->secret));
	if (hp->token != NULL)
		explicit_bzero(hp->token, strlen(hp->token));
	EVP_PKEY_free(hp->key);
	free(hp->name);
	free(hp->kind);
	free(hp->url);
	free(hp->client_id);
	free(hp->scope);
	free(hp->user);
	free(hp->secret);
	free(hp->token);
	free(hp);
}

void
oauth_free(struct oauth *o)
{
	struct oauth_hop *hp;
	struct oauth_job *j;

	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mx);
	__atomic_store_n(&o->stop, true, __ATOMIC_RELAXED);
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mx);
	/* A request in flight is aborted by its progress callback. */
	pthread_join(o->thread, NULL);
	while ((j = TAILQ_FIRST(&o->todo)) != NULL) {
		TAILQ_REMOVE(&o->todo, j, entry);
		oauth_job_free(j);
	}
	while ((j = TAILQ_FIRST(&o->done)) != NULL) {
		TAILQ_REMOVE(&o->done, j, entry);
		oauth_job_free(j);
	}
	while ((hp = TAILQ_FIRST(&o->hops)) != NULL) {
		TAILQ_REMOVE(&o->hops, hp, entry);
		oauth_hop_free(hp);
	}
	event_free(o->ev);
	close(o->pipe[0]);
	close(o->pipe[1]);
	pthread_mutex_destroy(&o->mx);
	pthread_cond_destroy(&o->cv);
	free(o->ca_file);
	free(o);
}

static bool
oauth_same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

struct oauth_hop *
oauth_hop_get(struct oauth *o, const Sluice__Hop *h)
{
	struct oauth_hop *hp;
	char url[1024];

	if (o == NULL || h->oauth2[0] == '\0')
		return NULL;
	oauth_conf_token_url(h, url, sizeof(url));
	TAILQ_FOREACH(hp, &o->hops, entry)
	if (oauth_same(hp->name, h->name) && oauth_same(hp->kind, h->oauth2) &&
	    oauth_same(hp->url, url) &&
	    oauth_same(hp->client_id, h->oauth2_client_id) &&
	    oauth_same(hp->scope, oauth_conf_scope(h)) &&
	    oauth_same(hp->user, h->auth_user) &&
	    oauth_same(hp->secret, h->secret) && hp->cert == h->oauth2_cert)
		return hp;
	if ((hp = calloc(1, sizeof(*hp))) == NULL)
		return NULL;
	hp->o = o;
	TAILQ_INIT(&hp->waits);
	hp->name = strdup(h->name);
	hp->kind = strdup(h->oauth2);
	hp->url = strdup(url);
	hp->client_id = strdup(h->oauth2_client_id);
	hp->scope = strdup(oauth_conf_scope(h));
	hp->user = strdup(h->auth_user);
	hp->secret = strdup(h->secret);
	hp->cert = h->oauth2_cert;
	if (hp->name == NULL || hp->kind == NULL || hp->url == NULL ||
	    hp->client_id == NULL || hp->scope == NULL || hp->user == NULL ||
	    hp->secret == NULL) {
		oauth_hop_free(hp);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&o->hops, hp, entry);
	return hp;
}

const char *
oauth_hop_user(const struct oauth_hop *hp)
{
	return hp->user;
}

/* The request body for hp: the client-credentials grant with a client
 * secret or a certificate assertion (Microsoft), or the JWT-bearer
 * grant (Google).  NULL with err. */
static char *
oauth_request_body(struct oauth_hop *hp, char *err, size_t errlen)
{
	const char *kv[10];
	char *jwt = NULL, *body = NULL, jti[33];
	unsigned char rnd[16];
	int64_t now_s = (int64_t)time(NULL);
	size_t n = 0, i;
	bool google = strcmp(hp->kind, "google") == 0;

	if ((google || hp->cert) && hp->key == NULL &&
	    oauth_load_key(hp->secret, hp->cert, &hp->key, hp->x5t,
	        sizeof(hp->x5t), hp->x5t256, sizeof(hp->x5t256), err,
	        errlen) == -1)
		return NULL;
	if (google) {
		if ((jwt = oauth_jwt_google(hp->client_id, hp->user, hp->scope,
		         hp->url, now_s, hp->key, err, errlen)) == NULL)
			return NULL;
		kv[n++] = "grant_type";
		kv[n++] = "urn:ietf:params:oauth:grant-type:jwt-bearer";
		kv[n++] = "assertion";
		kv[n++] = jwt;
	} else {
		kv[n++] = "grant_type";
		kv[n++] = "client_credentials";
		kv[n++] = "client_id";
		kv[n++] = hp->client_id;
		kv[n++] = "scope";
		kv[n++] = hp->scope;
		if (hp->cert) {
			if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
				snprintf(err, errlen, "no random bytes");
				return NULL;
			}
			for (i = 0; i < sizeof(rnd); i++)
				snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
			if ((jwt = oauth_jwt_m365(hp->client_id, hp->url,
			         hp->x5t, hp->x5t256, jti, now_s, hp->key, err,
			         errlen)) == NULL)
				return NULL;
			kv[n++] = "client_assertion_type";
			kv[n++] = "urn:ietf:params:oauth:client-assertion-type:"
			          "jwt-bearer";
			kv[n++] = "client_assertion";
			kv[n++] = jwt;
		} else {
			kv[n++] = "client_secret";
			kv[n++] = hp->secret;
		}
	}
	if ((body = oauth_form(kv, n / 2)) == NULL)
		snprintf(err, errlen, "out of memory");
	free(jwt);
	return body;
}

/* Queues a request for hp unless one is in flight.  -1 with err when it
 * cannot even be made. */
static int
oauth_fetch(struct oauth_hop *hp, char *err, size_t errlen)
{
	struct oauth *o = hp->o;
	struct oauth_job *j;

	if (hp->fetching)
		return 0;
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->url = strdup(hp->url)) == NULL) {
		snprintf(err, errlen, "out of memory");
		oauth_job_free(j);
		return -1;
	}
	if ((j->body = oauth_request_body(hp, err, errlen)) == NULL) {
		oauth_job_free(j);
		return -1;
	}
	j->hop = hp;
	j->started_ms = oauth_now_ms();
	hp->fetching = true;
	pthread_mutex_lock(&o->mx);
	TAILQ_INSERT_TAIL(&o->todo, j, entry);
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mx);
	return 0;
}

/* Fails hp's waiters from the loop (never inside the caller's call):
 * a request that could not be made, or replay of the last failure. */
static void
oauth_answer_later(struct oauth_hop *hp, const char *err, bool replay)
{
	struct oauth_job *j = calloc(1, sizeof(*j));
	char one = 1;

	if (j == NULL)
		fatalx("oauth: out of memory");
	j->hop = hp;
	j->replay = replay;
	j->started_ms = oauth_now_ms();
	snprintf(j->err, sizeof(j->err), "%s", err);
	hp->fetching = true;
	pthread_mutex_lock(&hp->o->mx);
	TAILQ_INSERT_TAIL(&hp->o->done, j, entry);
	if (write(hp->o->pipe[1], &one, 1) == -1 && errno != EAGAIN)
		log_warn("oauth: wake-up pipe");
	pthread_mutex_unlock(&hp->o->mx);
}

const char *
oauth_token(struct oauth_hop *hp, oauth_token_cb *cb, void *arg,
    struct oauth_wait **wait)
{
	enum oauth_freshness f = OAUTH_EXPIRED;
	char err[OAUTH_ERR];
	struct oauth_wait *x;
	int64_t now = oauth_now_ms();

	*wait = NULL;
	if (hp->token != NULL)
		f = oauth_freshness(hp->got_ms, hp->life_ms, now);
	if (f == OAUTH_REFRESH && !hp->fetching &&
	    now - hp->failed_ms >= OAUTH_RETRY_MS &&
	    oauth_fetch(hp, err, sizeof(err)) == -1)
		log_warnx("oauth: hop=%s refresh: %s", hp->name, err);
	if (f != OAUTH_EXPIRED)
		return hp->token;
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->hop = hp;
	x->cb = cb;
	x->arg = arg;
	TAILQ_INSERT_TAIL(&hp->waits, x, entry);
	*wait = x;
	/* The request that just failed (typically this session's own
	 * connect-time prefetch) answers it: one request per session, at
	 * most one every OAUTH_RETRY_MS, while the endpoint is down. */
	if (!hp->fetching && hp->failed_ms != 0 &&
	    now - hp->failed_ms < OAUTH_RETRY_MS)
		oauth_answer_later(hp, hp->failed_why, true);
	else if (oauth_fetch(hp, err, sizeof(err)) == -1)
		oauth_answer_later(hp, err, false);
	return NULL;
}

void
oauth_cancel(struct oauth_wait *x)
{
	if (x == NULL)
		return;
	TAILQ_REMOVE(&x->hop->waits, x, entry);
	free(x);
}

void
oauth_discard(struct oauth_hop *hp, const char *token)
{
	if (hp->token == NULL || token == NULL || strcmp(hp->token, token) != 0)
		return;
	log_info("oauth: hop=%s token refused by the server, fetching a new "
	         "one",
	    hp->name);
	explicit_bzero(hp->token, strlen(hp->token));
	free(hp->token);
	hp->token = NULL;
}

void
oauth_prefetch(struct oauth_hop *hp)
{
	char err[OAUTH_ERR];
	int64_t now = oauth_now_ms();

	if (hp->fetching || now - hp->failed_ms < OAUTH_RETRY_MS ||
	    (hp->token != NULL &&
	        oauth_freshness(hp->got_ms, hp->life_ms, now) == OAUTH_FRESH))
		return;
	if (oauth_fetch(hp, err, sizeof(err)) == -1)
		log_warnx("oauth: hop=%s %s", hp->name, err);
}
