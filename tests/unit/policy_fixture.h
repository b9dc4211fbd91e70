/* policy_fixture.h - build small Sluice__Policy values on the stack for
 * table tests.  Everything points at static or caller storage. */
#ifndef SLUICE_TEST_POLICY_FIXTURE_H
#define SLUICE_TEST_POLICY_FIXTURE_H

#include "proto.h"

#define FIX_MAX 8

struct fixture {
	Sluice__Policy p;
	Sluice__Network net[FIX_MAX], *netp[FIX_MAX];
	Sluice__User user[FIX_MAX], *userp[FIX_MAX];
	Sluice__Hop hop[FIX_MAX], *hopp[FIX_MAX];
	Sluice__Route route[FIX_MAX], *routep[FIX_MAX];
	Sluice__HopGroup group[FIX_MAX][FIX_MAX], *groupp[FIX_MAX][FIX_MAX];
	Sluice__Limit limit[FIX_MAX], *limitp[FIX_MAX];
	char *senders[FIX_MAX][FIX_MAX];
	char *hops[FIX_MAX][FIX_MAX][FIX_MAX];
};

static inline void
fix_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	sluice__policy__init(&f->p);
	f->p.networks = f->netp;
	f->p.users = f->userp;
	f->p.hops = f->hopp;
	f->p.routes = f->routep;
	f->p.limits = f->limitp;
}

static inline void
fix_net(struct fixture *f, const char *cidr, int deny)
{
	size_t i = f->p.n_networks++;

	sluice__network__init(&f->net[i]);
	f->net[i].cidr = (char *)(uintptr_t)cidr;
	f->net[i].deny = deny;
	f->netp[i] = &f->net[i];
}

static inline Sluice__User *
fix_user(
    struct fixture *f, const char *name, const char *hash, const char *sender)
{
	size_t i = f->p.n_users++;

	sluice__user__init(&f->user[i]);
	f->user[i].name = (char *)(uintptr_t)name;
	f->user[i].password_hash = (char *)(uintptr_t)hash;
	f->senders[i][0] = (char *)(uintptr_t)sender;
	f->user[i].senders = f->senders[i];
	f->user[i].n_senders = sender != NULL ? 1 : 0;
	f->userp[i] = &f->user[i];
	return &f->user[i];
}

static inline Sluice__Hop *
fix_hop(struct fixture *f, const char *name, const char *host, unsigned port)
{
	size_t i = f->p.n_hops++;

	sluice__hop__init(&f->hop[i]);
	f->hop[i].name = (char *)(uintptr_t)name;
	f->hop[i].host = (char *)(uintptr_t)host;
	f->hop[i].port = port;
	f->hopp[i] = &f->hop[i];
	return &f->hop[i];
}

/* groups: "a,b c" = group [a b] then group [c] */
static inline void
fix_route(struct fixture *f, const char *pattern, const char *const *g1,
    size_t n1, const char *const *g2, size_t n2)
{
	size_t i = f->p.n_routes++, k;

	sluice__route__init(&f->route[i]);
	f->route[i].pattern = (char *)(uintptr_t)pattern;
	f->route[i].groups = f->groupp[i];
	for (k = 0; k < 2; k++) {
		const char *const *g = k == 0 ? g1 : g2;
		size_t n = k == 0 ? n1 : n2, j;
		if (n == 0)
			break;
		sluice__hop_group__init(&f->group[i][k]);
		for (j = 0; j < n; j++)
			f->hops[i][k][j] = (char *)(uintptr_t)g[j];
		f->group[i][k].hops = f->hops[i][k];
		f->group[i][k].n_hops = n;
		f->groupp[i][k] = &f->group[i][k];
		f->route[i].n_groups++;
	}
	f->routep[i] = &f->route[i];
}

static inline void
fix_limit(struct fixture *f, const char *key, int64_t v)
{
	size_t i = f->p.n_limits++;

	sluice__limit__init(&f->limit[i]);
	f->limit[i].key = (char *)(uintptr_t)key;
	f->limit[i].value = v;
	f->limitp[i] = &f->limit[i];
}

#define FIX_HASH "$scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"

#endif
