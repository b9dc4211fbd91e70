/* policy_check.c - one function per section; the first error wins. */
#include "policy_check.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "limit_table.h"
#include "oauth_conf.h"
#include "route_match.h"

static int perr(struct policy_error *e, const char *section, int index,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
perr(struct policy_error *e, const char *section, int index, const char *fmt,
    ...)
{
	va_list ap;

	e->section = section;
	e->index = index;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int
policy_check_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return -1;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr("._@+-", *s) == NULL)
			return -1;
	return 0;
}

static int
check_domain(const char *d)
{
	size_t n = strlen(d), label = 0;

	if (n == 0 || n > 253)
		return -1;
	for (; *d; d++) {
		if (*d == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum((unsigned char)*d) || *d == '-' ||
		           *d == '_' || (unsigned char)*d >= 0x80) {
			if (++label > 63)
				return -1;
		} else
			return -1;
	}
	return label == 0 ? -1 : 0;
}

int
policy_check_pattern(const char *p)
{
	if (strcmp(p, "*") == 0)
		return 0;
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	return check_domain(p);
}

int
policy_check_sender(const char *p)
{
	const char *at;

	if (strcmp(p, "*") == 0)
		return 0;
	if ((at = strrchr(p, '@')) == NULL)
		return -1;
	if (at != p && strcmp(p, "*") != 0) {
		/* local part: "*" or a plain dot-atom-ish string */
		for (const char *q = p; q < at; q++)
			if (isspace((unsigned char)*q) || *q == '<' ||
			    *q == '>' || *q == '"')
				return -1;
	}
	return policy_check_pattern(at + 1);
}

static int
check_networks(const Sluice__Policy *p, struct policy_error *e)
{
	struct cidr c;
	char why[200], canon[64];
	size_t i, j;

	for (i = 0; i < p->n_networks; i++) {
		if (cidr_parse(p->networks[i]->cidr, &c, why, sizeof(why)) ==
		    -1)
			return perr(e, "networks", (int)i, "%s", why);
		cidr_format(&c, canon, sizeof(canon));
		if (strcmp(canon, p->networks[i]->cidr) != 0)
			return perr(e, "networks", (int)i,
			    "'%s' is not canonical (write %s)",
			    p->networks[i]->cidr, canon);
		for (j = 0; j < i; j++)
			if (strcmp(p->networks[j]->cidr, canon) == 0)
				return perr(e, "networks", (int)i,
				    "network %s is listed twice", canon);
	}
	return 0;
}

static int
check_users(const Sluice__Policy *p, enum policy_check_mode mode,
    struct policy_error *e)
{
	const Sluice__User *u;
	size_t i, j;

	for (i = 0; i < p->n_users; i++) {
		u = p->users[i];
		if (policy_check_name(u->name) == -1)
			return perr(e, "users", (int)i,
			    "user name '%.64s' must be 1-64 characters of "
			    "letters, digits and ._@+-",
			    u->name);
		for (j = 0; j < i; j++)
			if (strcmp(p->users[j]->name, u->name) == 0)
				return perr(e, "users", (int)i,
				    "user '%s' is listed twice", u->name);
		if (u->password_hash[0] != '\0' &&
		    strncmp(u->password_hash, "$scrypt$", 8) != 0)
			return perr(e, "users", (int)i,
			    "user '%s': password_hash is not an scrypt hash",
			    u->name);
		if (u->password_hash[0] == '\0' &&
		    (mode == POLICY_CHECK_SNAPSHOT || !u->has_password))
			return perr(e, "users", (int)i,
			    "user '%s' has no password", u->name);
		if (u->n_senders == 0)
			return perr(e, "users", (int)i,
			    "user '%s' may send as nobody: give at least one "
			    "sender pattern",
			    u->name);
		for (j = 0; j < u->n_senders; j++)
			if (policy_check_sender(u->senders[j]) == -1)
				return perr(e, "users", (int)i,
				    "user '%s': bad sender pattern '%.100s' "
				    "(use *, *@domain or local@domain)",
				    u->name, u->senders[j]);
	}
	return 0;
}

static int
check_hops(const Sluice__Policy *p, enum policy_check_mode mode,
    struct policy_error *e)
{
	const Sluice__Hop *h;
	size_t i, j;

	for (i = 0; i < p->n_hops; i++) {
		h = p->hops[i];
		if (policy_check_name(h->name) == -1)
			return perr(e, "hops", (int)i,
			    "hop name '%.64s' must be 1-64 characters of "
			    "letters, digits and ._@+-",
			    h->name);
		for (j = 0; j < i; j++)
			if (strcmp(p->hops[j]->name, h->name) == 0)
				return perr(e, "hops", (int)i,
				    "hop '%s' is listed twice", h->name);
		if (strcmp(h->name, "mx") == 0) {
			if (h->host[0] != '\0')
				return perr(e, "hops", (int)i,
				    "hop 'mx' delivers by MX lookup and takes "
				    "no host");
			continue;
		}
		if (h->host[0] == '\0' || check_domain(h->host) == -1) {
			/* an IP literal is fine too */
			struct cidr c;
			char why[128];
			if (h->host[0] == '\0' ||
			    cidr_parse(h->host, &c, why, sizeof(why)) == -1)
				return perr(e, "hops", (int)i,
				    "hop '%s': host '%.100s' is not a host "
				    "name or address",
				    h->name, h->host);
		}
		if (h->port == 0 || h->port > 65535)
			return perr(e, "hops", (int)i,
			    "hop '%s': port must be 1..65535", h->name);
		if (h->tls < SLUICE__TLS_MODE__TLS_NONE ||
		    h->tls > SLUICE__TLS_MODE__TLS_SMTPS)
			return perr(e, "hops", (int)i,
			    "hop '%s': unknown TLS mode", h->name);
		if (h->weight > 1000)
			return perr(e, "hops", (int)i,
			    "hop '%s': weight must be 0..1000", h->name);
		if (h->max_conn > 10000)
			return perr(e, "hops", (int)i,
			    "hop '%s': max_conn must be 0..10000", h->name);
		if (h->secret[0] != '\0' && h->auth_user[0] == '\0')
			return perr(e, "hops", (int)i,
			    "hop '%s': a secret needs an AUTH user", h->name);
		if (mode == POLICY_CHECK_SNAPSHOT && h->keep_secret)
			return perr(e, "hops", (int)i,
			    "hop '%s': snapshot cannot keep a secret", h->name);
		if (h->oauth2[0] != '\0') {
			char buf[160];
			const char *why = oauth_conf_problem(h,
			    h->secret[0] != '\0' ||
			        (mode == POLICY_CHECK_APPLY &&
			            (h->keep_secret || h->has_secret)),
			    buf, sizeof(buf));

			if (why != NULL)
				return perr(e, "hops", (int)i, "hop '%s': %s",
				    h->name, why);
		} else if (h->oauth2_cert || h->oauth2_client_id[0] != '\0' ||
		           h->oauth2_tenant[0] != '\0' ||
		           h->oauth2_token_url[0] != '\0' ||
		           h->oauth2_scope[0] != '\0')
			return perr(e, "hops", (int)i,
			    "hop '%s': OAuth2 settings without oauth2 "
			    "(m365|google)",
			    h->name);
	}
	return 0;
}

/* The hop groups of a route: at least one, none empty, known hops. */
static int
check_groups(const Sluice__Policy *p, const Sluice__Route *r,
    const char *section, int i, const char *what, struct policy_error *e)
{
	size_t j, k;

	if (r->n_groups == 0)
		return perr(e, section, i, "%s names no hop", what);
	for (j = 0; j < r->n_groups; j++) {
		if (r->groups[j]->n_hops == 0)
			return perr(e, section, i, "%s: empty hop group", what);
		for (k = 0; k < r->groups[j]->n_hops; k++) {
			const char *hn = r->groups[j]->hops[k];
			if (strcmp(hn, "mx") != 0 && route_hop(p, hn) == NULL)
				return perr(e, section, i,
				    "%s names unknown hop '%.64s'", what, hn);
		}
	}
	return 0;
}

static int
check_routes(const Sluice__Policy *p, struct policy_error *e)
{
	const Sluice__Route *r;
	struct cidr c;
	char what[400], why[200], canon[64], msg[sizeof(e->msg)];
	size_t i, a, b;

	for (i = 0; i < p->n_routes; i++) {
		r = p->routes[i];
		if (policy_check_pattern(r->pattern) == -1)
			return perr(e, "routes", (int)i,
			    "route pattern '%.100s' must be *, *.domain or "
			    "domain",
			    r->pattern);
		route_describe(r, what, sizeof(what));
		if (r->sender[0] != '\0' &&
		    (!route_sender_syntax(r->sender) ||
		        policy_check_pattern(strrchr(r->sender, '@') + 1) ==
		            -1))
			return perr(e, "routes", (int)i,
			    "route '%.200s': sender '%.100s' must be "
			    "local@domain, *@domain or *@*.domain",
			    what, r->sender);
		if (r->user[0] != '\0' && policy_check_name(r->user) == -1)
			return perr(e, "routes", (int)i,
			    "route '%.200s': '%.64s' is not a user name", what,
			    r->user);
		if (r->listener[0] != '\0' &&
		    policy_check_name(r->listener) == -1)
			return perr(e, "routes", (int)i,
			    "route '%.200s': listener name '%.64s' must be "
			    "1-64 characters of letters, digits and ._@+-",
			    what, r->listener);
		if (r->client[0] != '\0') {
			if (cidr_parse(r->client, &c, why, sizeof(why)) == -1)
				return perr(e, "routes", (int)i,
				    "route '%.200s': %s", what, why);
			cidr_format(&c, canon, sizeof(canon));
			if (strcmp(canon, r->client) != 0)
				return perr(e, "routes", (int)i,
				    "route '%.200s': client '%s' is not "
				    "canonical (write %s)",
				    what, r->client, canon);
		}
		snprintf(msg, sizeof(msg), "route '%.200s'", what);
		if (check_groups(p, r, "routes", (int)i, msg, e) == -1)
			return -1;
	}
	if (route_check_ties(p, &a, &b, msg, sizeof(msg)) == -1)
		return perr(e, "routes", (int)b, "%s", msg);
	return 0;
}

/* Per-user routing fields (issue 15): after the hops are known. */
static int
check_user_routing(const Sluice__Policy *p, struct policy_error *e)
{
	const Sluice__User *u;
	char what[128];
	size_t i;

	for (i = 0; i < p->n_users; i++) {
		u = p->users[i];
		if (u->rewrite_sender[0] != '\0' &&
		    (policy_check_sender(u->rewrite_sender) == -1 ||
		        strchr(u->rewrite_sender, '*') != NULL ||
		        u->rewrite_sender[0] == '@'))
			return perr(e, "users", (int)i,
			    "user '%s': rewrite_sender '%.100s' must be one "
			    "address (local@domain)",
			    u->name, u->rewrite_sender);
		if (u->rewrite_from[0] != '\0' &&
		    (policy_check_sender(u->rewrite_from) == -1 ||
		        strchr(u->rewrite_from, '*') != NULL ||
		        u->rewrite_from[0] == '@'))
			return perr(e, "users", (int)i,
			    "user '%s': rewrite_from '%.100s' must be one "
			    "address (local@domain)",
			    u->name, u->rewrite_from);
		if (u->default_route == NULL)
			continue;
		if (u->default_route->n_groups == 0)
			continue; /* no default route */
		snprintf(
		    what, sizeof(what), "user '%s': default route", u->name);
		if (check_groups(
		        p, u->default_route, "users", (int)i, what, e) == -1)
			return -1;
	}
	return 0;
}

static int
check_limits(const Sluice__Policy *p, struct policy_error *e)
{
	const struct limit_def *d;
	const Sluice__Limit *l;
	size_t i, j;

	for (i = 0; i < p->n_limits; i++) {
		l = p->limits[i];
		if ((d = limit_find(l->key)) == NULL)
			return perr(e, "limits", (int)i,
			    "unknown limit '%.64s' (see: sluicectl limit list)",
			    l->key);
		for (j = 0; j < i; j++)
			if (strcmp(p->limits[j]->key, l->key) == 0)
				return perr(e, "limits", (int)i,
				    "limit '%s' is set twice", l->key);
		if (l->value < d->min || l->value > d->max)
			return perr(e, "limits", (int)i,
			    "limit %s must be between %lld and %lld, not %lld",
			    l->key, (long long)d->min, (long long)d->max,
			    (long long)l->value);
	}
	return 0;
}

static int
check_dkim(const Sluice__Policy *p, struct policy_error *e)
{
	size_t i;

	for (i = 0; i < p->n_dkim; i++) {
		if (check_domain(p->dkim[i]->domain) == -1)
			return perr(e, "dkim", (int)i,
			    "DKIM domain '%.100s' is not a domain",
			    p->dkim[i]->domain);
		if (p->dkim[i]->selector[0] == '\0')
			return perr(e, "dkim", (int)i,
			    "DKIM key for %s has no selector",
			    p->dkim[i]->domain);
		/* RFC 6376 3.1: a selector is dot-separated DNS labels */
		if (check_domain(p->dkim[i]->selector) == -1)
			return perr(e, "dkim", (int)i,
			    "DKIM selector '%.64s' is not DNS labels "
			    "(letters, digits, '-', dots between)",
			    p->dkim[i]->selector);
		if (p->dkim[i]->algorithm[0] != '\0' &&
		    strcmp(p->dkim[i]->algorithm, "rsa") != 0 &&
		    strcmp(p->dkim[i]->algorithm, "ed25519") != 0)
			return perr(e, "dkim", (int)i,
			    "DKIM algorithm '%.32s' is not rsa or ed25519",
			    p->dkim[i]->algorithm);
		/* RFC 6376 3.4: simple/relaxed is allowed there but makes
		 * no sense (a strict header, a loose body): not offered */
		if (p->dkim[i]->canon[0] != '\0' &&
		    strcmp(p->dkim[i]->canon, "relaxed/relaxed") != 0 &&
		    strcmp(p->dkim[i]->canon, "simple/simple") != 0 &&
		    strcmp(p->dkim[i]->canon, "relaxed/simple") != 0)
			return perr(e, "dkim", (int)i,
			    "DKIM canonicalisation '%.32s' is not "
			    "relaxed/relaxed, simple/simple or relaxed/simple",
			    p->dkim[i]->canon);
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(
			        p->dkim[j]->domain, p->dkim[i]->domain) == 0 &&
			    strcasecmp(p->dkim[j]->selector,
			        p->dkim[i]->selector) == 0)
				return perr(e, "dkim", (int)i,
				    "DKIM key %s._domainkey.%s is listed twice",
				    p->dkim[i]->selector, p->dkim[i]->domain);
	}
	return 0;
}

/* Issue 16: provider webhook accounts (docs/providers.md). */
static int
check_provider_hooks(const Sluice__Policy *p, enum policy_check_mode mode,
    struct policy_error *e)
{
	static const char *const providers[] = {
	    "sendgrid", "ses", "mailgun", "postmark", "brevo"};
	const Sluice__ProviderHook *h;
	size_t i, j;

	for (i = 0; i < p->n_provider_hooks; i++) {
		h = p->provider_hooks[i];
		for (j = 0; j < sizeof(providers) / sizeof(*providers); j++)
			if (strcmp(h->provider, providers[j]) == 0)
				break;
		if (j == sizeof(providers) / sizeof(*providers))
			return perr(e, "provider_hooks", (int)i,
			    "provider '%.32s' is not sendgrid, ses, mailgun, "
			    "postmark or brevo",
			    h->provider);
		if (policy_check_name(h->name) == -1 ||
		    strchr(h->name, '@') != NULL ||
		    strchr(h->name, '+') != NULL)
			return perr(e, "provider_hooks", (int)i,
			    "hook name '%.64s' is not [A-Za-z0-9._-], 1..64 "
			    "characters",
			    h->name);
		for (j = 0; j < i; j++)
			if (strcmp(p->provider_hooks[j]->provider,
			        h->provider) == 0 &&
			    strcmp(p->provider_hooks[j]->name, h->name) == 0)
				return perr(e, "provider_hooks", (int)i,
				    "hook %s/%s is listed twice", h->provider,
				    h->name);
		if (strlen(h->path_token) > 128 ||
		    strspn(h->path_token,
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789._-") != strlen(h->path_token))
			return perr(e, "provider_hooks", (int)i,
			    "hook %s/%s: path token is not [A-Za-z0-9._-], "
			    "at most 128 characters",
			    h->provider, h->name);
		if (strcmp(h->provider, "sendgrid") == 0 && h->key[0] == '\0')
			return perr(e, "provider_hooks", (int)i,
			    "hook sendgrid/%s needs the verification key (key)",
			    h->name);
		if ((strcmp(h->provider, "postmark") == 0 ||
		        strcmp(h->provider, "brevo") == 0) &&
		    h->key[0] == '\0')
			return perr(e, "provider_hooks", (int)i,
			    "hook %s/%s needs a Basic user (key) and password "
			    "(secret)",
			    h->provider, h->name);
		if (mode == POLICY_CHECK_SNAPSHOT &&
		    strcmp(h->provider, "sendgrid") != 0 &&
		    strcmp(h->provider, "ses") != 0 && h->secret[0] == '\0')
			return perr(e, "provider_hooks", (int)i,
			    "hook %s/%s needs a secret", h->provider, h->name);
	}
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
check_suppressions(const Sluice__Policy *p, struct policy_error *e)
{
	const char **v;
	const char *a, *at;
	size_t i;
	int rc = 0;

	for (i = 0; i < p->n_suppressions; i++) {
		a = p->suppressions[i]->address;
		at = strrchr(a, '@');
		if (strlen(a) > POLICY_ADDRESS_MAX || at == NULL || at == a ||
		    check_domain(at + 1) == -1 || strchr(a, ' ') != NULL ||
		    strchr(a, '<') != NULL || strchr(a, '>') != NULL)
			return perr(e, "suppressions", (int)i,
			    "'%.100s' is not an address (local@domain)", a);
		for (; *a != '\0'; a++)
			if (isupper((unsigned char)*a))
				return perr(e, "suppressions", (int)i,
				    "'%.100s' is not lower case",
				    p->suppressions[i]->address);
	}
	if (p->suppression_mode[0] != '\0' &&
	    strcmp(p->suppression_mode, "refuse") != 0 &&
	    strcmp(p->suppression_mode, "bounce") != 0)
		return perr(e, "suppression_mode", -1,
		    "'%.32s' is not refuse or bounce", p->suppression_mode);
	if (p->n_suppressions < 2)
		return 0;
	/* sorted copies: a list of many thousands stays cheap */
	if ((v = calloc(p->n_suppressions, sizeof(*v))) == NULL)
		return perr(e, "suppressions", -1, "out of memory");
	for (i = 0; i < p->n_suppressions; i++)
		v[i] = p->suppressions[i]->address;
	qsort(v, p->n_suppressions, sizeof(*v), cmp_str);
	for (i = 1; i < p->n_suppressions; i++)
		if (strcmp(v[i - 1], v[i]) == 0) {
			rc = perr(e, "suppressions", -1,
			    "'%.100s' is listed twice", v[i]);
			break;
		}
	free(v);
	return rc;
}

int
policy_check(const Sluice__Policy *p, enum policy_check_mode mode,
    struct policy_error *e)
{
	e->section = "";
	e->index = -1;
	e->msg[0] = '\0';
	if (check_networks(p, e) == -1 || check_users(p, mode, e) == -1 ||
	    check_hops(p, mode, e) == -1 || check_routes(p, e) == -1 ||
	    check_user_routing(p, e) == -1 || check_limits(p, e) == -1 ||
	    check_dkim(p, e) == -1 || check_provider_hooks(p, mode, e) == -1 ||
	    check_suppressions(p, e) == -1)
		return -1;
	return 0;
}
