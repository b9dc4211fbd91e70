/* signer.c - DKIM keys of a policy snapshot and the per-message choice
 * (signer.h).  Key selection: the From: domain exactly, then each parent
 * domain whose keys say subdomains (RFC 6376 d= may be a parent of the
 * From domain, and DMARC relaxed alignment accepts it).  Every key of the
 * chosen domain signs: RSA and Ed25519 side by side (RFC 8463 dual
 * signatures), and old and new selectors during a rotation. */
#include "signer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"
#include "log.h"

struct signer_key {
	const char *domain;         /* the snapshot's (the key's copy) */
	struct dkim_key *key;       /* NULL: did not load */
	const char *const *headers; /* NULL: the defaults */
	char **hdrv;
	bool required, subdomains;
	enum dkim_canon hcanon, bcanon;
	char err[120];
};

struct signer_domain {
	char *domain;
	uint64_t nsigned, nfailed;
};

struct signer {
	struct signer_key *keys;
	size_t nkeys;
	struct signer_domain *doms; /* one per key domain */
	size_t ndoms;
};

static struct signer_domain *
find_dom(const struct signer *s, const char *dom)
{
	for (size_t i = 0; s != NULL && i < s->ndoms; i++)
		if (strcasecmp(s->doms[i].domain, dom) == 0)
			return &s->doms[i];
	return NULL;
}

const char *
signer_outcome_name(enum signer_outcome o)
{
	switch (o) {
	case SIGNER_NONE:
		return "none";
	case SIGNER_SIGNED:
		return "signed";
	case SIGNER_FAILED_OPTIONAL:
		return "failed-unsigned";
	case SIGNER_FAILED_REQUIRED:
		return "failed-deferred";
	}
	return "?";
}

struct signer *
signer_new(const Sluice__Policy *p, const struct signer *prev)
{
	struct signer *s;
	size_t i, j;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (p == NULL || p->n_dkim == 0)
		return s;
	if ((s->keys = calloc(p->n_dkim, sizeof(*s->keys))) == NULL ||
	    (s->doms = calloc(p->n_dkim, sizeof(*s->doms))) == NULL) {
		free(s->keys);
		free(s);
		return NULL;
	}
	for (i = 0; i < p->n_dkim; i++) {
		const Sluice__DkimKey *d = p->dkim[i];
		struct signer_key *k = &s->keys[s->nkeys++];

		k->required = d->required;
		k->subdomains = d->subdomains;
		/* policy_check refused anything else: relaxed if unknown */
		if (dkim_canon_parse(d->canon, &k->hcanon, &k->bcanon) == -1)
			k->hcanon = k->bcanon = DKIM_RELAXED;
		k->key = dkim_key_new(d->domain, d->selector, d->private_key,
		    k->err, sizeof(k->err));
		if (k->key == NULL) {
			log_warn("dkim: key %s._domainkey.%s not usable: %s",
			    d->selector, d->domain, k->err);
			k->domain = strdup(d->domain);
		} else
			k->domain = dkim_key_domain(k->key);
		if (find_dom(s, d->domain) == NULL &&
		    (s->doms[s->ndoms].domain = strdup(d->domain)) != NULL) {
			const struct signer_domain *o =
			    find_dom(prev, d->domain);
			if (o != NULL) {
				s->doms[s->ndoms].nsigned = o->nsigned;
				s->doms[s->ndoms].nfailed = o->nfailed;
			}
			s->ndoms++;
		}
		if (d->n_headers > 0) {
			k->hdrv = calloc(d->n_headers + 1, sizeof(*k->hdrv));
			for (j = 0; k->hdrv != NULL && j < d->n_headers; j++)
				k->hdrv[j] = d->headers[j];
			k->headers = (const char *const *)k->hdrv;
		}
	}
	return s;
}

void
signer_free(struct signer *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nkeys; i++) {
		if (s->keys[i].key == NULL)
			free((char *)(uintptr_t)s->keys[i].domain);
		dkim_key_free(s->keys[i].key);
		free(s->keys[i].hdrv);
	}
	for (size_t i = 0; i < s->ndoms; i++)
		free(s->doms[i].domain);
	free(s->doms);
	free(s->keys);
	free(s);
}

void
signer_counts(const struct signer *s, signer_count_cb cb, void *arg)
{
	for (size_t i = 0; s != NULL && i < s->ndoms; i++)
		cb(s->doms[i].domain, s->doms[i].nsigned, s->doms[i].nfailed,
		    arg);
}

bool
signer_active(const struct signer *s)
{
	return s != NULL && s->nkeys > 0;
}

unsigned
signer_body_canons(const struct signer *s)
{
	/* Relaxed always: a key of a policy that arrives while the message
	 * streams in falls back to it (signer_sign). */
	unsigned m = DKIM_BODY_RELAXED;

	for (size_t i = 0; s != NULL && i < s->nkeys; i++)
		if (s->keys[i].bcanon == DKIM_SIMPLE)
			m |= DKIM_BODY_SIMPLE;
	return m;
}

/* The domain whose keys sign mail From: dom, or NULL. */
static const char *
pick_domain(const struct signer *s, const char *dom)
{
	const char *d;
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (strcasecmp(s->keys[i].domain, dom) == 0)
			return s->keys[i].domain;
	for (d = strchr(dom, '.'); d != NULL; d = strchr(d + 1, '.'))
		for (i = 0; i < s->nkeys; i++)
			if (s->keys[i].subdomains &&
			    strcasecmp(s->keys[i].domain, d + 1) == 0)
				return s->keys[i].domain;
	return NULL;
}

/* The value of tag t= in one field (up to ';' or the field's end). */
static size_t
tag_value(const char *f, const char *end, const char *t, const char **v)
{
	size_t tl = strlen(t);

	for (const char *p = f; p + tl < end; p++) {
		if ((p == f || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t') &&
		    strncmp(p, t, tl) == 0 && p[tl] == '=') {
			const char *e = p + tl + 1;
			while (e < end && *e != ';' && *e != '\r')
				e++;
			*v = p + tl + 1;
			return (size_t)(e - *v);
		}
	}
	return 0;
}

void
signer_describe(const char *fields, char *buf, size_t len)
{
	const char *f = fields, *next, *stop, *v;
	size_t n = 0, vl;

	buf[0] = '\0';
	while (f != NULL && *f != '\0') {
		/* a field ends at a CRLF not followed by WSP */
		for (next = f; (next = strstr(next, "\r\n")) != NULL; next += 2)
			if (next[2] != ' ' && next[2] != '\t')
				break;
		next = next != NULL ? next + 2 : f + strlen(f);
		/* tags before b= only: its base64 could look like "s=" */
		for (stop = f; stop + 2 < next; stop++)
			if ((stop[0] == ' ' || stop[0] == '\t') &&
			    stop[1] == 'b' && stop[2] == '=')
				break;
		if (n == 0 && (vl = tag_value(f, stop, "d", &v)) > 0)
			n = (size_t)snprintf(buf, len, "%.*s:", (int)vl, v);
		if (n > 0 && n < len && (vl = tag_value(f, stop, "s", &v)) > 0)
			n += (size_t)snprintf(buf + n, len - n, "%s%.*s",
			    buf[n - 1] == ':' ? "" : ",", (int)vl, v);
		f = next;
	}
}

static void
append(char **dst, const char *add)
{
	size_t a = *dst ? strlen(*dst) : 0, b = strlen(add);
	char *n = realloc(*dst, a + b + 1);

	if (n == NULL)
		return; /* the caller sees a short result as failure */
	memcpy(n + a, add, b + 1);
	*dst = n;
}

void
signer_sign(struct signer *s, struct dkim_sign *ds, int64_t now,
    struct signer_result *r)
{
	const char *from = ds != NULL ? dkim_sign_from_domain(ds) : NULL;
	const char *dom;
	struct signer_domain *sd;
	bool required = false, failed = false;
	size_t i, nsig = 0;

	memset(r, 0, sizeof(*r));
	if (s == NULL || from == NULL || (dom = pick_domain(s, from)) == NULL)
		return; /* SIGNER_NONE: nothing to sign for */
	snprintf(r->domain, sizeof(r->domain), "%s", dom);
	sd = find_dom(s, dom);
	for (i = 0; i < s->nkeys; i++) {
		struct signer_key *k = &s->keys[i];
		struct dkim_sign_params p = {
		    k->key, k->hcanon, k->bcanon, k->headers};
		char err[160], *h;

		if (strcasecmp(k->domain, dom) != 0)
			continue;
		required = required || k->required;
		if (!dkim_sign_has_body(ds, p.body_canon))
			p.body_canon = DKIM_RELAXED; /* policy changed since */
		if (k->key == NULL) {
			snprintf(r->err, sizeof(r->err), "key %s", k->err);
			failed = true;
			continue;
		}
		if ((h = dkim_sign_header(ds, &p, now, err, sizeof(err))) ==
		    NULL) {
			snprintf(r->err, sizeof(r->err), "%s", err);
			failed = true;
			continue;
		}
		append(&r->headers, h);
		free(h);
		nsig++;
		snprintf(r->selectors + strlen(r->selectors),
		    sizeof(r->selectors) - strlen(r->selectors), "%s%s",
		    nsig > 1 ? "," : "", dkim_key_selector(k->key));
	}
	/* One good signature is enough for DMARC; a key that failed beside
	 * it is logged by the caller. */
	if (nsig > 0 && r->headers != NULL) {
		r->outcome = SIGNER_SIGNED;
		if (sd != NULL)
			sd->nsigned++;
		if (!failed)
			r->err[0] = '\0';
		return;
	}
	free(r->headers);
	r->headers = NULL;
	r->selectors[0] = '\0';
	if (sd != NULL)
		sd->nfailed++;
	r->outcome = required ? SIGNER_FAILED_REQUIRED : SIGNER_FAILED_OPTIONAL;
}
