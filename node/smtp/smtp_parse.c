/* smtp_parse.c - pure parsers of inbound SMTP (smtp_parse.h).  Every
 * function takes bytes and ceilings and returns a verdict; nothing here
 * allocates, logs or touches a socket.  Refusals carry the reply the
 * session sends, so the wording lives next to the rule it enforces. */
#include "smtp_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const struct {
	const char *name;
	enum smtp_verb verb;
} smtp_verbs[] = {
    {"HELO", SMTP_HELO},
    {"EHLO", SMTP_EHLO},
    {"MAIL", SMTP_MAIL},
    {"RCPT", SMTP_RCPT},
    {"DATA", SMTP_DATA},
    {"BDAT", SMTP_BDAT},
    {"RSET", SMTP_RSET},
    {"NOOP", SMTP_NOOP},
    {"QUIT", SMTP_QUIT},
    {"VRFY", SMTP_VRFY},
    {"EXPN", SMTP_EXPN},
    {"HELP", SMTP_HELP},
    {"STARTTLS", SMTP_STARTTLS},
    {"AUTH", SMTP_AUTH},
};

const char *
smtp_verb_name(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (smtp_verbs[i].verb == v)
			return smtp_verbs[i].name;
	return "UNKNOWN";
}

int
smtp_cmd_line(const char *buf, size_t len, size_t max, size_t *used,
    size_t *linelen, bool *bad, bool *ended)
{
	size_t scan = len < max ? len : max, i, n;
	const char *lf;

	*used = 0;
	*linelen = 0;
	*bad = false;
	*ended = false;
	if ((lf = memchr(buf, '\n', scan)) == NULL) {
		if (len < max)
			return 0;
		/* RFC 5321 4.5.3.1.4: 512 octets.  Discard through the
		 * line's end, wherever it is. */
		if ((lf = memchr(buf, '\n', len)) != NULL) {
			*used = (size_t)(lf - buf) + 1;
			*ended = true;
		} else
			*used = len;
		return -1;
	}
	n = (size_t)(lf - buf);
	*used = n + 1;
	*ended = true;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	else
		*bad = true; /* bare LF as a line end */
	for (i = 0; i < n; i++)
		if (buf[i] == '\r' || buf[i] == '\0')
			*bad = true;
	*linelen = n;
	return 1;
}

void
smtp_cmd_parse(const char *line, struct smtp_cmd *cmd)
{
	size_t n = strcspn(line, " "), i;

	cmd->verb = SMTP_UNKNOWN;
	cmd->arg = line[n] == ' ' ? line + n + 1 : line + n;
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (strlen(smtp_verbs[i].name) == n &&
		    strncasecmp(smtp_verbs[i].name, line, n) == 0) {
			cmd->verb = smtp_verbs[i].verb;
			return;
		}
}

/* ------------------------------------------------------------- paths */

static void
set_err(struct smtp_reply *err, int code, const char *enh, const char *text)
{
	err->code = code;
	snprintf(err->enhanced, sizeof(err->enhanced), "%s", enh);
	snprintf(err->text, sizeof(err->text), "%s", text);
}

/* RFC 5322 atext */
static bool
is_atext(unsigned char c)
{
	return c != 0 &&
	       (isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Parses "<...>" at p.  On success *end points after '>'. */
static int
parse_path(const char *p, struct smtp_path *path, const char **end,
    bool is_rcpt, struct smtp_reply *err)
{
	const char *enh = is_rcpt ? "5.1.3" : "5.1.7";
	const char *text = is_rcpt ? "Bad recipient address syntax"
	                           : "Bad sender address syntax";
	const char *q, *local, *dom;
	size_t llen, dlen, label;
	unsigned char c;

	memset(path, 0, sizeof(*path));
	if (*p != '<')
		goto bad;
	p++;
	if (*p == '>') {
		*end = p + 1;
		return 0; /* the null path; callers decide */
	}
	if (*p == '@') {
		/* RFC 5321 4.1.2 A-d-l: "@one,@two:" - accepted by the
		 * grammar, ignored (3.6.1), refused for untrusted clients */
		path->flags |= SMTP_ADDR_ROUTE;
		while (*p == '@') {
			p++;
			while (isalnum((unsigned char)*p) || *p == '-' ||
			       *p == '.' || *p == '[' || *p == ']')
				p++;
			if (*p == ',')
				p++;
		}
		if (*p != ':')
			goto bad;
		p++;
	}
	local = p;
	if (*p == '"') {
		/* quoted-string local part: qtext or quoted-pair */
		for (p++; *p != '"'; p++) {
			c = (unsigned char)*p;
			if (c == '\0')
				goto bad;
			if (c == '\\') {
				p++;
				if (*p < 32 || *p == 127)
					goto bad;
				if (*p == '@')
					path->flags |= SMTP_ADDR_QUOTED_AT;
				continue;
			}
			if (c < 32 || c == 127)
				goto bad;
			if (c == '@')
				path->flags |= SMTP_ADDR_QUOTED_AT;
			if (c >= 128)
				path->flags |= SMTP_ADDR_UTF8;
		}
		p++;
	} else {
		/* dot-atom: no empty atoms */
		for (q = p; *p != '@' && *p != '>'; p++) {
			c = (unsigned char)*p;
			if (c == '.') {
				if (p == q || p[-1] == '.')
					goto bad;
				continue;
			}
			if (c >= 128)
				path->flags |= SMTP_ADDR_UTF8;
			else if (!is_atext(c))
				goto bad;
			if (c == '%')
				path->flags |= SMTP_ADDR_PERCENT;
			if (c == '!')
				path->flags |= SMTP_ADDR_BANG;
		}
		if (p == q || p[-1] == '.')
			goto bad;
	}
	llen = (size_t)(p - local);
	if (*p != '@')
		goto bad; /* no domain: relays have no local users */
	dom = ++p;
	if (*p == '[') {
		/* address literal, RFC 5321 4.1.3 */
		for (p++; *p != ']'; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' &&
			    *p != ':')
				goto bad;
		p++;
	} else {
		for (label = 0; *p != '>'; p++) {
			c = (unsigned char)*p;
			if (c == '.') {
				if (label == 0)
					goto bad;
				label = 0;
				continue;
			}
			if (c >= 128)
				path->flags |= SMTP_ADDR_UTF8;
			else if (!isalnum(c) && c != '-')
				goto bad;
			if (++label > 63)
				goto bad;
		}
		if (label == 0)
			goto bad;
	}
	if (*p != '>')
		goto bad;
	dlen = (size_t)(p - dom);
	/* RFC 5321 4.5.3.1.1-3: local part 64, domain 255, path 256 */
	if (llen > 64 || dlen > 255 || llen + 1 + dlen + 2 > SMTP_PATH_MAX) {
		set_err(err, 501, "5.1.3", "Address too long");
		return -1;
	}
	memcpy(path->addr, local, llen + 1 + dlen);
	path->addr[llen + 1 + dlen] = '\0';
	*end = p + 1;
	return 0;
bad:
	set_err(err, 501, enh, text);
	return -1;
}

/* Matches "FROM:" / "TO:" and one optional space. */
static const char *
skip_keyword(const char *arg, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(arg, kw, n) != 0)
		return NULL;
	arg += n;
	if (*arg == ' ')
		arg++;
	return arg;
}

int
smtp_parse_mail(const char *arg, struct smtp_path *path,
    struct smtp_mail_params *mp, struct smtp_reply *err)
{
	const char *p, *end, *kw, *val;
	char word[64];
	size_t n, klen;

	memset(mp, 0, sizeof(*mp));
	mp->size = -1;
	if ((p = skip_keyword(arg, "FROM:")) == NULL) {
		set_err(err, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return -1;
	}
	if (parse_path(p, path, &end, false, err) == -1)
		return -1;
	p = end;
	while (*p != '\0') {
		if (*p != ' ')
			goto syntax;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, " ");
		if (n >= sizeof(word))
			goto unsupported;
		memcpy(word, p, n);
		word[n] = '\0';
		p += n;
		kw = word;
		val = strchr(word, '=');
		klen = val != NULL ? (size_t)(val - word) : n;
		if (val != NULL)
			val++;
		if (klen == 4 && strncasecmp(kw, "SIZE", 4) == 0 &&
		    val != NULL) {
			if (*val == '\0' || strlen(val) > 18 ||
			    strspn(val, "0123456789") != strlen(val))
				goto syntax;
			mp->size = 0;
			for (; *val != '\0'; val++)
				mp->size = mp->size * 10 + (*val - '0');
		} else if (klen == 4 && strncasecmp(kw, "BODY", 4) == 0 &&
		           val != NULL) {
			if (strcasecmp(val, "7BIT") == 0)
				mp->body = SMTP_BODY_7BIT;
			else if (strcasecmp(val, "8BITMIME") == 0)
				mp->body = SMTP_BODY_8BITMIME;
			else
				goto unsupported;
		} else if (klen == 8 && strncasecmp(kw, "SMTPUTF8", 8) == 0 &&
		           val == NULL) {
			mp->smtputf8 = true;
		} else if (klen == 4 && strncasecmp(kw, "AUTH", 4) == 0 &&
		           val != NULL) {
			/* RFC 4954 5: accepted and not trusted */
		} else
			goto unsupported;
	}
	return 0;
syntax:
	set_err(err, 501, "5.5.4", "Syntax error in parameters");
	return -1;
unsupported:
	set_err(err, 555, "5.5.4", "Unsupported MAIL parameter");
	return -1;
}

int
smtp_parse_rcpt(const char *arg, struct smtp_path *path, struct smtp_reply *err)
{
	const char *p, *end;

	if ((p = skip_keyword(arg, "TO:")) == NULL) {
		set_err(err, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return -1;
	}
	if (parse_path(p, path, &end, true, err) == -1)
		return -1;
	if (path->addr[0] == '\0') {
		set_err(err, 501, "5.1.3", "Bad recipient address syntax");
		return -1;
	}
	while (*end == ' ')
		end++;
	if (*end != '\0') {
		set_err(err, 555, "5.5.4", "Unsupported RCPT parameter");
		return -1;
	}
	return 0;
}

int
smtp_path_check(const struct smtp_path *path, bool trusted, bool smtputf8,
    struct smtp_reply *err)
{
	if ((path->flags & SMTP_ADDR_UTF8) && !smtputf8) {
		/* RFC 6531 3.5 */
		set_err(
		    err, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
		return -1;
	}
	if (trusted)
		return 0;
	if (path->flags & SMTP_ADDR_ROUTE)
		set_err(err, 553, "5.1.3",
		    "Source routes not allowed (RFC 5321 3.6.1)");
	else if (path->flags & SMTP_ADDR_PERCENT)
		set_err(err, 553, "5.1.3", "Percent hack not allowed");
	else if (path->flags & SMTP_ADDR_BANG)
		set_err(err, 553, "5.1.3", "Bang paths not allowed");
	else if (path->flags & SMTP_ADDR_QUOTED_AT)
		set_err(
		    err, 553, "5.1.3", "Quoted local part with @ not allowed");
	else
		return 0;
	return -1;
}

/* -------------------------------------------------------------- DATA */

void
smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = SMTP_DATA_BOL; /* DATA's own CRLF starts a line */
	d->hmatch = true;
}

#if !defined(__SSE2__)
/* w with every octet c; whether any octet of w is zero (the classic
 * test: exact as to whether, which is all the caller asks). */
#define SMTP_OCTETS(c)   (UINT64_C(0x0101010101010101) * (uint8_t)(c))
#define SMTP_HAS_ZERO(w) (((w)-SMTP_OCTETS(1)) & ~(w)&SMTP_OCTETS(0x80))
#endif

/* The end of a run of body octets from i: the first CR, LF or NUL, or
 * len.  *eight is set when an octet of the run is over 127. */
static size_t
body_run(const char *in, size_t i, size_t len, bool *eight)
{
	size_t k = i;
	unsigned char acc = 0, u;

#if defined(__SSE2__)
	/* Sixteen octets at a time up to the first CR, LF or NUL; the
	 * octets before it are content, their top bits say 8-bit (the
	 * eight-octet SWAR scan below cost 70 ns per 80-octet line). */
	const __m128i cr = _mm_set1_epi8('\r');
	const __m128i lf = _mm_set1_epi8('\n');
	const __m128i nul = _mm_setzero_si128();
	__m128i v, hi = _mm_setzero_si128();
	unsigned stops;

	while (len - k >= 16) {
		v = _mm_loadu_si128((const __m128i *)(const void *)(in + k));
		stops = (unsigned)_mm_movemask_epi8(_mm_or_si128(
		    _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
		    _mm_cmpeq_epi8(v, nul)));
		if (stops != 0) {
			stops = (unsigned)__builtin_ctz(stops);
			if ((unsigned)_mm_movemask_epi8(v) &
			    ((1u << stops) - 1))
				acc = 0x80;
			k += stops;
			break;
		}
		hi = _mm_or_si128(hi, v);
		k += 16;
	}
	if (_mm_movemask_epi8(hi) != 0)
		acc = 0x80;
#else
	uint64_t w, acc8 = 0;

	/* Eight octets at a time while none is CR, LF or NUL (a zero
	 * octet test, exact: SMTP_HAS_ZERO). */
	while (len - k >= 8) {
		memcpy(&w, in + k, 8);
		if (SMTP_HAS_ZERO(w) | SMTP_HAS_ZERO(w ^ SMTP_OCTETS('\r')) |
		    SMTP_HAS_ZERO(w ^ SMTP_OCTETS('\n')))
			break;
		acc8 |= w;
		k += 8;
	}
	if (acc8 & SMTP_OCTETS(0x80))
		acc = 0x80;
#endif
	while (k < len && (u = (unsigned char)in[k]) != '\r' && u != '\n' &&
	       u != '\0') {
		acc |= u;
		k++;
	}
	*eight = (acc & 0x80) != 0;
	return k;
}

size_t
smtp_data_feed(
    struct smtp_data *d, const char *in, size_t len, char *out, size_t *outlen)
{
	size_t i, o = 0;
	char c;

	for (i = 0; i < len && d->state != SMTP_DATA_DONE; i++) {
		if (d->state == SMTP_DATA_MID && d->in_body) {
			/* The hot path: a run of body octets inside a line
			 * has nothing to decide but its length and whether
			 * any is 8-bit, so it is copied as a block; and a
			 * CRLF followed by a line that starts with content
			 * goes on in the run (the switch below took three
			 * turns per line end). */
			for (;;) {
				bool eight;
				size_t k = body_run(in, i, len, &eight);

				if (k > i) {
					memcpy(out + o, in + i, k - i);
					o += k - i;
					d->size += k - i;
					d->linelen += k - i;
					if (d->linelen > SMTP_TEXT_MAX - 2)
						d->toolong = true;
					if (eight)
						d->body8bit = true;
					i = k;
				}
				/* a line starting with a dot, or one whose
				 * start is not here yet, takes the switch */
				if (len - i < 3 || in[i] != '\r' ||
				    in[i + 1] != '\n' || in[i + 2] == '.')
					break;
				out[o++] = '\r';
				out[o++] = '\n';
				d->size += 2;
				d->linelen = 0;
				i += 2;
			}
			if (i == len)
				break;
		}
		c = in[i];
		switch (d->state) {
		case SMTP_DATA_BOL:
			if (c == '.') {
				/* RFC 5321 4.5.2: transparency */
				d->state = SMTP_DATA_DOT;
				d->linelen = 1;
				continue;
			}
			break;
		case SMTP_DATA_DOT:
			if (c == '\r') {
				d->state = SMTP_DATA_DOT_CR;
				continue;
			}
			/* the stuffed dot is dropped; c is content */
			break;
		case SMTP_DATA_DOT_CR:
			if (c == '\n') {
				d->state = SMTP_DATA_DONE;
				continue;
			}
			/* ".\r" not followed by LF: a bare CR, content */
			d->bare = true;
			out[o++] = '\r';
			d->size++;
			break;
		case SMTP_DATA_CR:
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				d->size += 2;
				d->state = SMTP_DATA_BOL;
				d->linelen = 0;
				if (!d->in_body) {
					/* an empty line ends the headers */
					d->in_body = d->hpos == 0;
					d->hpos = 0;
					d->hmatch = true;
				}
				continue;
			}
			d->bare = true; /* the previous CR was bare */
			out[o++] = '\r';
			d->size++;
			break;
		case SMTP_DATA_MID:
		case SMTP_DATA_DONE:
			break;
		}
		/* c inside a line */
		d->state = SMTP_DATA_MID;
		if (c == '\r') {
			d->state = SMTP_DATA_CR;
			continue;
		}
		if (c == '\n')
			d->bare = true; /* never a line end on its own */
		else if (c == '\0')
			d->nul = true;
		else if ((unsigned char)c > 127) {
			if (d->in_body)
				d->body8bit = true;
			else
				d->hdr8bit = true;
		}
		if (!d->in_body && d->hpos < 9) {
			/* RFC 5321 6.3: count the Received: fields */
			if (d->hmatch && (d->hpos < 8 ? c | 0x20 : c) !=
			                     "received:"[d->hpos])
				d->hmatch = false;
			else if (d->hmatch && d->hpos == 8)
				d->nreceived++;
			d->hpos++;
		}
		if (++d->linelen > SMTP_TEXT_MAX - 2)
			d->toolong = true;
		out[o++] = c;
		d->size++;
	}
	*outlen = o;
	return i;
}

bool
smtp_message_id(const char *msg, size_t len, char *out, size_t outlen)
{
	const char *p = msg, *end = msg + len, *eol;
	size_t o = 0;
	bool found = false, in_value = false;

	if (outlen == 0)
		return false;
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if (p == eol || (eol - p == 1 && *p == '\r'))
			break; /* the empty line ends the headers */
		if (in_value && (*p == ' ' || *p == '\t')) {
			/* folded continuation */
		} else if (in_value) {
			break;
		} else if (eol - p > 11 &&
		           strncasecmp(p, "Message-ID:", 11) == 0) {
			in_value = found = true;
			p += 11;
		} else {
			p = eol + 1;
			continue;
		}
		for (; p < eol; p++) {
			if (*p == '\r')
				continue;
			if ((*p == ' ' || *p == '\t') && o == 0)
				continue;
			if (o + 1 < outlen)
				out[o++] = *p == '\t' ? ' ' : *p;
		}
		p = eol + 1;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return found && o > 0;
}

/* -------------------------------------------------------------- SASL */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_val(char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64chars, c)) == NULL)
		return -1;
	return (int)(p - b64chars);
}

int
smtp_b64_decode(
    const char *in, size_t inlen, char *out, size_t outcap, size_t *outlen)
{
	size_t i, o = 0, pad = 0;
	int v[4], k;

	*outlen = 0;
	if (inlen % 4 != 0)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == inlen && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[k] = b64_val(in[i + k])) < 0)
				return -1;
		}
		if (o + 3 - pad > outcap)
			return -1;
		out[o++] = (char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (char)((v[1] & 0xf) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (char)((v[2] & 0x3) << 6 | v[3]);
	}
	*outlen = o;
	return 0;
}

void
smtp_b64_encode(const void *in, size_t inlen, char *out)
{
	const unsigned char *s = in;
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i < inlen; i += 3) {
		v = (unsigned)s[i] << 16;
		if (i + 1 < inlen)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < inlen)
			v |= s[i + 2];
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = i + 1 < inlen ? b64chars[v >> 6 & 63] : '=';
		out[o++] = i + 2 < inlen ? b64chars[v & 63] : '=';
	}
	out[o] = '\0';
}

static int
copy_item(const char *s, size_t n, char *out, size_t outlen)
{
	if (n == 0 || n >= outlen || memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int
smtp_sasl_plain(const char *dec, size_t len, char *user, size_t userlen,
    char *pass, size_t passlen)
{
	const char *z1, *z2, *end = dec + len;
	size_t zlen;

	if ((z1 = memchr(dec, '\0', len)) == NULL)
		return -1;
	if ((z2 = memchr(z1 + 1, '\0', (size_t)(end - z1 - 1))) == NULL)
		return -1;
	if (copy_item(z1 + 1, (size_t)(z2 - z1 - 1), user, userlen) == -1 ||
	    copy_item(z2 + 1, (size_t)(end - z2 - 1), pass, passlen) == -1)
		return -1;
	/* RFC 4616 2: an authzid other than the authcid is a proxy
	 * authorisation we do not grant */
	zlen = (size_t)(z1 - dec);
	if (zlen != 0 && (zlen != strlen(user) || memcmp(dec, user, zlen)))
		return -1;
	return 0;
}

int
smtp_sasl_login_item(const char *dec, size_t len, char *out, size_t outlen)
{
	return copy_item(dec, len, out, outlen);
}
