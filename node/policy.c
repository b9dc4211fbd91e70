/* policy.c - compiled policy snapshot and its pure verdicts (policy.h).
 * Compilation parses the network list once so per-connection checks are
 * a scan of pre-parsed prefixes. */
#include "policy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "cidr.h"
#include "limit_table.h"
#include "log.h"
#include "policy_check.h"
#include "route_match.h"

struct policy {
	int refs;
	Sluice__Policy *snap; /* NULL for the empty policy */
	struct cidr *nets;
	bool *deny;
	size_t nnets;
	int64_t limits[LIMIT_COUNT]; /* compiled: the snapshot's or default */
	/* The suppression list sorted by address, for bsearch (issue 16);
	 * pointers into snap. */
	const Sluice__Suppression **sup;
	size_t nsup;
};

static int
policy_sup_cmp(const void *a, const void *b)
{
	return strcmp((*(const Sluice__Suppression *const *)a)->address,
	    (*(const Sluice__Suppression *const *)b)->address);
}

static struct policy *
policy_compile(Sluice__Policy *snap, char *err, size_t errlen)
{
	struct policy *p;
	size_t i;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->refs = 1;
	p->snap = snap;
	for (i = 0; i < LIMIT_COUNT; i++)
		p->limits[i] = limit_value(snap, (enum limit_key)i);
	if (snap != NULL && snap->n_suppressions > 0) {
		if ((p->sup = calloc(snap->n_suppressions, sizeof(*p->sup))) ==
		    NULL) {
			free(p);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		for (i = 0; i < snap->n_suppressions; i++)
			p->sup[i] = snap->suppressions[i];
		p->nsup = snap->n_suppressions;
		qsort(p->sup, p->nsup, sizeof(*p->sup), policy_sup_cmp);
	}
	if (snap == NULL || snap->n_networks == 0)
		return p;
	p->nets = calloc(snap->n_networks, sizeof(*p->nets));
	p->deny = calloc(snap->n_networks, sizeof(*p->deny));
	if (p->nets == NULL || p->deny == NULL) {
		free(p->nets);
		free(p->deny);
		free(p->sup);
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (i = 0; i < snap->n_networks; i++) {
		if (cidr_parse(snap->networks[i]->cidr, &p->nets[i], err,
		        errlen) == -1) {
			free(p->nets);
			free(p->deny);
			free(p->sup);
			free(p);
			return NULL;
		}
		p->deny[i] = snap->networks[i]->deny;
	}
	p->nnets = snap->n_networks;
	return p;
}

struct policy *
policy_new(Sluice__Policy *snap, char *err, size_t errlen)
{
	struct policy_error pe;

	if (policy_check(snap, POLICY_CHECK_SNAPSHOT, &pe) == -1) {
		snprintf(err, errlen, "%s", pe.msg);
		return NULL;
	}
	return policy_compile(snap, err, errlen);
}

struct policy *
policy_empty(void)
{
	char err[64];
	struct policy *p = policy_compile(NULL, err, sizeof(err));

	if (p == NULL)
		fatalx("policy_empty: %s", err);
	return p;
}

struct policy *
policy_ref(struct policy *p)
{
	p->refs++;
	return p;
}

void
policy_unref(struct policy *p)
{
	if (p == NULL || --p->refs > 0)
		return;
	if (p->snap != NULL)
		protobuf_c_message_free_unpacked(&p->snap->base, NULL);
	free(p->nets);
	free(p->deny);
	free(p->sup);
	free(p);
}

bool
policy_suppression_bounces(const struct policy *p)
{
	return p->snap != NULL &&
	       strcmp(p->snap->suppression_mode, "bounce") == 0;
}

const Sluice__Suppression *
policy_suppressed(const struct policy *p, const char *addr)
{
	Sluice__Suppression key = SLUICE__SUPPRESSION__INIT, *kp = &key;
	const Sluice__Suppression **hit;
	char low[POLICY_ADDRESS_MAX + 1];
	size_t i;

	if (p->nsup == 0 || strlen(addr) > POLICY_ADDRESS_MAX)
		return NULL;
	for (i = 0; addr[i] != '\0'; i++)
		low[i] = (char)tolower((unsigned char)addr[i]);
	low[i] = '\0';
	key.address = low;
	hit = bsearch(&kp, p->sup, p->nsup, sizeof(*p->sup), policy_sup_cmp);
	return hit != NULL ? *hit : NULL;
}

uint64_t
policy_version(const struct policy *p)
{
	return p->snap != NULL ? p->snap->version : 0;
}

const Sluice__Policy *
policy_snapshot(const struct policy *p)
{
	return p->snap;
}

int64_t
policy_limit(const struct policy *p, const char *key)
{
	return limit_get(p->snap, key);
}

int64_t
policy_limit_of(const struct policy *p, enum limit_key k)
{
	return p->limits[k];
}

bool
policy_client_trusted(const struct policy *p, int family, const uint8_t *addr)
{
	int best = -1;
	bool verdict = false;
	size_t i;

	for (i = 0; i < p->nnets; i++) {
		if (!cidr_contains(&p->nets[i], family, addr))
			continue;
		if ((int)p->nets[i].prefix > best ||
		    ((int)p->nets[i].prefix == best && p->deny[i])) {
			best = (int)p->nets[i].prefix;
			verdict = !p->deny[i];
		}
	}
	return verdict;
}

const Sluice__User *
policy_user(const struct policy *p, const char *name)
{
	size_t i;

	if (p->snap == NULL)
		return NULL;
	for (i = 0; i < p->snap->n_users; i++)
		if (strcmp(p->snap->users[i]->name, name) == 0)
			return p->snap->users[i];
	return NULL;
}

bool
policy_sender_allowed(const Sluice__User *u, const char *addr)
{
	const char *at = strrchr(addr, '@'), *pat, *pat_at;
	size_t i;

	for (i = 0; i < u->n_senders; i++) {
		pat = u->senders[i];
		if (strcmp(pat, "*") == 0)
			return true;
		if (at == NULL || (pat_at = strrchr(pat, '@')) == NULL)
			continue;
		if (!route_domain_match(pat_at + 1, at + 1))
			continue;
		/* "@example.com" and "*@example.com": any local part */
		if (pat_at == pat || (pat_at == pat + 1 && pat[0] == '*'))
			return true;
		if ((size_t)(pat_at - pat) == (size_t)(at - addr) &&
		    strncasecmp(pat, addr, (size_t)(at - addr)) == 0)
			return true;
	}
	return false;
}

const Sluice__Hop *
policy_hop(const struct policy *p, const char *name)
{
	return route_hop(p->snap, name);
}

const Sluice__Route *
policy_route(const struct policy *p, const struct route_ctx *c)
{
	return route_select(p->snap, c);
}
