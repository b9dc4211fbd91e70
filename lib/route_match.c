/* route_match.c - route conditions, specificity and ties (route_match.h).
 *
 * Every condition's patterns nest or are disjoint (domains: exact inside
 * "*.suffix" inside shorter suffixes; senders: the same on the domain,
 * a literal local part inside "*"; networks: longer prefixes inside
 * shorter ones; names: equal or not).  So two routes that can match the
 * same mail share exactly the mail of one pattern per condition, the
 * narrower of the two, and a tie can be checked by looking for a route
 * that covers that intersection. */
#include "route_match.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "cidr.h"

/* Specificity of one pattern kind (0: no condition). */
#define SPEC_EXACT_DOMAIN 1000U /* above any "*.suffix" (1 + length) */
#define SPEC_LOCAL_PART   2000U /* a literal local part in a sender */

static const char *const dim_names[ROUTE_DIM_COUNT] = {
    "domain", "from", "user", "listener", "client"};

const char *
route_dim_name(enum route_dim d)
{
	return (unsigned)d < ROUTE_DIM_COUNT ? dim_names[d] : "?";
}

static bool
empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

void
route_ctx_client(struct route_ctx *c, const char *client)
{
	char buf[64];
	const char *s = client;
	size_t n;

	c->family = 0;
	if (empty(client))
		return;
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (e == NULL || (size_t)(e - s - 1) >= sizeof(buf))
			return;
		n = (size_t)(e - s - 1);
		memcpy(buf, s + 1, n);
		buf[n] = '\0';
	} else
		snprintf(buf, sizeof(buf), "%s", s);
	if (inet_pton(AF_INET, buf, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, c->addr) == 1)
		c->family = AF_INET6;
}

bool
route_domain_match(const char *pat, const char *d)
{
	size_t pl, dl;

	if (strcmp(pat, "*") == 0)
		return true;
	if (d == NULL)
		return false;
	if (strncmp(pat, "*.", 2) == 0) {
		pl = strlen(pat + 1); /* ".example.com" */
		dl = strlen(d);
		return dl > pl && strcasecmp(d + dl - pl, pat + 1) == 0;
	}
	return strcasecmp(pat, d) == 0;
}

/* Domain pattern a inside b (every domain a matches, b matches). */
static bool
domain_sub(const char *a, const char *b)
{
	if (strcmp(b, "*") == 0)
		return true;
	if (strcmp(a, "*") == 0)
		return false;
	if (strncmp(a, "*.", 2) != 0)
		return route_domain_match(b, a);
	if (strncmp(b, "*.", 2) != 0)
		return false; /* a wildcard is never inside one domain */
	return strcasecmp(a + 2, b + 2) == 0 || route_domain_match(b, a + 2);
}

static unsigned
domain_spec(const char *pat)
{
	if (empty(pat) || strcmp(pat, "*") == 0)
		return 0;
	if (strncmp(pat, "*.", 2) == 0)
		return 1 + (unsigned)strlen(pat + 2);
	return SPEC_EXACT_DOMAIN;
}

/* One route's conditions, parsed once for comparisons. */
struct rpat {
	const char *dom;    /* "*" when none */
	const char *slocal; /* literal local part, NULL: "*" */
	size_t slocal_len;
	const char *sdom; /* sender domain pattern, NULL: no condition */
	const char *user, *listener; /* NULL: none */
	bool has_client;
	struct cidr client;
	bool bad; /* a condition that cannot be parsed: matches nothing */
};

static void
rpat_sender(struct rpat *rp, const char *s)
{
	const char *at;

	if (empty(s) || strcmp(s, "*") == 0)
		return;
	if ((at = strrchr(s, '@')) == NULL || at == s || at[1] == '\0') {
		rp->bad = true;
		return;
	}
	rp->sdom = at + 1;
	if (at - s == 1 && s[0] == '*')
		return;
	rp->slocal = s;
	rp->slocal_len = (size_t)(at - s);
}

bool
route_sender_syntax(const char *s)
{
	const char *at = strrchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strcmp(at + 1, "*") == 0)
		return false;
	for (const char *q = s; q < at; q++)
		if (*q == ' ' || *q == '\t' || *q == '<' || *q == '>' ||
		    *q == '"' || (*q == '*' && at - s != 1))
			return false;
	return true;
}

static void
rpat_init(struct rpat *rp, const Sluice__Route *r)
{
	char why[128];

	memset(rp, 0, sizeof(*rp));
	rp->dom = empty(r->pattern) ? "*" : r->pattern;
	rpat_sender(rp, r->sender);
	rp->user = empty(r->user) ? NULL : r->user;
	rp->listener = empty(r->listener) ? NULL : r->listener;
	if (!empty(r->client)) {
		rp->has_client = true;
		if (cidr_parse(r->client, &rp->client, why, sizeof(why)) == -1)
			rp->bad = true;
	}
}

/* Specificity per condition, 0 where the route has none. */
static void
rpat_spec(const struct rpat *rp, unsigned spec[ROUTE_DIM_COUNT])
{
	spec[ROUTE_DIM_DOMAIN] = domain_spec(rp->dom);
	spec[ROUTE_DIM_SENDER] =
	    rp->sdom == NULL ? 0
	                     : (rp->slocal != NULL ? SPEC_LOCAL_PART : 0) +
	                           domain_spec(rp->sdom);
	spec[ROUTE_DIM_USER] = rp->user != NULL;
	spec[ROUTE_DIM_LISTENER] = rp->listener != NULL;
	spec[ROUTE_DIM_CLIENT] = rp->has_client ? 1 + rp->client.prefix : 0;
}

static int
rpat_mismatch(const struct rpat *rp, const struct route_ctx *c)
{
	const char *at;

	if (!route_domain_match(rp->dom, c->domain))
		return ROUTE_DIM_DOMAIN;
	if (rp->bad)
		return rp->has_client ? ROUTE_DIM_CLIENT : ROUTE_DIM_SENDER;
	if (rp->sdom != NULL) {
		if (empty(c->sender) || (at = strrchr(c->sender, '@')) == NULL)
			return ROUTE_DIM_SENDER;
		if (!route_domain_match(rp->sdom, at + 1))
			return ROUTE_DIM_SENDER;
		if (rp->slocal != NULL &&
		    ((size_t)(at - c->sender) != rp->slocal_len ||
		        strncasecmp(c->sender, rp->slocal, rp->slocal_len) !=
		            0))
			return ROUTE_DIM_SENDER;
	}
	if (rp->user != NULL &&
	    (empty(c->user) || strcmp(rp->user, c->user) != 0))
		return ROUTE_DIM_USER;
	if (rp->listener != NULL &&
	    (empty(c->listener) || strcmp(rp->listener, c->listener) != 0))
		return ROUTE_DIM_LISTENER;
	if (rp->has_client &&
	    (c->family == 0 || !cidr_contains(&rp->client, c->family, c->addr)))
		return ROUTE_DIM_CLIENT;
	return -1;
}

int
route_mismatch(const Sluice__Route *r, const struct route_ctx *c)
{
	struct rpat rp;

	rpat_init(&rp, r);
	return rpat_mismatch(&rp, c);
}

static int
rpat_cmp(const struct rpat *a, const struct rpat *b)
{
	unsigned sa[ROUTE_DIM_COUNT], sb[ROUTE_DIM_COUNT], na = 0, nb = 0;
	bool a_more = false, b_more = false;
	int d;

	rpat_spec(a, sa);
	rpat_spec(b, sb);
	for (d = 0; d < ROUTE_DIM_COUNT; d++) {
		na += sa[d] != 0;
		nb += sb[d] != 0;
	}
	if (na != nb)
		return na > nb ? 1 : -1;
	for (d = 0; d < ROUTE_DIM_COUNT; d++) {
		if ((sa[d] == 0) != (sb[d] == 0))
			return ROUTE_CMP_INCOMPARABLE; /* other conditions */
		a_more |= sa[d] > sb[d];
		b_more |= sb[d] > sa[d];
	}
	if (a_more && b_more)
		return ROUTE_CMP_INCOMPARABLE;
	return a_more ? 1 : b_more ? -1 : 0;
}

int
route_cmp(const Sluice__Route *a, const Sluice__Route *b)
{
	struct rpat pa, pb;

	rpat_init(&pa, a);
	rpat_init(&pb, b);
	return rpat_cmp(&pa, &pb);
}

unsigned
route_nconds(const Sluice__Route *r)
{
	unsigned spec[ROUTE_DIM_COUNT], n = 0;
	struct rpat rp;

	rpat_init(&rp, r);
	rpat_spec(&rp, spec);
	for (int d = 0; d < ROUTE_DIM_COUNT; d++)
		n += spec[d] != 0;
	return n;
}

static const Sluice__User *
user_of(const Sluice__Policy *p, const char *name)
{
	size_t i;

	if (empty(name))
		return NULL;
	for (i = 0; i < p->n_users; i++)
		if (strcmp(p->users[i]->name, name) == 0)
			return p->users[i];
	return NULL;
}

const Sluice__Route *
route_select(const Sluice__Policy *p, const struct route_ctx *c)
{
	const Sluice__Route *best = NULL;
	const Sluice__User *u;
	struct rpat bp, rp;
	size_t i;

	if (p == NULL)
		return NULL;
	/* With a policy free of ties the matching routes have one most
	 * specific among them, which this scan finds (route_match.h). */
	for (i = 0; i < p->n_routes; i++) {
		rpat_init(&rp, p->routes[i]);
		if (rpat_mismatch(&rp, c) != -1)
			continue;
		if (best == NULL || rpat_cmp(&rp, &bp) == 1) {
			best = p->routes[i];
			bp = rp;
		}
	}
	if ((best == NULL || route_nconds(best) == 0) &&
	    (u = user_of(p, c->user)) != NULL && u->default_route != NULL &&
	    u->default_route->n_groups > 0)
		return u->default_route;
	return best;
}

const Sluice__Route *
route_match(const Sluice__Policy *p, const char *domain)
{
	struct route_ctx c;

	memset(&c, 0, sizeof(c));
	c.domain = domain;
	return route_select(p, &c);
}

bool
route_is_default(const Sluice__Policy *p, const Sluice__Route *r)
{
	size_t i;

	for (i = 0; p != NULL && r != NULL && i < p->n_users; i++)
		if (p->users[i]->default_route == r)
			return true;
	return false;
}

/* ------------------------------------------------------------- ties */

static bool
sender_sub(const struct rpat *a, const struct rpat *b)
{
	if (b->sdom == NULL)
		return true;
	if (a->sdom == NULL || !domain_sub(a->sdom, b->sdom))
		return false;
	if (b->slocal == NULL)
		return true;
	return a->slocal != NULL && a->slocal_len == b->slocal_len &&
	       strncasecmp(a->slocal, b->slocal, a->slocal_len) == 0;
}

static bool
client_sub(const struct rpat *a, const struct rpat *b)
{
	if (!b->has_client)
		return true;
	return a->has_client && a->client.family == b->client.family &&
	       a->client.prefix >= b->client.prefix &&
	       cidr_contains(&b->client, a->client.family, a->client.addr);
}

static bool
name_sub(const char *a, const char *b)
{
	return b == NULL || (a != NULL && strcmp(a, b) == 0);
}

/* Every message a matches, b matches. */
static bool
rpat_sub(const struct rpat *a, const struct rpat *b)
{
	return domain_sub(a->dom, b->dom) && sender_sub(a, b) &&
	       name_sub(a->user, b->user) &&
	       name_sub(a->listener, b->listener) && client_sub(a, b);
}

/* The mail both a and b match, as one pattern per condition; false when
 * there is none. */
static bool
rpat_meet(const struct rpat *a, const struct rpat *b, struct rpat *m)
{
	if (a->bad || b->bad)
		return false;
	memset(m, 0, sizeof(*m));
	if (domain_sub(a->dom, b->dom))
		m->dom = a->dom;
	else if (domain_sub(b->dom, a->dom))
		m->dom = b->dom;
	else
		return false;
	if (a->sdom == NULL || b->sdom == NULL) {
		const struct rpat *s = a->sdom != NULL ? a : b;
		m->sdom = s->sdom;
		m->slocal = s->slocal;
		m->slocal_len = s->slocal_len;
	} else {
		if (domain_sub(a->sdom, b->sdom))
			m->sdom = a->sdom;
		else if (domain_sub(b->sdom, a->sdom))
			m->sdom = b->sdom;
		else
			return false;
		if (a->slocal != NULL && b->slocal != NULL &&
		    (a->slocal_len != b->slocal_len ||
		        strncasecmp(a->slocal, b->slocal, a->slocal_len) != 0))
			return false;
		m->slocal = a->slocal != NULL ? a->slocal : b->slocal;
		m->slocal_len =
		    a->slocal != NULL ? a->slocal_len : b->slocal_len;
	}
	if (a->user != NULL && b->user != NULL && strcmp(a->user, b->user))
		return false;
	m->user = a->user != NULL ? a->user : b->user;
	if (a->listener != NULL && b->listener != NULL &&
	    strcmp(a->listener, b->listener) != 0)
		return false;
	m->listener = a->listener != NULL ? a->listener : b->listener;
	if (a->has_client && b->has_client) {
		if (client_sub(a, b))
			m->client = a->client;
		else if (client_sub(b, a))
			m->client = b->client;
		else
			return false;
		m->has_client = true;
	} else if (a->has_client || b->has_client) {
		m->client = a->has_client ? a->client : b->client;
		m->has_client = true;
	}
	return true;
}

static void
rpat_describe(const struct rpat *rp, char *buf, size_t len)
{
	char net[64];
	size_t off;

	off = (size_t)snprintf(buf, len, "%s", rp->dom);
	if (rp->sdom != NULL && off < len)
		off += (size_t)snprintf(buf + off, len - off, " from=%.*s@%s",
		    rp->slocal != NULL ? (int)rp->slocal_len : 1,
		    rp->slocal != NULL ? rp->slocal : "*", rp->sdom);
	if (rp->user != NULL && off < len)
		off += (size_t)snprintf(
		    buf + off, len - off, " user=%s", rp->user);
	if (rp->listener != NULL && off < len)
		off += (size_t)snprintf(
		    buf + off, len - off, " listener=%s", rp->listener);
	if (rp->has_client && off < len) {
		cidr_format(&rp->client, net, sizeof(net));
		snprintf(buf + off, len - off, " client=%s", net);
	}
}

void
route_describe(const Sluice__Route *r, char *buf, size_t len)
{
	size_t off;

	off = (size_t)snprintf(buf, len, "%s", r->pattern);
	if (!empty(r->sender) && off < len)
		off += (size_t)snprintf(
		    buf + off, len - off, " from=%s", r->sender);
	if (!empty(r->user) && off < len)
		off +=
		    (size_t)snprintf(buf + off, len - off, " user=%s", r->user);
	if (!empty(r->listener) && off < len)
		off += (size_t)snprintf(
		    buf + off, len - off, " listener=%s", r->listener);
	if (!empty(r->client) && off < len)
		snprintf(buf + off, len - off, " client=%s", r->client);
}

static bool
str_eq(const char *a, const char *b, bool icase)
{
	a = a != NULL ? a : "";
	b = b != NULL ? b : "";
	return icase ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

bool
route_same_match(const Sluice__Route *a, const Sluice__Route *b)
{
	return str_eq(a->pattern, b->pattern, true) &&
	       str_eq(a->sender, b->sender, true) &&
	       str_eq(a->user, b->user, false) &&
	       str_eq(a->listener, b->listener, false) &&
	       str_eq(a->client, b->client, false);
}

int
route_check_ties(
    const Sluice__Policy *p, size_t *ia, size_t *ib, char *msg, size_t len)
{
	struct rpat a, b, c, m;
	char da[300], db[300], dm[300];
	size_t i, j, k;
	int cmp;
	bool covered;

	for (i = 0; i < p->n_routes; i++) {
		rpat_init(&a, p->routes[i]);
		for (j = i + 1; j < p->n_routes; j++) {
			rpat_init(&b, p->routes[j]);
			cmp = rpat_cmp(&a, &b);
			if (cmp == 1 || cmp == -1 || !rpat_meet(&a, &b, &m))
				continue;
			/* cmp 0 and overlapping: the same conditions */
			covered = false;
			for (k = 0; cmp != 0 && k < p->n_routes && !covered;
			     k++) {
				rpat_init(&c, p->routes[k]);
				covered = rpat_cmp(&c, &a) == 1 &&
				          rpat_cmp(&c, &b) == 1 &&
				          rpat_sub(&m, &c);
			}
			if (covered)
				continue;
			*ia = i;
			*ib = j;
			route_describe(p->routes[i], da, sizeof(da));
			route_describe(p->routes[j], db, sizeof(db));
			rpat_describe(&m, dm, sizeof(dm));
			if (cmp == 0)
				snprintf(
				    msg, len, "route '%s' is listed twice", db);
			else
				snprintf(msg, len,
				    "routes '%s' and '%s' tie: mail matching "
				    "'%s' matches both and neither is more "
				    "specific; add a route for exactly that "
				    "(it wins over both) or narrow one of them",
				    da, db, dm);
			return -1;
		}
	}
	return 0;
}

const Sluice__Hop *
route_hop(const Sluice__Policy *p, const char *name)
{
	size_t i;

	if (p == NULL)
		return NULL;
	for (i = 0; i < p->n_hops; i++)
		if (strcmp(p->hops[i]->name, name) == 0)
			return p->hops[i];
	return NULL;
}
