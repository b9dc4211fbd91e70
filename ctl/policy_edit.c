/* policy_edit.c - add, find and remove policy elements in memory; the
 * allocation rules are those of protobuf-c's unpack (see policy_edit.h). */
#include "policy_edit.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "limit_table.h"
#include "log.h"
#include "route_match.h"
#include "rpc.h"
#include "xmalloc.h"

Sluice__Policy *
policy_new(void)
{
	Sluice__Policy *p = xcalloc(1, sizeof(*p));

	sluice__policy__init(p);
	return p;
}

Sluice__Policy *
policy_dup(const Sluice__Policy *p)
{
	Sluice__Policy *d;
	uint8_t *buf;
	size_t len;

	if ((buf = rpc_pack(&p->base, &len)) == NULL)
		fatalx("out of memory");
	d = sluice__policy__unpack(NULL, len, buf);
	free(buf);
	if (d == NULL)
		fatalx("policy_dup: unpack failed");
	return d;
}

void
policy_set_str(char **field, const char *value)
{
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = xstrdup(value);
}

void
policy_strv_add(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

/* Generic append to a repeated message field. */
static void *
push(void ***v, size_t *n, void *elem)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = elem;
	return elem;
}

static void
del(void **v, size_t *n, size_t i)
{
	protobuf_c_message_free_unpacked(v[i], NULL);
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
	(*n)--;
}

int
policy_find_network(const Sluice__Policy *p, const char *cidr)
{
	for (size_t i = 0; i < p->n_networks; i++)
		if (strcmp(p->networks[i]->cidr, cidr) == 0)
			return (int)i;
	return -1;
}

int
policy_find_user(const Sluice__Policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_users; i++)
		if (strcmp(p->users[i]->name, name) == 0)
			return (int)i;
	return -1;
}

int
policy_find_hop(const Sluice__Policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_hops; i++)
		if (strcmp(p->hops[i]->name, name) == 0)
			return (int)i;
	return -1;
}

int
policy_find_route(const Sluice__Policy *p, const char *pattern)
{
	/* Domains are case-insensitive, as in policy_check. */
	for (size_t i = 0; i < p->n_routes; i++)
		if (strcasecmp(p->routes[i]->pattern, pattern) == 0)
			return (int)i;
	return -1;
}

int
policy_find_limit(const Sluice__Policy *p, const char *key)
{
	for (size_t i = 0; i < p->n_limits; i++)
		if (strcmp(p->limits[i]->key, key) == 0)
			return (int)i;
	return -1;
}

Sluice__Network *
policy_add_network(Sluice__Policy *p, const char *cidr, bool deny)
{
	Sluice__Network *n = xcalloc(1, sizeof(*n));

	sluice__network__init(n);
	policy_set_str(&n->cidr, cidr);
	n->deny = deny;
	push((void ***)&p->networks, &p->n_networks, n);
	/* Allows before denies, each in the order added: the order a policy
	 * file lists them in, so export and apply round-trip exactly. */
	if (!deny) {
		size_t i = p->n_networks - 1;
		while (i > 0 && p->networks[i - 1]->deny) {
			p->networks[i] = p->networks[i - 1];
			i--;
		}
		p->networks[i] = n;
	}
	return n;
}

Sluice__User *
policy_add_user(Sluice__Policy *p, const char *name)
{
	Sluice__User *u = xcalloc(1, sizeof(*u));

	sluice__user__init(u);
	policy_set_str(&u->name, name);
	return push((void ***)&p->users, &p->n_users, u);
}

Sluice__Hop *
policy_add_hop(Sluice__Policy *p, const char *name)
{
	Sluice__Hop *h = xcalloc(1, sizeof(*h));

	sluice__hop__init(h);
	policy_set_str(&h->name, name);
	return push((void ***)&p->hops, &p->n_hops, h);
}

Sluice__Route *
policy_add_route(Sluice__Policy *p, const char *pattern)
{
	Sluice__Route *r = xcalloc(1, sizeof(*r));

	sluice__route__init(r);
	policy_set_str(&r->pattern, pattern);
	return push((void ***)&p->routes, &p->n_routes, r);
}

Sluice__Route *
policy_user_route(Sluice__User *u)
{
	if (u->default_route == NULL) {
		u->default_route = xcalloc(1, sizeof(*u->default_route));
		sluice__route__init(u->default_route);
		policy_set_str(&u->default_route->pattern, "*");
	}
	return u->default_route;
}

int
policy_find_route_like(const Sluice__Policy *p, const Sluice__Route *r)
{
	size_t i;

	for (i = 0; i < p->n_routes; i++)
		if (route_same_match(p->routes[i], r))
			return (int)i;
	return -1;
}

Sluice__HopGroup *
policy_route_add_group(Sluice__Route *r)
{
	Sluice__HopGroup *g = xcalloc(1, sizeof(*g));

	sluice__hop_group__init(g);
	return push((void ***)&r->groups, &r->n_groups, g);
}

Sluice__Limit *
policy_add_limit(Sluice__Policy *p, const char *key, int64_t value)
{
	Sluice__Limit *l = xcalloc(1, sizeof(*l));

	sluice__limit__init(l);
	policy_set_str(&l->key, key);
	l->value = value;
	return push((void ***)&p->limits, &p->n_limits, l);
}

void
policy_del_network(Sluice__Policy *p, size_t i)
{
	del((void **)p->networks, &p->n_networks, i);
}

void
policy_del_user(Sluice__Policy *p, size_t i)
{
	del((void **)p->users, &p->n_users, i);
}

void
policy_del_hop(Sluice__Policy *p, size_t i)
{
	del((void **)p->hops, &p->n_hops, i);
}

void
policy_del_route(Sluice__Policy *p, size_t i)
{
	del((void **)p->routes, &p->n_routes, i);
}

void
policy_del_limit(Sluice__Policy *p, size_t i)
{
	del((void **)p->limits, &p->n_limits, i);
}

void
policy_route_clear(Sluice__Route *r)
{
	while (r->n_groups > 0)
		del((void **)r->groups, &r->n_groups, r->n_groups - 1);
}

void
policy_mark_kept(Sluice__Policy *p)
{
	size_t i;

	for (i = 0; i < p->n_hops; i++)
		if (p->hops[i]->has_secret && p->hops[i]->secret[0] == '\0')
			p->hops[i]->keep_secret = true;
	/* Users need nothing: an empty hash with has_password set is
	 * already "keep the stored one" (control.proto). */
}

void
policy_set_limit(Sluice__Policy *p, const char *key, int64_t value)
{
	const struct limit_def *d = limit_find(key);
	int i = policy_find_limit(p, key);

	if (d != NULL && value == d->def) {
		if (i >= 0)
			policy_del_limit(p, (size_t)i);
		return;
	}
	if (i >= 0)
		p->limits[i]->value = value;
	else
		policy_add_limit(p, key, value);
}
