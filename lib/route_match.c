/* route_match.c - route specificity (route_match.h). */
#include "route_match.h"

#include <string.h>
#include <strings.h>

bool
route_domain_match(const char *pat, const char *d)
{
	size_t pl, dl;

	if (strcmp(pat, "*") == 0)
		return true;
	if (strncmp(pat, "*.", 2) == 0) {
		pl = strlen(pat + 1); /* ".example.com" */
		dl = strlen(d);
		return dl > pl && strcasecmp(d + dl - pl, pat + 1) == 0;
	}
	return strcasecmp(pat, d) == 0;
}

const Sluice__Route *
route_match(const Sluice__Policy *p, const char *domain)
{
	const Sluice__Route *best = NULL, *r;
	size_t i, bestlen = 0, l;

	if (p == NULL)
		return NULL;
	for (i = 0; i < p->n_routes; i++) {
		r = p->routes[i];
		if (strcmp(r->pattern, "*") == 0) {
			if (best == NULL)
				best = r;
			continue;
		}
		if (!route_domain_match(r->pattern, domain))
			continue;
		/* exact beats any wildcard: rank it past every length */
		l = strncmp(r->pattern, "*.", 2) == 0 ? strlen(r->pattern)
		                                      : 100000;
		if (l > bestlen) {
			best = r;
			bestlen = l;
		}
	}
	return best;
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
