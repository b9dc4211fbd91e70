/* dkim.c - DKIM signing core (dkim.h): RFC 6376 canonicalisation
 * (3.4), the streaming body hash (3.7), header selection (5.4.2) and the
 * DKIM-Signature header (3.5); RSA-SHA256 and Ed25519-SHA256 (RFC 8463)
 * through OpenSSL EVP.  Pure: data in, header out, no I/O, no clock.
 * Called on the node's loop thread by the SMTP session (node/signer.c). */
#include "dkim.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define DKIM_FOLD       76 /* fold the signature header before this column */
#define DKIM_MAX_FIELDS 1000
#define DKIM_OUTBUF     4096

const char *const dkim_default_headers[] = {"from", "reply-to", "subject",
    "date", "to", "cc", "message-id", "in-reply-to", "references",
    "mime-version", "content-type", "content-transfer-encoding", NULL};

struct dkim_key {
	char *domain;
	char *selector;
	EVP_PKEY *pkey;
	enum dkim_alg alg;
};

/* One body canonicalisation, streamed into a SHA-256. */
struct dkim_body {
	enum dkim_canon canon;
	bool on;
	bool cr;        /* a CR whose LF has not come yet */
	bool wsp;       /* relaxed: whitespace held back in this line */
	bool content;   /* this line has output */
	uint64_t empty; /* empty lines held back (dropped at the end) */
	uint64_t total; /* octets output */
	EVP_MD_CTX *md; /* NULL: output goes to out (dkim_canon_body) */
	char *out;      /* growable, tests only */
	size_t outlen, outcap;
	char buf[DKIM_OUTBUF];
	size_t n;
	unsigned char hash[32];
};

struct dkim_field {
	size_t off, len; /* the whole field incl. its final CRLF */
	size_t name_len; /* name without trailing WSP; 0: no colon */
};

struct dkim_sign {
	/* header section */
	bool in_header;
	bool bol, bol_cr;
	bool over;
	char *hdr;
	size_t hlen, hmax;
	/* body */
	struct dkim_body body[2];
	bool finished;
	bool oom;
	/* parsed at finish */
	struct dkim_field *fields;
	size_t nfields;
	char from_domain[256];
	bool from_ok;
};

/* ------------------------------------------------------------ keys */

static void
errf(char *err, size_t errlen, const char *fmt, const char *arg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, fmt, arg);
}

struct dkim_key *
dkim_key_new(const char *domain, const char *selector, const char *pem,
    char *err, size_t errlen)
{
	struct dkim_key *k;
	BIO *bio;
	EVP_PKEY *pkey;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL) {
		errf(err, errlen, "%s", "out of memory");
		return NULL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL) {
		errf(err, errlen, "%s", "not a PEM private key");
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto oom;
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		/* RFC 8301 3.2: at least 1024 bits to verify */
		if (EVP_PKEY_get_bits(pkey) < 1024) {
			errf(err, errlen, "%s", "RSA key under 1024 bits");
			goto bad;
		}
		k->alg = DKIM_RSA_SHA256;
	} else if (EVP_PKEY_is_a(pkey, "ED25519"))
		k->alg = DKIM_ED25519_SHA256;
	else {
		errf(err, errlen, "%s", "key is neither RSA nor Ed25519");
		goto bad;
	}
	k->pkey = pkey;
	k->domain = strdup(domain);
	k->selector = strdup(selector);
	if (k->domain == NULL || k->selector == NULL) {
		dkim_key_free(k);
		errf(err, errlen, "%s", "out of memory");
		return NULL;
	}
	return k;
oom:
	errf(err, errlen, "%s", "out of memory");
bad:
	free(k);
	EVP_PKEY_free(pkey);
	return NULL;
}

void
dkim_key_free(struct dkim_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->domain);
	free(k->selector);
	free(k);
}

enum dkim_alg
dkim_key_alg(const struct dkim_key *k)
{
	return k->alg;
}

const char *
dkim_key_domain(const struct dkim_key *k)
{
	return k->domain;
}

const char *
dkim_key_selector(const struct dkim_key *k)
{
	return k->selector;
}

const char *
dkim_alg_name(enum dkim_alg a)
{
	return a == DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

/* ------------------------------------------------------------ body */

static void
body_flush(struct dkim_body *b)
{
	if (b->n == 0)
		return;
	if (b->md != NULL)
		EVP_DigestUpdate(b->md, b->buf, b->n);
	else {
		if (b->outlen + b->n > b->outcap) {
			size_t cap = (b->outlen + b->n) * 2;
			char *o = realloc(b->out, cap);
			if (o == NULL)
				abort(); /* tests only */
			b->out = o;
			b->outcap = cap;
		}
		memcpy(b->out + b->outlen, b->buf, b->n);
		b->outlen += b->n;
	}
	b->total += b->n;
	b->n = 0;
}

static inline void
body_out(struct dkim_body *b, char c)
{
	if (b->n == sizeof(b->buf))
		body_flush(b);
	b->buf[b->n++] = c;
}

/* A character that is not part of a line end (nor, relaxed, WSP). */
static inline void
body_char(struct dkim_body *b, char c)
{
	if (!b->content) {
		for (; b->empty > 0; b->empty--) {
			body_out(b, '\r');
			body_out(b, '\n');
		}
		b->content = true;
	}
	if (b->wsp) {
		/* RFC 6376 3.4.4: a WSP run inside a line becomes one SP */
		body_out(b, ' ');
		b->wsp = false;
	}
	body_out(b, c);
}

/* RFC 6376 3.4.3/3.4.4: lines end at CRLF only; trailing empty lines are
 * held back and dropped at the end; relaxed drops WSP at line ends. */
static void
body_feed(struct dkim_body *b, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = (char)p[i];

		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				b->wsp = false;
				if (b->content) {
					body_out(b, '\r');
					body_out(b, '\n');
					b->content = false;
				} else
					b->empty++;
				continue;
			}
			body_char(b, '\r'); /* a CR alone is data */
		}
		if (c == '\r')
			b->cr = true;
		else if (b->canon == DKIM_RELAXED && (c == ' ' || c == '\t'))
			b->wsp = true;
		else
			body_char(b, c);
	}
}

static void
body_end(struct dkim_body *b)
{
	unsigned int hl = 0;

	if (b->cr) {
		b->cr = false;
		body_char(b, '\r');
	}
	if (b->content) {
		/* RFC 6376 3.4.3: a last line without CRLF gets one */
		body_out(b, '\r');
		body_out(b, '\n');
		b->content = false;
	}
	body_flush(b);
	/* 3.4.3: the simple empty body is one CRLF; 3.4.4 (erratum 3133):
	 * the relaxed one is empty */
	if (b->canon == DKIM_SIMPLE && b->total == 0) {
		body_out(b, '\r');
		body_out(b, '\n');
		body_flush(b);
	}
	if (b->md != NULL)
		EVP_DigestFinal_ex(b->md, b->hash, &hl);
}

static int
body_init(struct dkim_body *b, enum dkim_canon canon, bool hash)
{
	memset(b, 0, sizeof(*b));
	b->canon = canon;
	b->on = true;
	if (!hash)
		return 0;
	if ((b->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1)
		return -1;
	return 0;
}

char *
dkim_canon_body(enum dkim_canon canon, const char *body, size_t len,
    size_t chunk, size_t *outlen)
{
	struct dkim_body b;

	body_init(&b, canon, false);
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	for (size_t off = 0; off < len; off += chunk)
		body_feed(&b, (const unsigned char *)body + off,
		    len - off < chunk ? len - off : chunk);
	body_end(&b);
	*outlen = b.outlen;
	if (b.out == NULL)
		b.out = calloc(1, 1);
	return b.out;
}

/* ---------------------------------------------------------- header */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 6376 3.4.2: name lowercased, unfolded, WSP runs to one SP, none at
 * the ends of the value or around the colon; CRLF at the end.  3.4.1
 * simple: the field unchanged. */
char *
dkim_canon_header(
    enum dkim_canon canon, const char *f, size_t len, size_t *outlen)
{
	char *o;
	size_t i, n = 0, colon;
	bool wsp = false, started = false;

	if ((o = malloc(len + 3)) == NULL)
		return NULL;
	if (canon == DKIM_SIMPLE) {
		memcpy(o, f, len);
		*outlen = len;
		return o;
	}
	for (colon = 0; colon < len && f[colon] != ':'; colon++)
		;
	for (i = 0; i < colon; i++)
		o[n++] = (char)tolower((unsigned char)f[i]);
	while (n > 0 && is_wsp(o[n - 1]))
		n--;
	if (colon < len) {
		o[n++] = ':';
		for (i = colon + 1; i < len; i++) {
			char c = f[i];
			if (c == '\r' || c == '\n')
				continue; /* unfold */
			if (is_wsp(c)) {
				wsp = true;
				continue;
			}
			if (wsp && started)
				o[n++] = ' ';
			wsp = false;
			started = true;
			o[n++] = c;
		}
	}
	o[n++] = '\r';
	o[n++] = '\n';
	*outlen = n;
	return o;
}

/* ---------------------------------------------------------- message */

struct dkim_sign *
dkim_sign_new(unsigned body_canons, size_t header_max)
{
	struct dkim_sign *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->in_header = true;
	s->bol = true;
	s->hmax = header_max > 0 ? header_max : DKIM_HEADER_MAX;
	for (int c = 0; c < 2; c++) {
		if ((body_canons & (1U << c)) == 0)
			continue;
		if (body_init(&s->body[c], (enum dkim_canon)c, true) == -1) {
			dkim_sign_free(s);
			return NULL;
		}
	}
	return s;
}

bool
dkim_sign_has_body(const struct dkim_sign *s, enum dkim_canon c)
{
	return s != NULL && s->body[c].on;
}

int
dkim_canon_parse(const char *s, enum dkim_canon *hdr, enum dkim_canon *body)
{
	if (s == NULL || s[0] == '\0' || strcmp(s, "relaxed/relaxed") == 0) {
		*hdr = *body = DKIM_RELAXED;
		return 0;
	}
	if (strcmp(s, "simple/simple") == 0) {
		*hdr = *body = DKIM_SIMPLE;
		return 0;
	}
	if (strcmp(s, "relaxed/simple") == 0) {
		*hdr = DKIM_RELAXED;
		*body = DKIM_SIMPLE;
		return 0;
	}
	return -1;
}

void
dkim_sign_free(struct dkim_sign *s)
{
	if (s == NULL)
		return;
	for (int c = 0; c < 2; c++)
		EVP_MD_CTX_free(s->body[c].md);
	free(s->hdr);
	free(s->fields);
	free(s);
}

static void
hdr_put(struct dkim_sign *s, char c)
{
	if (s->hlen >= s->hmax) {
		s->over = true;
		return;
	}
	if (s->hdr == NULL && (s->hdr = malloc(s->hmax)) == NULL) {
		s->oom = s->over = true;
		return;
	}
	s->hdr[s->hlen++] = c;
}

void
dkim_sign_update(struct dkim_sign *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;

	if (s->finished)
		return;
	/* The header section ends at the first empty line (RFC 5322 2.1);
	 * the body is everything after it. */
	for (; s->in_header && i < len; i++) {
		char c = (char)p[i];

		if (s->bol_cr) {
			s->bol_cr = false;
			if (c == '\n') {
				s->in_header = false;
				continue;
			}
			hdr_put(s, '\r');
			s->bol = false;
		}
		if (s->bol && c == '\r') {
			s->bol_cr = true;
			continue;
		}
		hdr_put(s, c);
		s->bol = c == '\n';
	}
	for (int c = 0; c < 2; c++)
		if (s->body[c].on && i < len)
			body_feed(&s->body[c], p + i, len - i);
}

/* Splits the header section into fields. */
static int
parse_fields(struct dkim_sign *s)
{
	size_t i = 0, cap = 0;

	while (i < s->hlen) {
		size_t start = i, colon = 0;
		bool has_colon = false;

		/* a field runs to the CRLF not followed by WSP */
		for (; i < s->hlen; i++) {
			if (!has_colon && s->hdr[i] == ':') {
				has_colon = true;
				colon = i;
			}
			if (s->hdr[i] == '\n' &&
			    (i + 1 >= s->hlen || !is_wsp(s->hdr[i + 1]))) {
				i++;
				break;
			}
		}
		if (s->nfields == cap) {
			struct dkim_field *f;
			if (cap == DKIM_MAX_FIELDS)
				return -1;
			cap = cap ? cap * 2 : 16;
			if (cap > DKIM_MAX_FIELDS)
				cap = DKIM_MAX_FIELDS;
			if ((f = realloc(s->fields, cap * sizeof(*f))) == NULL)
				return -1;
			s->fields = f;
		}
		s->fields[s->nfields].off = start;
		s->fields[s->nfields].len = i - start;
		if (has_colon) {
			size_t nl = colon - start;
			while (nl > 0 && is_wsp(s->hdr[start + nl - 1]))
				nl--;
			s->fields[s->nfields].name_len = nl;
		} else
			s->fields[s->nfields].name_len = 0;
		s->nfields++;
	}
	return 0;
}

static bool
field_is(
    const struct dkim_sign *s, const struct dkim_field *f, const char *name)
{
	size_t nl = strlen(name);

	return f->name_len == nl && strncasecmp(s->hdr + f->off, name, nl) == 0;
}

/* RFC 5322 3.4: the domain of the one mailbox in a From: value.  Quoted
 * strings and comments are skipped; an angle address wins over a bare
 * one; a list of mailboxes or a group is refused (DMARC would too). */
static bool
parse_from(const char *v, size_t len, char *dom, size_t domlen)
{
	size_t i, end = len, at = 0, n = 0;
	int depth = 0;
	bool quoted = false, angle = false, have_at = false;

	for (i = 0; i < len; i++) {
		char c = v[i];
		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '"')
			quoted = true;
		else if (c == '(')
			depth++;
		else if (c == ',' || c == ';' || (c == ':' && !angle))
			return false;
		else if (c == '<') {
			if (angle)
				return false;
			angle = true;
			have_at = false;
		} else if (c == '>' && angle && end == len)
			end = i;
		else if (c == '@' && (!angle || end == len)) {
			at = i;
			have_at = true;
		}
	}
	if (!have_at || quoted || depth != 0 || (angle && end == len))
		return false;
	for (i = at + 1; i < end && is_wsp(v[i]); i++)
		;
	for (; i < end; i++) {
		char c = v[i];
		if (is_wsp(c) || c == '\r' || c == '\n' || c == '(')
			break;
		if (!isalnum((unsigned char)c) && c != '-' && c != '.')
			return false;
		if (n + 1 >= domlen)
			return false;
		dom[n++] = (char)tolower((unsigned char)c);
	}
	dom[n] = '\0';
	return n > 0 && dom[0] != '.' && dom[n - 1] != '.' &&
	       strstr(dom, "..") == NULL;
}

static void
finish(struct dkim_sign *s)
{
	const struct dkim_field *from = NULL;

	if (s->finished)
		return;
	s->finished = true;
	for (int c = 0; c < 2; c++)
		if (s->body[c].on)
			body_end(&s->body[c]);
	if (s->bol_cr)
		hdr_put(s, '\r');
	if (s->over || parse_fields(s) == -1)
		return;
	for (size_t i = 0; i < s->nfields; i++) {
		if (!field_is(s, &s->fields[i], "from"))
			continue;
		if (from != NULL)
			return; /* two From fields: not signed */
		from = &s->fields[i];
	}
	if (from != NULL) {
		const char *f = s->hdr + from->off;
		const char *colon = memchr(f, ':', from->len);
		size_t vl = from->len - (size_t)(colon + 1 - f);

		s->from_ok = parse_from(
		    colon + 1, vl, s->from_domain, sizeof(s->from_domain));
	}
}

const char *
dkim_sign_from_domain(struct dkim_sign *s)
{
	finish(s);
	return s->from_ok ? s->from_domain : NULL;
}

/* ------------------------------------------------------- signature */

struct strbuf {
	char *p;
	size_t len, cap;
	size_t col; /* column of the current line */
	bool oom;
};

static void
sb_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	for (size_t i = 0; i < n; i++)
		b->col = s[i] == '\n'   ? 0
		         : s[i] == '\t' ? b->col + 8
		                        : b->col + 1;
}

static void
sb_str(struct strbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* A tag, folded onto a new line if it would pass the fold column. */
static void
sb_tag(struct strbuf *b, const char *tag)
{
	size_t n = strlen(tag);

	if (b->col + 1 + n > DKIM_FOLD)
		sb_str(b, "\r\n\t");
	else
		sb_str(b, " ");
	sb_add(b, tag, n);
}

static char *
b64(const unsigned char *p, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);

	if (o != NULL)
		EVP_EncodeBlock((unsigned char *)o, p, (int)n);
	return o;
}

/* RFC 6376 3.3: sign the SHA-256 of the canonical headers.  RSA: PKCS#1
 * v1.5 over that digest; RFC 8463 3: Ed25519 (pure) over the same 32
 * octets. */
static int
sign_digest(const struct dkim_key *k, const unsigned char *dg,
    unsigned char **sigp, size_t *siglen)
{
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *mc = NULL;
	unsigned char *sig = NULL;
	size_t n = 0;
	int rv = -1;

	if (k->alg == DKIM_RSA_SHA256) {
		if ((pc = EVP_PKEY_CTX_new(k->pkey, NULL)) == NULL ||
		    EVP_PKEY_sign_init(pc) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1 ||
		    EVP_PKEY_sign(pc, NULL, &n, dg, 32) != 1 ||
		    (sig = malloc(n)) == NULL ||
		    EVP_PKEY_sign(pc, sig, &n, dg, 32) != 1)
			goto out;
	} else {
		if ((mc = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestSignInit(mc, NULL, NULL, NULL, k->pkey) != 1 ||
		    EVP_DigestSign(mc, NULL, &n, dg, 32) != 1 ||
		    (sig = malloc(n)) == NULL ||
		    EVP_DigestSign(mc, sig, &n, dg, 32) != 1)
			goto out;
	}
	*sigp = sig;
	*siglen = n;
	sig = NULL;
	rv = 0;
out:
	free(sig);
	EVP_PKEY_CTX_free(pc);
	EVP_MD_CTX_free(mc);
	ERR_clear_error();
	return rv;
}

static bool
in_list(const char *const *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(l[i], name) == 0)
			return true;
	return false;
}

/* The h= list (5.4.2): every instance of each listed field present, From
 * once more. */
static const char **
pick_headers(const struct dkim_sign *s, const char *const *names, size_t *np)
{
	size_t n = 0, cap = s->nfields + 2, k;
	const char **h = calloc(cap, sizeof(*h));

	if (h == NULL)
		return NULL;
	for (k = 0; names[k] != NULL; k++) {
		size_t c = 0;
		if (in_list(names, k, names[k]))
			continue; /* listed twice */
		for (size_t i = 0; i < s->nfields; i++)
			if (field_is(s, &s->fields[i], names[k]))
				c++;
		if (strcasecmp(names[k], "from") == 0)
			c++; /* oversigned */
		for (; c > 0 && n < cap; c--)
			h[n++] = names[k];
	}
	*np = n;
	return h;
}

static int
hash_field(EVP_MD_CTX *md, enum dkim_canon canon, const char *f, size_t len,
    bool strip_crlf)
{
	size_t n;
	char *c = dkim_canon_header(canon, f, len, &n);

	if (c == NULL)
		return -1;
	if (strip_crlf && canon == DKIM_RELAXED && n >= 2)
		n -= 2;
	EVP_DigestUpdate(md, c, n);
	free(c);
	return 0;
}

char *
dkim_sign_header(struct dkim_sign *s, const struct dkim_sign_params *p,
    int64_t now, char *err, size_t errlen)
{
	const struct dkim_key *k = p->key;
	const char *const *names =
	    p->headers ? p->headers : dkim_default_headers;
	const struct dkim_body *body = &s->body[p->body_canon];
	struct strbuf b = {0};
	const char **h = NULL;
	bool *used = NULL;
	size_t nh = 0, siglen = 0;
	char tag[320], *bh = NULL, *sig64 = NULL;
	unsigned char dg[32], *sig = NULL;
	unsigned int dl = 0;
	EVP_MD_CTX *md = NULL;

	finish(s);
	if (s->over) {
		errf(err, errlen, "%s",
		    s->oom ? "out of memory"
		           : "header section too large to sign");
		return NULL;
	}
	if (!body->on || body->md == NULL) {
		errf(err, errlen, "%s", "body canonicalisation not hashed");
		return NULL;
	}
	if ((h = pick_headers(s, names, &nh)) == NULL ||
	    (used = calloc(s->nfields + 1, sizeof(*used))) == NULL ||
	    (bh = b64(body->hash, sizeof(body->hash))) == NULL)
		goto oom;

	sb_str(&b, "DKIM-Signature: v=1;");
	snprintf(tag, sizeof(tag), "a=%s;", dkim_alg_name(k->alg));
	sb_tag(&b, tag);
	snprintf(tag, sizeof(tag), "c=%s/%s;",
	    p->header_canon == DKIM_SIMPLE ? "simple" : "relaxed",
	    p->body_canon == DKIM_SIMPLE ? "simple" : "relaxed");
	sb_tag(&b, tag);
	snprintf(tag, sizeof(tag), "d=%.250s;", k->domain);
	sb_tag(&b, tag);
	snprintf(tag, sizeof(tag), "s=%.250s;", k->selector);
	sb_tag(&b, tag);
	snprintf(tag, sizeof(tag), "t=%" PRId64 ";", now);
	sb_tag(&b, tag);
	/* h= folds between names (RFC 6376 3.5: FWS around the colons) */
	for (size_t i = 0; i < nh; i++) {
		snprintf(tag, sizeof(tag), "%s%s%s", i == 0 ? "h=" : "", h[i],
		    i + 1 == nh ? ";" : ":");
		if (i == 0)
			sb_tag(&b, tag);
		else {
			if (b.col + strlen(tag) > DKIM_FOLD)
				sb_str(&b, "\r\n\t");
			sb_str(&b, tag);
		}
	}
	snprintf(tag, sizeof(tag), "bh=%s;", bh);
	sb_tag(&b, tag);
	sb_tag(&b, "b=");
	if (b.oom)
		goto oom;

	/* 3.7: the selected fields bottom-up, then this header with b=
	 * empty and no final CRLF */
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto oom;
	for (size_t i = 0; i < nh; i++) {
		for (size_t j = s->nfields; j-- > 0;) {
			const struct dkim_field *f = &s->fields[j];
			if (used[j] || !field_is(s, f, h[i]))
				continue;
			used[j] = true;
			if (hash_field(md, p->header_canon, s->hdr + f->off,
			        f->len, false) == -1)
				goto oom;
			break;
		}
	}
	if (hash_field(md, p->header_canon, b.p, b.len, true) == -1 ||
	    EVP_DigestFinal_ex(md, dg, &dl) != 1)
		goto oom;
	if (sign_digest(k, dg, &sig, &siglen) == -1) {
		errf(err, errlen, "%s", "signing failed (OpenSSL)");
		goto fail;
	}
	if ((sig64 = b64(sig, siglen)) == NULL)
		goto oom;
	/* the signature fills the line, then folds (FWS is allowed
	 * anywhere in the base64 of b=) */
	for (size_t i = 0, n = strlen(sig64); i < n;) {
		size_t room = b.col < DKIM_FOLD ? DKIM_FOLD - b.col : 0;
		if (room == 0) {
			sb_str(&b, "\r\n\t");
			continue;
		}
		if (room > n - i)
			room = n - i;
		sb_add(&b, sig64 + i, room);
		i += room;
	}
	sb_str(&b, "\r\n");
	if (b.oom)
		goto oom;
	free(h);
	free(used);
	free(bh);
	free(sig);
	free(sig64);
	EVP_MD_CTX_free(md);
	return b.p;
oom:
	errf(err, errlen, "%s", "out of memory");
fail:
	free(h);
	free(used);
	free(bh);
	free(sig);
	free(sig64);
	free(b.p);
	EVP_MD_CTX_free(md);
	return NULL;
}
