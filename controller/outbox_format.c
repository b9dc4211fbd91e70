/* outbox_format.c - pure parts of the outbound event webhooks
 * (outbox_format.h): the endpoint config line, JSON payloads, signature,
 * backoff.  Called by controller.c (config) and outbox.c (each POST).
 * Text from the store is UTF-8 (store.c escapes what is not), so JSON
 * strings only need the quote, backslash and control characters escaped. */
#include "outbox_format.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool
outbox_format_is_name(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return false;
	return true;
}

/* "a,b,c" into list (each checked against the character set). */
static int
outbox_format_list(const char *v, char (*list)[48], size_t *n, char *err,
    size_t errlen, const char *key)
{
	char buf[2048], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", v);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n == OUTBOX_MAX_FILTERS ||
		    !outbox_format_is_name(tok, 48, "_")) {
			snprintf(err, errlen,
			    "%s: '%s' is not an event kind (letters, digits, "
			    "_; at most %d)",
			    key, tok, OUTBOX_MAX_FILTERS);
			return -1;
		}
		snprintf(list[(*n)++], 48, "%s", tok);
	}
	return 0;
}

static int
outbox_format_senders(
    const char *v, struct outbox_endpoint *ep, char *err, size_t errlen)
{
	char buf[8192], *tok, *save = NULL, *p;

	snprintf(buf, sizeof(buf), "%s", v);
	ep->n_senders = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		for (p = tok; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		p = strncmp(tok, "*.", 2) == 0 ? tok + 2 : tok;
		if (ep->n_senders == OUTBOX_MAX_FILTERS ||
		    !outbox_format_is_name(p, 254, ".-") || p[0] == '.') {
			snprintf(err, errlen,
			    "senders: '%s' is not a domain or *.domain (at "
			    "most %d)",
			    tok, OUTBOX_MAX_FILTERS);
			return -1;
		}
		snprintf(ep->senders[ep->n_senders++], 256, "%s", tok);
	}
	return 0;
}

static int
outbox_format_url(struct outbox_endpoint *ep, char *err, size_t errlen)
{
	struct evhttp_uri *u;
	const char *host, *path, *q;

	if ((u = evhttp_uri_parse(ep->url)) == NULL ||
	    evhttp_uri_get_scheme(u) == NULL ||
	    strcmp(evhttp_uri_get_scheme(u), "https") != 0 ||
	    (host = evhttp_uri_get_host(u)) == NULL || host[0] == '\0' ||
	    strlen(host) >= sizeof(ep->host) ||
	    evhttp_uri_get_userinfo(u) != NULL) {
		snprintf(err, errlen,
		    "url '%.200s': want https://host[:port]/path", ep->url);
		if (u != NULL)
			evhttp_uri_free(u);
		return -1;
	}
	/* an IPv6 literal comes in brackets: connect to it without */
	if (host[0] == '[' && strlen(host) > 2)
		snprintf(ep->host, sizeof(ep->host), "%.*s",
		    (int)strlen(host) - 2, host + 1);
	else
		snprintf(ep->host, sizeof(ep->host), "%s", host);
	ep->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 443;
	snprintf(ep->hostport, sizeof(ep->hostport),
	    strchr(ep->host, ':') != NULL ? "[%s]:%d" : "%s:%d", ep->host,
	    ep->port);
	path = evhttp_uri_get_path(u);
	q = evhttp_uri_get_query(u);
	snprintf(ep->path, sizeof(ep->path), "%s%s%s",
	    path != NULL && path[0] != '\0' ? path : "/", q ? "?" : "",
	    q ? q : "");
	evhttp_uri_free(u);
	return 0;
}

int
outbox_format_endpoint(
    const char *line, struct outbox_endpoint *ep, char *err, size_t errlen)
{
	char buf[16384], *tok, *save = NULL, *v;
	char e[512];
	bool first = true;

	memset(ep, 0, sizeof(*ep));
	ep->batch = 100;
	if (strlen(line) >= sizeof(buf)) {
		snprintf(err, errlen, "event_webhook: line too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", line);
	for (tok = strtok_r(buf, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (first) {
			first = false;
			if (!outbox_format_is_name(
			        tok, sizeof(ep->name), "_.-"))
				goto bad_name;
			snprintf(ep->name, sizeof(ep->name), "%s", tok);
			continue;
		}
		if ((v = strchr(tok, '=')) == NULL) {
			snprintf(e, sizeof(e), "'%s' is not key=value", tok);
			goto bad;
		}
		*v++ = '\0';
		if (strcmp(tok, "url") == 0)
			snprintf(ep->url, sizeof(ep->url), "%s", v);
		else if (strcmp(tok, "secret_file") == 0)
			snprintf(
			    ep->secret_file, sizeof(ep->secret_file), "%s", v);
		else if (strcmp(tok, "ca") == 0)
			snprintf(ep->ca_file, sizeof(ep->ca_file), "%s", v);
		else if (strcmp(tok, "kinds") == 0) {
			if (outbox_format_list(v, ep->kinds, &ep->n_kinds, e,
			        sizeof(e), "kinds") == -1)
				goto bad;
		} else if (strcmp(tok, "senders") == 0) {
			if (outbox_format_senders(v, ep, e, sizeof(e)) == -1)
				goto bad;
		} else if (strcmp(tok, "shape") == 0) {
			if (strcmp(v, "sluice") == 0)
				ep->shape = OUTBOX_SHAPE_SLUICE;
			else if (strcmp(v, "sendgrid") == 0)
				ep->shape = OUTBOX_SHAPE_SENDGRID;
			else {
				snprintf(e, sizeof(e),
				    "shape '%s': want sluice or sendgrid", v);
				goto bad;
			}
		} else if (strcmp(tok, "batch") == 0) {
			char *end;
			long b = strtol(v, &end, 10);

			if (*end != '\0' || b < 1 || b > OUTBOX_BATCH_MAX) {
				snprintf(e, sizeof(e), "batch '%s': want 1..%d",
				    v, OUTBOX_BATCH_MAX);
				goto bad;
			}
			ep->batch = (int)b;
		} else {
			snprintf(e, sizeof(e), "unknown option '%s'", tok);
			goto bad;
		}
	}
	if (first)
		goto bad_name;
	if (ep->url[0] == '\0' || ep->secret_file[0] == '\0') {
		snprintf(e, sizeof(e), "url= and secret_file= are required");
		goto bad;
	}
	if (outbox_format_url(ep, e, sizeof(e)) == -1)
		goto bad;
	return 0;
bad_name:
	snprintf(err, errlen,
	    "event_webhook: want NAME url=https://... secret_file=PATH "
	    "[kinds=..] [senders=..] [shape=sluice|sendgrid] [ca=PATH] "
	    "[batch=N] (NAME: letters, digits, _ . -)");
	return -1;
bad:
	snprintf(err, errlen, "event_webhook %s: %s", ep->name, e);
	return -1;
}

/* ------------------------------------------------------------ JSON */

static void
outbox_format_str(struct evbuffer *b, const char *key, const char *v)
{
	const char *run;

	if (key != NULL)
		evbuffer_add_printf(b, "\"%s\":", key);
	evbuffer_add(b, "\"", 1);
	for (run = v; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;

		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		evbuffer_add(b, run, (size_t)(v - run));
		if (c == '"' || c == '\\')
			evbuffer_add_printf(b, "\\%c", c);
		else
			evbuffer_add_printf(b, "\\u%04x", c);
		run = v + 1;
	}
	evbuffer_add(b, run, (size_t)(v - run));
	evbuffer_add(b, "\"", 1);
}

/* "2026-12-07T02:10:00.123Z" */
static void
outbox_format_time(struct evbuffer *b, const char *key, int64_t at_ms)
{
	time_t t = (time_t)(at_ms / 1000);
	struct tm tm;
	char s[32];

	if (at_ms < 0 || gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	evbuffer_add_printf(
	    b, "\"%s\":\"%s.%03dZ\"", key, s, (int)(at_ms % 1000));
}

static void
outbox_format_sluice_event(struct evbuffer *b, const struct outbox_event *oe)
{
	const Sluice__Event *e = oe->ev;
	size_t i;

	evbuffer_add_printf(b, "{\"event_id\":\"%" PRIu64 "-%" PRIu64 "\",",
	    oe->node_id, e->seq);
	outbox_format_str(b, "kind", e->kind);
	evbuffer_add(b, ",", 1);
	outbox_format_time(b, "at", e->at_ms);
	evbuffer_add_printf(b, ",\"at_ms\":%" PRId64 ",", e->at_ms);
	outbox_format_str(b, "node", oe->node);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "queue_id", e->queue_id);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "message_id", e->message_id);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "sender", e->sender);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "recipient", e->recipient);
	evbuffer_add(b, ",\"recipients\":[", 15);
	for (i = 0; i < e->n_recipients; i++) {
		if (i > 0)
			evbuffer_add(b, ",", 1);
		outbox_format_str(b, NULL, e->recipients[i]);
	}
	evbuffer_add(b, "],", 2);
	outbox_format_str(b, "client", e->client);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "auth_user", e->auth_user);
	evbuffer_add_printf(b, ",\"size\":%" PRIu64 ",", e->size);
	outbox_format_str(b, "hop", e->hop);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "host", e->host);
	evbuffer_add_printf(b, ",\"code\":%" PRIu32 ",", e->code);
	outbox_format_str(b, "enhanced", e->enhanced);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "reply", e->reply);
	evbuffer_add_printf(b, ",\"duration_ms\":%" PRIu32 ",\"tls\":%s,",
	    e->duration_ms, e->tls ? "true" : "false");
	outbox_format_str(b, "dkim", e->dkim);
	evbuffer_add(b, "}", 1);
}

/* SendGrid's Event Webhook names (docs/webhooks.md has the table). */
static const struct {
	const char *kind, *event;
} outbox_format_sg_map[] = {
    {"received", "processed"},
    {"delivered", "delivered"},
    {"deferred", "deferred"},
    {"bounced", "bounce"},
    {"expired", "dropped"},
    {"provider_delivered", "delivered"},
    {"provider_deferred", "deferred"},
    {"provider_bounced", "bounce"},
    {"provider_dropped", "dropped"},
    {"complaint", "spamreport"},
    {"opened", "open"},
    {"clicked", "click"},
};

const char *
outbox_format_sendgrid_event(const char *kind)
{
	size_t i;

	for (i = 0;
	     i < sizeof(outbox_format_sg_map) / sizeof(*outbox_format_sg_map);
	     i++)
		if (strcmp(outbox_format_sg_map[i].kind, kind) == 0)
			return outbox_format_sg_map[i].event;
	return kind;
}

/* One SendGrid object per recipient: "received" carries the envelope,
 * the other kinds one recipient.  sg_event_id is the event id, with
 * ".<n>" for the n-th recipient of a received event. */
static void
outbox_format_sendgrid_one(struct evbuffer *b, const struct outbox_event *oe,
    const char *email, size_t idx, bool multi)
{
	const Sluice__Event *e = oe->ev;
	const char *sg = outbox_format_sendgrid_event(e->kind);

	evbuffer_add(b, "{", 1);
	outbox_format_str(b, "email", email);
	evbuffer_add_printf(b, ",\"timestamp\":%" PRId64 ",", e->at_ms / 1000);
	outbox_format_str(b, "event", sg);
	if (multi)
		evbuffer_add_printf(b,
		    ",\"sg_event_id\":\"%" PRIu64 "-%" PRIu64 ".%zu\",",
		    oe->node_id, e->seq, idx);
	else
		evbuffer_add_printf(b,
		    ",\"sg_event_id\":\"%" PRIu64 "-%" PRIu64 "\",",
		    oe->node_id, e->seq);
	outbox_format_str(b, "sg_message_id", e->queue_id);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "smtp-id", e->message_id);
	if (strcmp(sg, "bounce") == 0 || strcmp(sg, "dropped") == 0) {
		evbuffer_add(b, ",", 1);
		outbox_format_str(b, "reason", e->reply);
		evbuffer_add(b, ",", 1);
		outbox_format_str(b, "status", e->enhanced);
		if (strcmp(sg, "bounce") == 0)
			evbuffer_add(b, ",\"type\":\"bounce\"", 16);
	} else if (e->reply[0] != '\0') {
		evbuffer_add(b, ",", 1);
		outbox_format_str(b, "response", e->reply);
	}
	if (e->client[0] != '\0') {
		evbuffer_add(b, ",", 1);
		outbox_format_str(b, "ip", e->client);
	}
	evbuffer_add_printf(b, ",\"tls\":%d,", e->tls ? 1 : 0);
	/* sluice's own fields, for consumers that know them */
	outbox_format_str(b, "sluice_kind", e->kind);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "sluice_node", oe->node);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "sluice_sender", e->sender);
	evbuffer_add(b, ",", 1);
	outbox_format_str(b, "sluice_hop", e->hop);
	evbuffer_add_printf(b, ",\"sluice_code\":%" PRIu32 "}", e->code);
}

void
outbox_format_begin(
    struct evbuffer *out, enum outbox_shape shape, const char *endpoint)
{
	if (shape == OUTBOX_SHAPE_SENDGRID) {
		evbuffer_add(out, "[", 1);
		return;
	}
	evbuffer_add(out, "{", 1);
	outbox_format_str(out, "endpoint", endpoint);
	evbuffer_add(out, ",\"events\":[", 11);
}

void
outbox_format_add(struct evbuffer *out, enum outbox_shape shape,
    const struct outbox_event *oe, bool is_first)
{
	const Sluice__Event *e = oe->ev;
	size_t r;

	if (!is_first)
		evbuffer_add(out, ",", 1);
	if (shape == OUTBOX_SHAPE_SLUICE) {
		outbox_format_sluice_event(out, oe);
		return;
	}
	if (e->recipient[0] != '\0' || e->n_recipients == 0) {
		outbox_format_sendgrid_one(out, oe, e->recipient, 0, false);
		return;
	}
	for (r = 0; r < e->n_recipients; r++) {
		if (r > 0)
			evbuffer_add(out, ",", 1);
		outbox_format_sendgrid_one(
		    out, oe, e->recipients[r], r, e->n_recipients > 1);
	}
}

void
outbox_format_end(struct evbuffer *out, enum outbox_shape shape)
{
	evbuffer_add(out, shape == OUTBOX_SHAPE_SENDGRID ? "]" : "]}",
	    shape == OUTBOX_SHAPE_SENDGRID ? 1 : 2);
}

void
outbox_format_payload(struct evbuffer *out, enum outbox_shape shape,
    const char *endpoint, const struct outbox_event *ev, size_t n)
{
	size_t i;

	outbox_format_begin(out, shape, endpoint);
	for (i = 0; i < n; i++)
		outbox_format_add(out, shape, &ev[i], i == 0);
	outbox_format_end(out, shape);
}

void
outbox_format_sign(const void *secret, size_t secretlen, int64_t ts,
    const void *body, size_t len, char sig[OUTBOX_SIG_LEN])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	char pre[24], digest[] = "SHA256";
	OSSL_PARAM params[2];
	EVP_MAC_CTX *c = NULL;
	EVP_MAC *m;
	size_t maclen = 0, i;
	int prelen;

	/* HMAC over two pieces ("<ts>." then the body) without copying the
	 * body: EVP_MAC (HMAC_CTX is deprecated in OpenSSL 3). */
	prelen = snprintf(pre, sizeof(pre), "%" PRId64 ".", ts);
	params[0] = OSSL_PARAM_construct_utf8_string("digest", digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((m = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (c = EVP_MAC_CTX_new(m)) == NULL ||
	    EVP_MAC_init(c, secret, secretlen, params) != 1 ||
	    EVP_MAC_update(c, (const unsigned char *)pre, (size_t)prelen) !=
	        1 ||
	    EVP_MAC_update(c, body, len) != 1 ||
	    EVP_MAC_final(c, mac, &maclen, sizeof(mac)) != 1 || maclen != 32)
		abort(); /* a libcrypto without HMAC-SHA256: a bug, loudly */
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	memcpy(sig, "v1=", 3);
	for (i = 0; i < maclen; i++)
		snprintf(sig + 3 + 2 * i, 3, "%02x", mac[i]);
}

int64_t
outbox_format_backoff_ms(int failures, int64_t max_ms, uint32_t rnd)
{
	int64_t base = 1000;
	int i;

	for (i = 1; i < failures && base < max_ms; i++)
		base *= 2;
	if (base > max_ms)
		base = max_ms;
	if (base < 2)
		return base;
	return base / 2 + (int64_t)(rnd % (uint32_t)(base / 2 + 1));
}
