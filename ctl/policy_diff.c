/* policy_diff.c - element-wise comparison of two policies (see
 * policy_diff.h).  Output order follows the policy file: networks, users,
 * hops, routes, limits, DKIM keys. */
#include "policy_diff.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hop_preset.h"
#include "limit_table.h"
#include "policy_edit.h"
#include "route_match.h"
#include "xmalloc.h"

static struct policy_change *
add(struct policy_diff *d, char op, const char *kind, const char *name)
{
	struct policy_change *c;

	d->v = xreallocarray(d->v, d->n + 1, sizeof(*d->v));
	c = &d->v[d->n++];
	memset(c, 0, sizeof(*c));
	c->op = op;
	c->kind = kind;
	snprintf(c->name, sizeof(c->name), "%s", name);
	return c;
}

static void detail(struct policy_change *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
detail(struct policy_change *c, const char *fmt, ...)
{
	size_t len = strlen(c->detail);
	va_list ap;

	if (len > 0 && len + 2 < sizeof(c->detail)) {
		strcat(c->detail, ", ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(c->detail + len, sizeof(c->detail) - len, fmt, ap);
	va_end(ap);
}

/* A user's quotas (issue 15), each that changed. */
static void
user_quota_diff(
    struct policy_change *c, const Sluice__User *o, const Sluice__User *n)
{
	static const char *const keys[4] = {"quota hour_msgs",
	    "quota hour_rcpts", "quota day_msgs", "quota day_rcpts"};
	const uint32_t a[4] = {o->quota_hour_msgs, o->quota_hour_rcpts,
	    o->quota_day_msgs, o->quota_day_rcpts};
	const uint32_t b[4] = {n->quota_hour_msgs, n->quota_hour_rcpts,
	    n->quota_day_msgs, n->quota_day_rcpts};
	int k;

	for (k = 0; k < 4; k++)
		if (a[k] != b[k])
			detail(c, "%s %" PRIu32 " -> %" PRIu32, keys[k], a[k],
			    b[k]);
}

static void
strv(char *buf, size_t len, char *const *v, size_t n)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(
		    buf + off, len - off, "%s%s", i ? "," : "", v[i]);
}

static void
groups(char *buf, size_t len, const Sluice__Route *r)
{
	size_t i, off = 0;
	char g[256];

	buf[0] = '\0';
	for (i = 0; i < r->n_groups && off < len; i++) {
		strv(g, sizeof(g), r->groups[i]->hops, r->groups[i]->n_hops);
		off += (size_t)snprintf(
		    buf + off, len - off, "%s%s", i ? " " : "", g);
	}
}

static void
diff_networks(
    const Sluice__Policy *o, const Sluice__Policy *n, struct policy_diff *d)
{
	size_t i;
	int j;

	for (i = 0; i < o->n_networks; i++)
		if (policy_find_network(n, o->networks[i]->cidr) < 0)
			snprintf(add(d, '-', "network", o->networks[i]->cidr)
			             ->detail,
			    512, "%s", o->networks[i]->deny ? "deny" : "allow");
	for (i = 0; i < n->n_networks; i++) {
		const Sluice__Network *nn = n->networks[i];
		if ((j = policy_find_network(o, nn->cidr)) < 0)
			snprintf(add(d, '+', "network", nn->cidr)->detail, 512,
			    "%s", nn->deny ? "deny" : "allow");
		else if (o->networks[j]->deny != nn->deny)
			snprintf(add(d, '~', "network", nn->cidr)->detail, 512,
			    "%s -> %s", nn->deny ? "allow" : "deny",
			    nn->deny ? "deny" : "allow");
	}
}

static bool
strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* hold, rewrites and the default route (issue 15) */
static void
user_routing_diff(
    struct policy_change *c, const Sluice__User *o, const Sluice__User *n)
{
	char a[400] = "-", b[400] = "-";

	if (o->hold != n->hold)
		detail(c, "hold %s", n->hold ? "on" : "off");
	if (strcmp(o->rewrite_sender, n->rewrite_sender) != 0)
		detail(c, "rewrite_sender '%s' -> '%s'", o->rewrite_sender,
		    n->rewrite_sender);
	if (strcmp(o->rewrite_from, n->rewrite_from) != 0)
		detail(c, "rewrite_from '%s' -> '%s'", o->rewrite_from,
		    n->rewrite_from);
	if (o->default_route != NULL && o->default_route->n_groups > 0)
		groups(a, sizeof(a), o->default_route);
	if (n->default_route != NULL && n->default_route->n_groups > 0)
		groups(b, sizeof(b), n->default_route);
	if (strcmp(a, b) != 0)
		detail(c, "route %s -> %s", a, b);
}

static void
diff_users(
    const Sluice__Policy *o, const Sluice__Policy *n, struct policy_diff *d)
{
	struct policy_change *c;
	char a[256], b[256];
	size_t i;
	int j;

	for (i = 0; i < o->n_users; i++)
		if (policy_find_user(n, o->users[i]->name) < 0)
			add(d, '-', "user", o->users[i]->name);
	for (i = 0; i < n->n_users; i++) {
		const Sluice__User *nu = n->users[i], *ou;
		if ((j = policy_find_user(o, nu->name)) < 0) {
			c = add(d, '+', "user", nu->name);
			strv(a, sizeof(a), nu->senders, nu->n_senders);
			detail(c, "senders %s", a);
			continue;
		}
		ou = o->users[j];
		struct policy_change tmp = {.op = '~'};
		if (!strv_eq(ou->senders, ou->n_senders, nu->senders,
		        nu->n_senders)) {
			strv(a, sizeof(a), ou->senders, ou->n_senders);
			strv(b, sizeof(b), nu->senders, nu->n_senders);
			detail(&tmp, "senders %s -> %s", a, b);
		}
		if (ou->rate_per_minute != nu->rate_per_minute)
			detail(&tmp, "rate_per_minute %" PRIu32 " -> %" PRIu32,
			    ou->rate_per_minute, nu->rate_per_minute);
		user_routing_diff(&tmp, ou, nu);
		user_quota_diff(&tmp, ou, nu);
		if (nu->password_hash[0] != '\0')
			detail(&tmp, "password set");
		else if (!nu->has_password && ou->has_password)
			detail(&tmp, "password removed");
		if (tmp.detail[0] != '\0')
			memcpy(add(d, '~', "user", nu->name)->detail,
			    tmp.detail, sizeof(tmp.detail));
	}
}

static void
hop_fields(struct policy_change *c, const Sluice__Hop *o, const Sluice__Hop *n)
{
	if (strcmp(o->host, n->host) != 0)
		detail(c, "host %s -> %s", o->host, n->host);
	if (o->port != n->port)
		detail(c, "port %" PRIu32 " -> %" PRIu32, o->port, n->port);
	if (o->tls != n->tls)
		detail(c, "tls %s -> %s", hop_tls_name(o->tls),
		    hop_tls_name(n->tls));
	if (o->verify_cert != n->verify_cert)
		detail(c, "verify_cert %s -> %s", o->verify_cert ? "yes" : "no",
		    n->verify_cert ? "yes" : "no");
	if (strcmp(o->auth_user, n->auth_user) != 0)
		detail(c, "user '%s' -> '%s'", o->auth_user, n->auth_user);
	if (n->secret[0] != '\0')
		detail(c, "secret set");
	else if (!n->keep_secret && !n->has_secret && o->has_secret)
		detail(c, "secret removed");
	if (o->max_conn != n->max_conn)
		detail(c, "max_conn %" PRIu32 " -> %" PRIu32, o->max_conn,
		    n->max_conn);
	if (o->rate_per_minute != n->rate_per_minute)
		detail(c, "rate_per_minute %" PRIu32 " -> %" PRIu32,
		    o->rate_per_minute, n->rate_per_minute);
	if (o->weight != n->weight)
		detail(
		    c, "weight %" PRIu32 " -> %" PRIu32, o->weight, n->weight);
	if (strcmp(o->preset, n->preset) != 0)
		detail(c, "preset '%s' -> '%s'", o->preset, n->preset);
	if (o->max_rcpt != n->max_rcpt)
		detail(c, "max_rcpt %" PRIu32 " -> %" PRIu32, o->max_rcpt,
		    n->max_rcpt);
	if (o->max_size != n->max_size)
		detail(c, "max_size %" PRIu64 " -> %" PRIu64, o->max_size,
		    n->max_size);
	if (strcmp(o->oauth2, n->oauth2) != 0)
		detail(c, "oauth2 '%s' -> '%s'", o->oauth2, n->oauth2);
	if (strcmp(o->oauth2_tenant, n->oauth2_tenant) != 0)
		detail(c, "tenant '%s' -> '%s'", o->oauth2_tenant,
		    n->oauth2_tenant);
	if (strcmp(o->oauth2_client_id, n->oauth2_client_id) != 0)
		detail(c, "client_id '%s' -> '%s'", o->oauth2_client_id,
		    n->oauth2_client_id);
	if (strcmp(o->oauth2_token_url, n->oauth2_token_url) != 0)
		detail(c, "token_url '%s' -> '%s'", o->oauth2_token_url,
		    n->oauth2_token_url);
	if (strcmp(o->oauth2_scope, n->oauth2_scope) != 0)
		detail(
		    c, "scope '%s' -> '%s'", o->oauth2_scope, n->oauth2_scope);
	if (o->oauth2_cert != n->oauth2_cert)
		detail(c, "cert_key %s -> %s", o->oauth2_cert ? "yes" : "no",
		    n->oauth2_cert ? "yes" : "no");
}

static void
diff_hops(
    const Sluice__Policy *o, const Sluice__Policy *n, struct policy_diff *d)
{
	struct policy_change *c;
	size_t i;
	int j;

	for (i = 0; i < o->n_hops; i++)
		if (policy_find_hop(n, o->hops[i]->name) < 0)
			add(d, '-', "hop", o->hops[i]->name);
	for (i = 0; i < n->n_hops; i++) {
		const Sluice__Hop *nh = n->hops[i];
		if ((j = policy_find_hop(o, nh->name)) < 0) {
			c = add(d, '+', "hop", nh->name);
			if (nh->host[0] != '\0')
				detail(c, "%s:%" PRIu32 " tls %s", nh->host,
				    nh->port, hop_tls_name(nh->tls));
			continue;
		}
		struct policy_change tmp = {.op = '~'};
		hop_fields(&tmp, o->hops[j], nh);
		if (tmp.detail[0] != '\0')
			memcpy(add(d, '~', "hop", nh->name)->detail, tmp.detail,
			    sizeof(tmp.detail));
	}
}

static void
diff_routes(
    const Sluice__Policy *o, const Sluice__Policy *n, struct policy_diff *d)
{
	char a[400], b[400], name[300];
	size_t i;
	int j;

	for (i = 0; i < o->n_routes; i++)
		if (policy_find_route_like(n, o->routes[i]) < 0) {
			route_describe(o->routes[i], name, sizeof(name));
			add(d, '-', "route", name);
		}
	for (i = 0; i < n->n_routes; i++) {
		const Sluice__Route *nr = n->routes[i];
		route_describe(nr, name, sizeof(name));
		groups(b, sizeof(b), nr);
		if ((j = policy_find_route_like(o, nr)) < 0) {
			detail(add(d, '+', "route", name), "%s", b);
			continue;
		}
		groups(a, sizeof(a), o->routes[j]);
		if (strcmp(a, b) != 0)
			detail(add(d, '~', "route", name), "%s -> %s", a, b);
	}
}

static void
diff_limits(
    const Sluice__Policy *o, const Sluice__Policy *n, struct policy_diff *d)
{
	size_t i;
	int64_t a, b;

	/* Compare effective values over the whole table, so a key dropped
	 * from the list reads as "back to the default". */
	for (i = 0; i < limit_count; i++) {
		const char *k = limit_table[i].key;
		a = limit_get(o, k);
		b = limit_get(n, k);
		if (a != b)
			detail(add(d, '~', "limit", k),
			    "%" PRId64 " -> %" PRId64 "%s", a, b,
			    b == limit_table[i].def ? " (default)" : "");
	}
}

static int
find_dkim(const Sluice__Policy *p, const Sluice__DkimKey *k)
{
	for (size_t i = 0; i < p->n_dkim; i++)
		if (strcasecmp(p->dkim[i]->domain, k->domain) == 0 &&
		    strcasecmp(p->dkim[i]->selector, k->selector) == 0)
			return (int)i;
	return -1;
}

/* DKIM keys by selector and domain; a private key given (not kept)
 * counts as a change (it cannot be compared with a redacted one). */
static void
diff_dkim(
    const Sluice__Policy *o, const Sluice__Policy *n, struct policy_diff *d)
{
	char name[300], a[256], b[256];
	size_t i;
	int j;

	for (i = 0; i < o->n_dkim; i++) {
		if (find_dkim(n, o->dkim[i]) >= 0)
			continue;
		snprintf(name, sizeof(name), "%s._domainkey.%s",
		    o->dkim[i]->selector, o->dkim[i]->domain);
		add(d, '-', "dkim", name);
	}
	for (i = 0; i < n->n_dkim; i++) {
		const Sluice__DkimKey *k = n->dkim[i], *ok;
		struct policy_change *c;

		snprintf(name, sizeof(name), "%s._domainkey.%s", k->selector,
		    k->domain);
		if ((j = find_dkim(o, k)) < 0) {
			detail(add(d, '+', "dkim", name), "%s",
			    k->algorithm[0] ? k->algorithm : "key");
			continue;
		}
		ok = o->dkim[j];
		c = add(d, '~', "dkim", name);
		if (k->private_key[0] != '\0')
			detail(c, "private key replaced");
		if (k->required != ok->required)
			detail(c, "%s", k->required ? "required" : "optional");
		if (k->subdomains != ok->subdomains)
			detail(
			    c, "subdomains %s", k->subdomains ? "on" : "off");
		if (strcmp(k->canon, ok->canon) != 0)
			detail(c, "canon %s -> %s",
			    ok->canon[0] ? ok->canon : "relaxed/relaxed",
			    k->canon[0] ? k->canon : "relaxed/relaxed");
		strv(a, sizeof(a), ok->headers, ok->n_headers);
		strv(b, sizeof(b), k->headers, k->n_headers);
		if (strcmp(a, b) != 0)
			detail(c, "headers [%s] -> [%s]", a, b);
		if (c->detail[0] == '\0')
			d->n--; /* unchanged */
	}
}

void
policy_diff(
    const Sluice__Policy *o, const Sluice__Policy *n, struct policy_diff *d)
{
	d->v = NULL;
	d->n = 0;
	diff_networks(o, n, d);
	diff_users(o, n, d);
	diff_hops(o, n, d);
	diff_routes(o, n, d);
	diff_limits(o, n, d);
	diff_dkim(o, n, d);
	if (strcmp(o->suppression_mode[0] ? o->suppression_mode : "refuse",
	        n->suppression_mode[0] ? n->suppression_mode : "refuse") != 0)
		detail(add(d, '~', "setting", "suppression_mode"), "%s -> %s",
		    o->suppression_mode[0] ? o->suppression_mode : "refuse",
		    n->suppression_mode[0] ? n->suppression_mode : "refuse");
}

void
policy_diff_free(struct policy_diff *d)
{
	free(d->v);
	d->v = NULL;
	d->n = 0;
}
