/* outbox.c - the event webhooks' worker threads (outbox.h).  Each loop:
 * claim a batch of the endpoint's oldest rows (a transaction holding them
 * locked), POST them signed, then delete them (2xx) or count a failure
 * and back off (anything else) - in that same transaction.  A crash or a
 * lost database between POST and commit re-sends the batch: delivery is
 * at least once, and every event carries its stable id for the receiver
 * to drop repeats.  Logs once when an endpoint starts failing and once
 * when it delivers again. */
#include "outbox.h"

#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "outbox_http.h"
#include "store.h"

#define OUTBOX_SECRET_MAX 1024
/* The URL's path for logs: its query may carry a token, never logged. */
#define OUTBOX_LOG_PATH(w) (int)strcspn((w)->ep.path, "?"), (w)->ep.path

struct outbox_worker {
	struct outbox_endpoint ep;
	const struct outbox_config *cf;
	unsigned char secret[OUTBOX_SECRET_MAX];
	size_t secretlen;
	struct outbox_http *http;
	struct store *store;
	volatile sig_atomic_t *stop;
	pthread_t thread;
	bool is_started;
	bool is_failing;   /* logged, until the next 2xx */
	unsigned int seed; /* rand_r, for backoff jitter */
	/* the batch being built */
	struct evbuffer *body;
	uint64_t *ids;
	size_t nids, nevents;
	bool is_oom;
};

struct outbox {
	struct outbox_config cf;
	struct outbox_worker *w;
	size_t n;
};

static int
outbox_secret(struct outbox_worker *w, char *err, size_t errlen)
{
	FILE *f;
	size_t len;

	if ((f = fopen(w->ep.secret_file, "r")) == NULL) {
		snprintf(err, errlen, "event_webhook %s: secret_file %s: %s",
		    w->ep.name, w->ep.secret_file, strerror(errno));
		return -1;
	}
	len = fread(w->secret, 1, sizeof(w->secret), f);
	fclose(f);
	while (len > 0 &&
	       (w->secret[len - 1] == '\n' || w->secret[len - 1] == '\r' ||
	           w->secret[len - 1] == ' '))
		len--;
	if (len == 0 || len == sizeof(w->secret)) {
		snprintf(err, errlen,
		    "event_webhook %s: secret_file %s: want 1..%d bytes "
		    "(e.g. openssl rand -hex 32)",
		    w->ep.name, w->ep.secret_file, OUTBOX_SECRET_MAX - 1);
		return -1;
	}
	w->secretlen = len;
	return 0;
}

struct outbox *
outbox_new(const struct outbox_endpoint *eps, size_t n,
    const struct outbox_config *cf, char *err, size_t errlen)
{
	struct outbox *o;
	size_t i;

	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (o->w = calloc(n + 1, sizeof(*o->w))) == NULL) {
		free(o);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->cf = *cf;
	o->n = n;
	for (i = 0; i < n; i++) {
		struct outbox_worker *w = &o->w[i];

		w->ep = eps[i];
		w->cf = &o->cf;
		w->seed = (unsigned int)(time(NULL) ^ getpid() ^ (i << 16));
		if (outbox_secret(w, err, errlen) == -1)
			goto fail;
		if ((w->http = outbox_http_new(w->ep.host, w->ep.port,
		         w->ep.ca_file, cf->timeout_s, err, errlen)) == NULL ||
		    (w->body = evbuffer_new()) == NULL ||
		    (w->ids = calloc((size_t)w->ep.batch, sizeof(*w->ids))) ==
		        NULL) {
			if (w->http != NULL)
				snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	return o;
fail:
	outbox_free(o);
	return NULL;
}

static void
outbox_sleep_ms(struct outbox_worker *w, int ms)
{
	struct timespec ts;

	for (; ms > 0 && !*w->stop; ms -= 100) {
		ts.tv_sec = 0;
		ts.tv_nsec = (ms < 100 ? ms : 100) * 1000000L;
		nanosleep(&ts, NULL);
	}
}

static void
outbox_on_row(void *arg, uint64_t outbox_id, uint64_t node_id, const char *node,
    const Sluice__Event *e)
{
	struct outbox_worker *w = arg;
	struct outbox_event oe;

	if (w->nids == (size_t)w->ep.batch)
		return; /* cannot happen: LIMIT batch */
	w->ids[w->nids++] = outbox_id;
	if (e == NULL)
		return; /* gone with its day partition: deleted unsent */
	oe.node_id = node_id;
	oe.node = node;
	oe.ev = e;
	outbox_format_add(w->body, w->ep.shape, &oe, w->nevents == 0);
	w->nevents++;
}

/* One batch: 1 when one was handled (look again at once), 0 when there
 * was nothing to do now, -1 when the store failed. */
static int
outbox_batch(struct outbox_worker *w)
{
	struct outbox_http_header hd[4];
	char ts[24], sig[OUTBOX_SIG_LEN], err[256], ua[64], msg[300];
	int64_t now, retry_ms;
	int rc, failures, status;
	size_t n;

	evbuffer_drain(w->body, evbuffer_get_length(w->body));
	w->nids = w->nevents = 0;
	outbox_format_begin(w->body, w->ep.shape, w->ep.name);
	rc = store_outbox_claim(
	    w->store, w->ep.name, w->ep.batch, &failures, outbox_on_row, w, &n);
	if (rc == STORE_NOT_FOUND) /* backing off */
		return 0;
	if (rc != STORE_OK)
		return -1;
	if (n == 0)
		return 0;
	if (w->nevents == 0)
		return store_outbox_sent(
		           w->store, w->ep.name, w->ids, w->nids, 0) == STORE_OK
		           ? 1
		           : -1;
	outbox_format_end(w->body, w->ep.shape);
	now = (int64_t)time(NULL);
	snprintf(ts, sizeof(ts), "%" PRId64, now);
	outbox_format_sign(w->secret, w->secretlen, now,
	    evbuffer_pullup(w->body, -1), evbuffer_get_length(w->body), sig);
	snprintf(ua, sizeof(ua), "sluice-controller/%s", SLUICE_VERSION);
	hd[0] = (struct outbox_http_header){"Content-Type", "application/json"};
	hd[1] = (struct outbox_http_header){"User-Agent", ua};
	hd[2] = (struct outbox_http_header){"X-Sluice-Timestamp", ts};
	hd[3] = (struct outbox_http_header){"X-Sluice-Signature", sig};
	status = outbox_http_post(w->http, w->ep.path, w->ep.hostport, hd, 4,
	    w->body, err, sizeof(err));
	if (status >= 200 && status < 300) {
		if (store_outbox_sent(w->store, w->ep.name, w->ids, w->nids,
		        w->nevents) != STORE_OK) {
			/* delivered, not recorded: they will go again */
			log_warnx("event webhook %s: %zu events delivered but "
			          "not marked sent (PostgreSQL); they will be "
			          "sent again",
			    w->ep.name, w->nevents);
			return -1;
		}
		if (w->is_failing)
			log_info(
			    "event webhook %s: delivering again", w->ep.name);
		w->is_failing = false;
		log_debug("event webhook %s: sent events=%zu bytes=%zu",
		    w->ep.name, w->nevents, evbuffer_get_length(w->body));
		return 1;
	}
	if (status != 0)
		snprintf(err, sizeof(err), "answered %d", status);
	retry_ms = outbox_format_backoff_ms(
	    failures + 1, w->cf->retry_max_ms, (uint32_t)rand_r(&w->seed));
	snprintf(msg, sizeof(msg), "%s", err);
	if (!w->is_failing)
		log_warnx("event webhook %s: POST %s%.*s failed: %s; the "
		          "events stay queued, retrying with backoff",
		    w->ep.name, w->ep.hostport, OUTBOX_LOG_PATH(w), msg);
	w->is_failing = true;
	return store_outbox_failed(w->store, w->ep.name, w->ids, w->nids, msg,
	           retry_ms) == STORE_OK
	           ? 1
	           : -1;
}

static void *
outbox_run(void *arg)
{
	struct outbox_worker *w = arg;
	bool is_registered = false;
	int rc;

	while (!*w->stop) {
		if (!is_registered) {
			if (store_outbox_endpoint(w->store, w->ep.name,
			        w->ep.kinds[0], sizeof(w->ep.kinds[0]),
			        w->ep.n_kinds, w->ep.senders[0],
			        sizeof(w->ep.senders[0]),
			        w->ep.n_senders) != STORE_OK) {
				outbox_sleep_ms(w, 1000);
				continue;
			}
			is_registered = true;
			log_info(
			    "event webhook %s: url=https://%s%.*s kinds=%zu "
			    "senders=%zu shape=%s batch=%d",
			    w->ep.name, w->ep.hostport, OUTBOX_LOG_PATH(w),
			    w->ep.n_kinds, w->ep.n_senders,
			    w->ep.shape == OUTBOX_SHAPE_SENDGRID ? "sendgrid"
			                                         : "sluice",
			    w->ep.batch);
		}
		rc = outbox_batch(w);
		if (rc == 0)
			outbox_sleep_ms(w, w->cf->poll_ms);
		else if (rc < 0)
			outbox_sleep_ms(w, 1000);
	}
	return NULL;
}

void
outbox_start(
    struct outbox *o, const char *conninfo, volatile sig_atomic_t *stop)
{
	size_t i;

	if (o == NULL)
		return;
	for (i = 0; i < o->n; i++) {
		struct outbox_worker *w = &o->w[i];
		/* store logs say "store webhook: ..." (names are short) */
		if ((w->store = store_new(conninfo, "webhook")) == NULL)
			fatalx("out of memory");
		/* A batch stays claimed (its rows locked) while it is
		 * POSTed: the transaction may idle a whole POST timeout. */
		store_set_idle_tx_timeout(
		    w->store, (w->cf->timeout_s + 5) * 1000);
		w->stop = stop;
		if ((errno = pthread_create(&w->thread, NULL, outbox_run, w)) !=
		    0)
			fatalx("pthread_create: %s", strerror(errno));
		w->is_started = true;
	}
}

void
outbox_free(struct outbox *o)
{
	size_t i;

	if (o == NULL)
		return;
	for (i = 0; i < o->n; i++) {
		struct outbox_worker *w = &o->w[i];

		if (w->is_started)
			pthread_join(w->thread, NULL);
		store_free(w->store);
		outbox_http_free(w->http);
		if (w->body != NULL)
			evbuffer_free(w->body);
		free(w->ids);
		explicit_bzero(w->secret, sizeof(w->secret));
	}
	free(o->w);
	free(o);
}
