/* hooks_http.c - provider webhooks in (hooks_http.h).  One thread runs an
 * evhttp server (TLS through bufferevent_openssl) with its own store
 * connection; the policy's provider_hooks say which accounts exist and
 * hold their secrets (re-read when the policy head moves).  Every request
 * ends in one status: 200 stored (replays included: the provider must
 * stop retrying), 401 unsigned/forged/stale/replayed, 404 no such hook,
 * 400 a body that is not the provider's, 503 PostgreSQL away (the
 * provider retries).  Hard bounces and complaints of hooks with
 * `suppress` go to the suppression list as one new policy version per
 * request. */
#include "hooks_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hooks_fetch.h"
#include "hooks_parse.h"
#include "hooks_verify.h"
#include "log.h"
#include "policy_check.h"
#include "proto.h"
#include "rpc.h"
#include "store.h"

/* Ceilings: SendGrid batches run to a few hundred KiB; nothing a provider
 * sends comes near these. */
#define HH_HEADERS_MAX   16384
#define HH_BODY_MAX      (4 * 1024 * 1024)
#define HH_TIMEOUT_S     10
#define HH_FETCH_TIMEOUT 5
#define HH_CERT_MAX      16384
#define HH_CERTS         8 /* SNS signing certificates cached */
#define HH_LOG_PER_S     10
#define HH_REJOIN_AGE_S  (7 * 86400) /* unknown events retried this long */
#define HH_REJOIN_BATCH  1000
#define HH_REJOIN_MAX    10 /* batches a pass */

enum hh_provider {
	HP_SENDGRID,
	HP_SES,
	HP_MAILGUN,
	HP_POSTMARK,
	HP_BREVO,
	HP_N
};
static const char *const hh_providers[HP_N] = {
    "sendgrid", "ses", "mailgun", "postmark", "brevo"};

enum hh_outcome {
	HO_ACCEPTED,
	HO_UNSIGNED,
	HO_FORGED,
	HO_STALE,
	HO_REPLAY,
	HO_BADKEY,
	HO_BAD_REQUEST,
	HO_NOT_FOUND,
	HO_UNAVAILABLE,
	HO_SUBSCRIBED,
	HO_N
};
static const char *const hh_outcomes[HO_N] = {"accepted", "unsigned", "forged",
    "stale", "replay", "badkey", "bad_request", "not_found", "unavailable",
    "subscribed"};

static const char *const hh_kinds[] = {"provider_delivered", "provider_bounced",
    "provider_deferred", "provider_dropped", "complaint", "opened", "clicked"};
#define HK_N (sizeof(hh_kinds) / sizeof(hh_kinds[0]))

/* Process-wide counters: /metrics runs on another thread. */
static _Atomic uint64_t hh_requests[HP_N][HO_N];
static _Atomic uint64_t hh_events[HP_N][HK_N];
static _Atomic uint64_t hh_unknown[HP_N], hh_duplicate[HP_N];
static _Atomic uint64_t hh_rejoined;

struct hh_cert {
	char *url;
	char *pem;
	size_t len;
};

struct hooks_http {
	struct hooks_http_config cf;
	struct event_base *base;
	struct evhttp *http;
	struct event *tick;
	SSL_CTX *ssl;
	struct store *store;
	volatile sig_atomic_t *stop;
	pthread_t thread;
	Sluice__Policy *policy; /* the head's snapshot, secrets included */
	uint64_t policy_version;
	struct hh_cert certs[HH_CERTS];
	size_t next_cert;
	int64_t rejoin_at;  /* the last re-join pass (unix s) */
	int64_t log_second; /* refusal logs: at most HH_LOG_PER_S a second */
	int logged, suppressed;
};

/* One request as it goes through. */
struct hh_req {
	struct evhttp_request *req;
	enum hh_provider provider;
	const Sluice__ProviderHook *hook;
	char peer[64];
	const char *body;
	size_t len;
};

static int64_t
hh_now(void)
{
	return (int64_t)time(NULL);
}

static void
hh_reply(struct hh_req *r, int code, const char *reason, const char *json)
{
	struct evbuffer *b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(r->req),
	    "Content-Type", "application/json");
	if (b != NULL)
		evbuffer_add_printf(b, "%s\n", json);
	evhttp_send_reply(r->req, code, reason, b);
	if (b != NULL)
		evbuffer_free(b);
}

/* A refusal: counted, logged (rate-limited), answered. */
static void
hh_refuse(struct hooks_http *hh, struct hh_req *r, enum hh_outcome o, int code,
    const char *why)
{
	int64_t now = hh_now();
	char json[320];

	if (r->provider < HP_N)
		atomic_fetch_add(&hh_requests[r->provider][o], 1);
	if (now != hh->log_second) {
		if (hh->suppressed > 0)
			log_warnx("hooks: %d more refusal(s) not logged",
			    hh->suppressed);
		hh->log_second = now;
		hh->logged = hh->suppressed = 0;
	}
	if (hh->logged++ < HH_LOG_PER_S)
		log_warnx("hooks: refused peer=%s path=%.120s outcome=%s "
		          "status=%d reason=\"%s\"",
		    r->peer, evhttp_request_get_uri(r->req), hh_outcomes[o],
		    code, why);
	else
		hh->suppressed++;
	snprintf(json, sizeof(json), "{\"error\":\"%s\"}", hh_outcomes[o]);
	hh_reply(r, code,
	    code == 401   ? "Unauthorized"
	    : code == 404 ? "Not Found"
	    : code == 503 ? "Service Unavailable"
	    : code == 413 ? "Payload Too Large"
	                  : "Bad Request",
	    json);
}

static enum hh_outcome
hh_verdict_outcome(enum hooks_verdict v)
{
	switch (v) {
	case HOOKS_OK:
		return HO_ACCEPTED;
	case HOOKS_UNSIGNED:
		return HO_UNSIGNED;
	case HOOKS_FORGED:
		return HO_FORGED;
	case HOOKS_STALE:
		return HO_STALE;
	case HOOKS_REPLAY:
		return HO_REPLAY;
	case HOOKS_BADKEY:
		return HO_BADKEY;
	}
	return HO_FORGED;
}

/* ------------------------------------------------------------ policy */

/* The head's snapshot, re-read when the version moved.  -1: store away. */
static int
hh_policy(struct hooks_http *hh)
{
	Sluice__Policy *p;
	uint64_t head;
	uint8_t *buf;
	size_t len;

	if (store_policy_head(hh->store, false, &head) != STORE_OK)
		return -1;
	if (head == hh->policy_version && (hh->policy != NULL || head == 0))
		return 0;
	p = NULL;
	if (head > 0) {
		if (store_policy_snapshot(hh->store, head, &buf, &len) !=
		    STORE_OK)
			return -1;
		p = sluice__policy__unpack(NULL, len, buf);
		free(buf);
		if (p == NULL)
			return -1;
	}
	if (hh->policy != NULL)
		sluice__policy__free_unpacked(hh->policy, NULL);
	hh->policy = p;
	hh->policy_version = head;
	return 0;
}

static const Sluice__ProviderHook *
hh_find(const struct hooks_http *hh, const char *provider, const char *name)
{
	size_t i;

	for (i = 0; hh->policy != NULL && i < hh->policy->n_provider_hooks;
	     i++) {
		const Sluice__ProviderHook *h = hh->policy->provider_hooks[i];

		if (strcmp(h->provider, provider) == 0 &&
		    strcmp(h->name, name) == 0)
			return h;
	}
	return NULL;
}

/* Hard bounces and complaints of a hook with `suppress` onto the list:
 * one policy version for the whole request, under the head's row lock
 * like every apply. */
static void
hh_suppress(struct hooks_http *hh, struct hh_req *r, struct hook_batch *b)
{
	Sluice__Suppression *ns, **nv;
	Sluice__Policy *p = NULL, empty;
	uint64_t head;
	uint8_t *buf = NULL;
	size_t len, i, j, added = 0, first_new;
	char summary[200], source[300];
	int rc;

	if (!r->hook->suppress)
		return;
	for (i = 0; i < b->n; i++)
		if (b->v[i].is_new && b->v[i].is_hard &&
		    strchr(b->v[i].recipient, '@') != NULL)
			break;
	if (i == b->n)
		return;
	sluice__policy__init(&empty);
	if ((rc = store_begin(hh->store)) != STORE_OK ||
	    (rc = store_policy_head(hh->store, true, &head)) != STORE_OK)
		goto out;
	if (head > 0) {
		if ((rc = store_policy_snapshot(hh->store, head, &buf, &len)) !=
		    STORE_OK)
			goto out;
		p = sluice__policy__unpack(NULL, len, buf);
		free(buf);
		buf = NULL;
		if (p == NULL)
			goto out;
	}
	if (p == NULL)
		goto out; /* no policy, so no hook: cannot happen */
	first_new = p->n_suppressions;
	for (i = 0; i < b->n; i++) {
		struct hook_event *e = &b->v[i];

		if (!e->is_new || !e->is_hard || !strchr(e->recipient, '@') ||
		    strlen(e->recipient) > POLICY_ADDRESS_MAX)
			continue;
		for (j = 0; j < p->n_suppressions; j++)
			if (strcmp(p->suppressions[j]->address, e->recipient) ==
			    0)
				break;
		if (j < p->n_suppressions)
			continue;
		if ((nv = realloc(p->suppressions,
		         (p->n_suppressions + 1) * sizeof(*nv))) == NULL)
			goto out;
		p->suppressions = nv;
		if ((ns = calloc(1, sizeof(*ns))) == NULL)
			goto out;
		sluice__suppression__init(ns);
		snprintf(source, sizeof(source), "%s/%s %.200s",
		    hh_providers[r->provider], r->hook->name, e->event_id);
		ns->address = strdup(e->recipient);
		ns->reason = strdup(
		    strcmp(e->kind, "complaint") == 0 ? "complaint" : "bounce");
		ns->source = strdup(source);
		ns->added_at = hh_now();
		p->suppressions[p->n_suppressions++] = ns;
		if (ns->address == NULL || ns->reason == NULL ||
		    ns->source == NULL)
			goto out;
		added++;
	}
	if (added == 0)
		goto out;
	p->version = head + 1;
	snprintf(summary, sizeof(summary),
	    "suppress %zu recipient(s) from %s/%s", added,
	    hh_providers[r->provider], r->hook->name);
	if ((buf = rpc_pack(&p->base, &len)) == NULL ||
	    (rc = store_policy_insert(hh->store, p->version,
	         "controller (provider webhook)", summary, buf, len)) !=
	        STORE_OK ||
	    (rc = store_commit(hh->store)) != STORE_OK)
		goto out;
	for (i = first_new; i < p->n_suppressions; i++)
		log_info(
		    "hooks: suppressed address=<%s> reason=%s source=\"%s\" "
		    "policy_version=%" PRIu64,
		    p->suppressions[i]->address, p->suppressions[i]->reason,
		    p->suppressions[i]->source, p->version);
out:
	store_rollback(hh->store);
	free(buf);
	if (p != NULL)
		sluice__policy__free_unpacked(p, NULL);
}

/* ---------------------------------------------------------------- SNS */

static const struct hh_cert *
hh_cert(struct hooks_http *hh, const char *url, char *err, size_t errlen)
{
	struct hh_cert *c;
	char *pem;
	size_t len, i;

	for (i = 0; i < HH_CERTS; i++)
		if (hh->certs[i].url != NULL &&
		    strcmp(hh->certs[i].url, url) == 0)
			return &hh->certs[i];
	if (hooks_fetch(url, hh->cf.sns_ca, HH_FETCH_TIMEOUT, HH_CERT_MAX, &pem,
	        &len, err, errlen) == -1)
		return NULL;
	c = &hh->certs[hh->next_cert++ % HH_CERTS];
	free(c->url);
	free(c->pem);
	c->pem = pem;
	c->len = len;
	if ((c->url = strdup(url)) == NULL) {
		free(c->pem);
		c->pem = NULL;
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	log_info("hooks: SNS signing certificate fetched url=%s", url);
	return c;
}

/* 1: handled (answered), 0: events in b to store. */
static int
hh_sns(struct hooks_http *hh, struct hh_req *r, struct hook_batch *b)
{
	struct hooks_sns_doc d;
	const struct hh_cert *c;
	enum hooks_verdict v;
	char err[256], *page;
	size_t len;

	if (hooks_parse_sns(r->body, r->len, &d, err, sizeof(err)) == -1) {
		hh_refuse(hh, r, HO_BAD_REQUEST, 400, err);
		return 1;
	}
	if (d.f.signature == NULL || d.f.signing_cert_url == NULL) {
		hh_refuse(hh, r, HO_UNSIGNED, 401, "no Signature");
		goto done;
	}
	if (!hooks_sns_cert_url_ok(
	        d.f.signing_cert_url, hh->cf.sns_cert_host)) {
		hh_refuse(hh, r, HO_FORGED, 401,
		    "SigningCertURL is not an https://sns.<region>."
		    "amazonaws.com/....pem URL");
		goto done;
	}
	if (r->hook->key[0] != '\0' &&
	    (d.f.topic_arn == NULL ||
	        strcmp(d.f.topic_arn, r->hook->key) != 0)) {
		hh_refuse(hh, r, HO_FORGED, 401, "TopicArn not this hook's");
		goto done;
	}
	if ((c = hh_cert(hh, d.f.signing_cert_url, err, sizeof(err))) == NULL) {
		/* SNS retries: the certificate may come next time */
		hh_refuse(hh, r, HO_UNAVAILABLE, 503, err);
		goto done;
	}
	if ((v = hooks_verify_sns(&d.f, c->pem, c->len, hh_now(),
	         hh->cf.sns_max_age_s)) != HOOKS_OK) {
		hh_refuse(
		    hh, r, hh_verdict_outcome(v), 401, hooks_verdict_name(v));
		goto done;
	}
	if (strcmp(d.f.type, "SubscriptionConfirmation") == 0) {
		if (d.f.subscribe_url == NULL ||
		    !hooks_sns_url_ok(
		        d.f.subscribe_url, hh->cf.sns_cert_host)) {
			hh_refuse(hh, r, HO_FORGED, 401,
			    "SubscribeURL is not an SNS URL");
			goto done;
		}
		if (hooks_fetch(d.f.subscribe_url, hh->cf.sns_ca,
		        HH_FETCH_TIMEOUT, 65536, &page, &len, err,
		        sizeof(err)) == -1) {
			hh_refuse(hh, r, HO_UNAVAILABLE, 503, err);
			goto done;
		}
		free(page);
		atomic_fetch_add(&hh_requests[r->provider][HO_SUBSCRIBED], 1);
		log_info("hooks: SNS subscription confirmed hook=%s topic=%s",
		    r->hook->name, d.f.topic_arn ? d.f.topic_arn : "");
		hh_reply(r, 200, "OK", "{\"subscribed\":true}");
		goto done;
	}
	if (strcmp(d.f.type, "Notification") != 0) {
		atomic_fetch_add(&hh_requests[r->provider][HO_ACCEPTED], 1);
		hh_reply(r, 200, "OK", "{\"stored\":0}");
		goto done;
	}
	if (hooks_parse_ses(d.f.message, d.f.message_id, b, err, sizeof(err)) ==
	    -1) {
		hh_refuse(hh, r, HO_BAD_REQUEST, 400, err);
		goto done;
	}
	hooks_sns_free(&d);
	return 0;
done:
	hooks_sns_free(&d);
	return 1;
}

/* ---------------------------------------------------------- requests */

static const char *
hh_header(struct hh_req *r, const char *name)
{
	return evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), name);
}

/* Verifies and parses; 1: answered already, 0: b holds the events. */
static int
hh_provider(struct hooks_http *hh, struct hh_req *r, struct hook_batch *b)
{
	struct hooks_mailgun_sig sig;
	enum hooks_verdict v;
	char err[256];
	bool is_new;
	int rc;

	switch (r->provider) {
	case HP_SENDGRID:
		v = hooks_verify_sendgrid(r->hook->key,
		    hh_header(r, "X-Twilio-Email-Event-Webhook-Signature"),
		    hh_header(r, "X-Twilio-Email-Event-Webhook-Timestamp"),
		    r->body, r->len, hh_now(), hh->cf.max_age_s);
		if (v != HOOKS_OK)
			break;
		rc = hooks_parse_sendgrid(r->body, r->len, b, err, sizeof(err));
		goto parsed;
	case HP_MAILGUN:
		if (hooks_parse_mailgun(
		        r->body, r->len, b, &sig, err, sizeof(err)) == -1) {
			/* no signature can be read: unsigned */
			hh_refuse(hh, r, HO_UNSIGNED, 401, err);
			return 1;
		}
		if ((v = hooks_verify_mailgun(r->hook->secret, sig.timestamp,
		         sig.token, sig.signature, hh_now(),
		         hh->cf.max_age_s)) != HOOKS_OK)
			break;
		if (store_hook_token(hh->store, "mailgun", r->hook->name,
		        sig.token, &is_new) != STORE_OK) {
			hh_refuse(
			    hh, r, HO_UNAVAILABLE, 503, "database unavailable");
			return 1;
		}
		if (!is_new)
			v = HOOKS_REPLAY;
		break;
	case HP_POSTMARK:
	case HP_BREVO:
		v = hooks_verify_basic(hh_header(r, "Authorization"),
		    r->hook->key, r->hook->secret);
		if (v != HOOKS_OK)
			break;
		rc = r->provider == HP_POSTMARK
		         ? hooks_parse_postmark(
		               r->body, r->len, b, err, sizeof(err))
		         : hooks_parse_brevo(
		               r->body, r->len, b, err, sizeof(err));
		goto parsed;
	case HP_SES:
		return hh_sns(hh, r, b);
	default:
		v = HOOKS_FORGED;
	}
	if (v != HOOKS_OK) {
		hh_refuse(
		    hh, r, hh_verdict_outcome(v), 401, hooks_verdict_name(v));
		return 1;
	}
	return 0; /* mailgun: parsed before the check */
parsed:
	if (rc == -1) {
		hh_refuse(hh, r, HO_BAD_REQUEST, 400, err);
		return 1;
	}
	return 0;
}

/* Splits "/hooks/<provider>/<name>[/<token>]"; false when not that. */
static bool
hh_path(const char *uri, char *prov, char *name, char *tok)
{
	const char *p, *seg[3];
	size_t len[3], n = 0, i;

	if (strncmp(uri, "/hooks/", 7) != 0)
		return false;
	for (p = uri + 7; n < 3;) {
		seg[n] = p;
		len[n] = strcspn(p, "/");
		if (len[n] == 0 || len[n] > 128)
			return false;
		for (i = 0; i < len[n]; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '-' &&
			    p[i] != '_' && p[i] != '.')
				return false;
		p += len[n];
		n++;
		if (*p == '\0')
			break;
		p++;
	}
	if (n < 2 || *p != '\0')
		return false;
	snprintf(prov, 129, "%.*s", (int)len[0], seg[0]);
	snprintf(name, 129, "%.*s", (int)len[1], seg[1]);
	snprintf(
	    tok, 129, "%.*s", n == 3 ? (int)len[2] : 0, n == 3 ? seg[2] : "");
	return true;
}

static void
hh_peer(struct evhttp_request *req, char *out, size_t len)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	char *addr = NULL; /* libevent's, not ours to free */
	uint16_t port = 0;

	if (c != NULL)
		evhttp_connection_get_peer(c, &addr, &port);
	snprintf(out, len, "%s:%u", addr != NULL ? addr : "?", port);
}

static void
hh_on_request(struct evhttp_request *req, void *arg)
{
	struct hooks_http *hh = arg;
	struct hh_req r;
	struct hook_batch b;
	struct store_hook_counts c;
	struct evbuffer *in;
	char prov[129], name[129], tok[129], json[160];
	size_t i, k;

	memset(&r, 0, sizeof(r));
	memset(&b, 0, sizeof(b));
	r.req = req;
	r.provider = HP_N;
	hh_peer(req, r.peer, sizeof(r.peer));
	if (!hh_path(evhttp_request_get_uri(req), prov, name, tok)) {
		hh_refuse(
		    hh, &r, HO_NOT_FOUND, 404, "want /hooks/<provider>/<name>");
		return;
	}
	for (i = 0; i < HP_N && strcmp(hh_providers[i], prov) != 0; i++)
		;
	if (i == HP_N) {
		hh_refuse(hh, &r, HO_NOT_FOUND, 404, "unknown provider");
		return;
	}
	r.provider = (enum hh_provider)i;
	if (hh_policy(hh) == -1) {
		hh_refuse(hh, &r, HO_UNAVAILABLE, 503, "database unavailable");
		return;
	}
	if ((r.hook = hh_find(hh, prov, name)) == NULL) {
		hh_refuse(hh, &r, HO_NOT_FOUND, 404,
		    "no such provider hook in the policy");
		return;
	}
	/* A secret path element, when the hook has one. */
	if (r.hook->path_token[0] != '\0' &&
	    !hooks_secret_equal(tok, r.hook->path_token)) {
		hh_refuse(hh, &r, tok[0] ? HO_FORGED : HO_UNSIGNED, 401,
		    "path token");
		return;
	}
	if (r.hook->path_token[0] == '\0' && tok[0] != '\0') {
		hh_refuse(hh, &r, HO_NOT_FOUND, 404, "no such path");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	r.len = evbuffer_get_length(in);
	if ((r.body = (const char *)evbuffer_pullup(in, -1)) == NULL)
		r.body = "";
	if (hh_provider(hh, &r, &b) == 1) {
		hooks_batch_free(&b);
		return;
	}
	/* opened/clicked only when the hook keeps them */
	for (i = 0; i < b.n;)
		if (!r.hook->engagement &&
		    (strcmp(b.v[i].kind, "opened") == 0 ||
		        strcmp(b.v[i].kind, "clicked") == 0))
			hooks_batch_remove(&b, i);
		else
			i++;
	if (store_hook_insert(hh->store, prov, name, &b, &c) != STORE_OK) {
		hooks_batch_free(&b);
		hh_refuse(hh, &r, HO_UNAVAILABLE, 503, "database unavailable");
		return;
	}
	for (i = 0; i < b.n; i++) {
		for (k = 0; k < HK_N; k++)
			if (b.v[i].is_new &&
			    strcmp(b.v[i].kind, hh_kinds[k]) == 0)
				atomic_fetch_add(&hh_events[r.provider][k], 1);
	}
	atomic_fetch_add(&hh_unknown[r.provider], c.unknown);
	atomic_fetch_add(&hh_duplicate[r.provider], c.duplicate);
	atomic_fetch_add(&hh_requests[r.provider][HO_ACCEPTED], 1);
	hh_suppress(hh, &r, &b);
	log_debug("hooks: stored provider=%s hook=%s events=%zu new=%" PRIu64
	          " unknown=%" PRIu64 " duplicate=%" PRIu64 " ignored=%zu",
	    prov, name, b.n, c.stored, c.unknown, c.duplicate, b.ignored);
	snprintf(json, sizeof(json),
	    "{\"stored\":%" PRIu64 ",\"unknown\":%" PRIu64
	    ",\"duplicate\":%" PRIu64 ",\"ignored\":%zu}",
	    c.stored, c.unknown, c.duplicate, b.ignored);
	hooks_batch_free(&b);
	hh_reply(&r, 200, "OK", json);
}

/* ------------------------------------------------------------- thread */

static struct bufferevent *
hh_bev(struct event_base *base, void *arg)
{
	struct hooks_http *hh = arg;
	SSL *ssl;

	if ((ssl = SSL_new(hh->ssl)) == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* Provider events that came before their message's record (the node's
 * journal lagging, the controller away): every rejoin_s, batches of the
 * unknown ones are joined again (store_hook_rejoin), up to HH_REJOIN_MAX
 * batches a pass while batches come back full. */
static void
hh_rejoin(struct hooks_http *hh)
{
	uint64_t checked, joined, total = 0;
	int64_t now = hh_now();
	int i;

	if (hh->cf.rejoin_s <= 0 || now - hh->rejoin_at < hh->cf.rejoin_s)
		return;
	hh->rejoin_at = now;
	for (i = 0; i < HH_REJOIN_MAX; i++) {
		if (store_hook_rejoin(hh->store, HH_REJOIN_AGE_S,
		        HH_REJOIN_BATCH, &checked, &joined) != STORE_OK)
			return; /* PostgreSQL away: the next pass */
		total += joined;
		if (checked < HH_REJOIN_BATCH)
			break;
	}
	if (total > 0) {
		atomic_fetch_add(&hh_rejoined, total);
		log_info("hooks: joined %" PRIu64
		         " provider events that came before their message",
		    total);
	}
}

static void
hh_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct hooks_http *hh = arg;

	(void)fd;
	(void)what;
	if (*hh->stop) {
		event_base_loopbreak(hh->base);
		return;
	}
	hh_rejoin(hh);
}

static void *
hh_main(void *arg)
{
	struct hooks_http *hh = arg;

	event_base_dispatch(hh->base);
	return NULL;
}

static void
hh_free(struct hooks_http *hh)
{
	size_t i;

	if (hh->tick != NULL)
		event_free(hh->tick);
	if (hh->http != NULL)
		evhttp_free(hh->http);
	if (hh->base != NULL)
		event_base_free(hh->base);
	SSL_CTX_free(hh->ssl);
	if (hh->policy != NULL)
		sluice__policy__free_unpacked(hh->policy, NULL);
	for (i = 0; i < HH_CERTS; i++) {
		free(hh->certs[i].url);
		free(hh->certs[i].pem);
	}
	free(hh);
}

static bool
hh_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return strcmp(host, "localhost") == 0;
}

struct hooks_http *
hooks_http_start(const struct hooks_http_config *cf, struct store *st,
    volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	struct timeval tv = {0, 200000};
	struct hooks_http *hh;
	char host[256], *colon;
	long port;

	snprintf(host, sizeof(host), "%s", cf->listen);
	if ((colon = strrchr(host, ':')) == NULL ||
	    (port = strtol(colon + 1, NULL, 10)) <= 0 || port > 65535) {
		snprintf(err, errlen, "hooks_listen '%s': want ADDR:PORT",
		    cf->listen);
		return NULL;
	}
	*colon = '\0';
	if (host[0] == '[' && colon > host && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if ((cf->cert == NULL) != (cf->key == NULL)) {
		snprintf(err, errlen,
		    "hooks_tls_cert and hooks_tls_key go "
		    "together");
		return NULL;
	}
	if (cf->cert == NULL && !hh_is_loopback(host)) {
		snprintf(err, errlen,
		    "hooks_listen %s: plain HTTP only on a loopback address "
		    "(behind a reverse proxy); set hooks_tls_cert and "
		    "hooks_tls_key",
		    cf->listen);
		return NULL;
	}
	if ((hh = calloc(1, sizeof(*hh))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	hh->cf = *cf;
	hh->store = st;
	hh->stop = stop;
	if (cf->cert != NULL &&
	    ((hh->ssl = SSL_CTX_new(TLS_server_method())) == NULL ||
	        SSL_CTX_set_min_proto_version(hh->ssl, TLS1_2_VERSION) != 1 ||
	        SSL_CTX_use_certificate_chain_file(hh->ssl, cf->cert) != 1 ||
	        SSL_CTX_use_PrivateKey_file(
	            hh->ssl, cf->key, SSL_FILETYPE_PEM) != 1 ||
	        SSL_CTX_check_private_key(hh->ssl) != 1)) {
		snprintf(err, errlen,
		    "hooks_tls_cert %s / hooks_tls_key %s: "
		    "cannot load",
		    cf->cert, cf->key);
		ERR_clear_error();
		hh_free(hh);
		return NULL;
	}
	if ((hh->base = event_base_new()) == NULL ||
	    (hh->http = evhttp_new(hh->base)) == NULL ||
	    evhttp_bind_socket(hh->http, host, (uint16_t)port) != 0) {
		snprintf(
		    err, errlen, "hooks_listen %s: cannot bind", cf->listen);
		hh_free(hh);
		return NULL;
	}
	if (hh->ssl != NULL)
		evhttp_set_bevcb(hh->http, hh_bev, hh);
	evhttp_set_allowed_methods(hh->http, EVHTTP_REQ_POST);
	evhttp_set_max_headers_size(hh->http, HH_HEADERS_MAX);
	evhttp_set_max_body_size(hh->http, HH_BODY_MAX);
	evhttp_set_timeout(hh->http, HH_TIMEOUT_S);
	evhttp_set_gencb(hh->http, hh_on_request, hh);
	if ((hh->tick = event_new(hh->base, -1, EV_PERSIST, hh_on_tick, hh)) ==
	        NULL ||
	    event_add(hh->tick, &tv) == -1 ||
	    pthread_create(&hh->thread, NULL, hh_main, hh) != 0) {
		snprintf(
		    err, errlen, "hooks_listen %s: cannot start", cf->listen);
		hh_free(hh);
		return NULL;
	}
	log_info("hooks: listening on %s (%s)", cf->listen,
	    hh->ssl != NULL ? "https" : "plain http, loopback");
	return hh;
}

void
hooks_http_stop(struct hooks_http *hh)
{
	if (hh == NULL)
		return;
	pthread_join(hh->thread, NULL);
	hh_free(hh);
}

void
hooks_http_metrics(struct evbuffer *b)
{
	size_t p, k;

	evbuffer_add_printf(b,
	    "# HELP sluice_hooks_requests_total Provider webhook requests "
	    "this controller answered, by outcome (401: unsigned, forged, "
	    "stale, replay, badkey).\n"
	    "# TYPE sluice_hooks_requests_total counter\n");
	for (p = 0; p < HP_N; p++)
		for (k = 0; k < HO_N; k++)
			evbuffer_add_printf(b,
			    "sluice_hooks_requests_total{provider=\"%s\","
			    "outcome=\"%s\"} %" PRIu64 "\n",
			    hh_providers[p], hh_outcomes[k],
			    atomic_load(&hh_requests[p][k]));
	evbuffer_add_printf(b,
	    "# HELP sluice_hooks_events_total Provider events stored by this "
	    "controller (replays not counted).\n"
	    "# TYPE sluice_hooks_events_total counter\n");
	for (p = 0; p < HP_N; p++)
		for (k = 0; k < HK_N; k++)
			evbuffer_add_printf(b,
			    "sluice_hooks_events_total{provider=\"%s\","
			    "kind=\"%s\"} %" PRIu64 "\n",
			    hh_providers[p], hh_kinds[k],
			    atomic_load(&hh_events[p][k]));
	evbuffer_add_printf(b,
	    "# HELP sluice_hooks_unknown_events_total Provider events for "
	    "messages sluice does not know (kept in provider_events).\n"
	    "# TYPE sluice_hooks_unknown_events_total counter\n");
	for (p = 0; p < HP_N; p++)
		evbuffer_add_printf(b,
		    "sluice_hooks_unknown_events_total{provider=\"%s\"} "
		    "%" PRIu64 "\n",
		    hh_providers[p], atomic_load(&hh_unknown[p]));
	evbuffer_add_printf(b,
	    "# HELP sluice_hooks_duplicate_events_total Provider events "
	    "received again (retries, replays): nothing stored.\n"
	    "# TYPE sluice_hooks_duplicate_events_total counter\n");
	for (p = 0; p < HP_N; p++)
		evbuffer_add_printf(b,
		    "sluice_hooks_duplicate_events_total{provider=\"%s\"} "
		    "%" PRIu64 "\n",
		    hh_providers[p], atomic_load(&hh_duplicate[p]));
	evbuffer_add_printf(b,
	    "# HELP sluice_hooks_rejoined_events_total Unknown provider "
	    "events this controller joined to their message later (they came "
	    "before the message's record).\n"
	    "# TYPE sluice_hooks_rejoined_events_total counter\n"
	    "sluice_hooks_rejoined_events_total %" PRIu64 "\n",
	    atomic_load(&hh_rejoined));
}
