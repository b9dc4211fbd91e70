/* route_match.h - which route a recipient domain takes.  Pure; shared by
 * the node (delivery) and sluicectl (route explain) so both answer the
 * same way. */
#ifndef SLUICE_ROUTE_MATCH_H
#define SLUICE_ROUTE_MATCH_H

#include <stdbool.h>

#include "proto.h"

/* "example.com" matches exactly, "*.example.com" any subdomain (not the
 * apex), "*" anything.  Case-insensitive. */
bool route_domain_match(const char *pattern, const char *domain);
/* Most specific route: exact, then the longest "*.suffix", then "*".
 * NULL: no route (or p is NULL). */
const Sluice__Route *route_match(const Sluice__Policy *p, const char *domain);
/* The hop of that name, or NULL (also for the built-in "mx", which has no
 * entry, and when p is NULL). */
const Sluice__Hop *route_hop(const Sluice__Policy *p, const char *name);

#endif
