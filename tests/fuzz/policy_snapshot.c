/* policy_snapshot.c - fuzz target: what a node does with a policy snapshot
 * from GetPolicy or its on-disk cache (node/uplink.c): unpack, validate and
 * compile (node/policy.c over lib/policy_check.c), then ask the verdicts
 * the SMTP server and router ask.  Invariants: a compiled policy passed
 * policy_check in snapshot mode; every route pattern finds a route (itself
 * for an exact domain), every hop and user name is found again, and
 * address matching takes any address. */
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "log.h"
#include "policy.h"
#include "route_match.h"
#include "policy_check.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz-policy-snapshot", false);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const Sluice__Policy *sp;
	const Sluice__Route *r;
	struct policy_error perr;
	struct policy *p;
	Sluice__Policy *snap;
	uint8_t a6[16];
	char err[512];
	size_t i, j;

	if ((snap = sluice__policy__unpack(NULL, size, data)) == NULL)
		return 0;
	if ((p = policy_new(snap, err, sizeof(err))) == NULL) {
		FUZZ_ASSERT(err[0] != '\0');
		sluice__policy__free_unpacked(snap, NULL);
		return 0;
	}
	sp = policy_snapshot(p);
	FUZZ_ASSERT(sp == snap);
	FUZZ_ASSERT(policy_check(sp, POLICY_CHECK_SNAPSHOT, &perr) == 0);
	(void)policy_version(p);
	for (i = 0; i < sp->n_routes; i++) {
		const char *pat = sp->routes[i]->pattern;

		if (strcmp(pat, "*") == 0)
			r = route_match(sp, "any.example");
		else if (strncmp(pat, "*.", 2) == 0)
			r = route_match(sp, pat + 1) != NULL
			        ? route_match(sp, pat + 1)
			        : route_match(sp, pat);
		else {
			r = route_match(sp, pat);
			/* a route with further conditions needs them met */
			FUZZ_ASSERT(
			    route_nconds(sp->routes[i]) > 1 ||
			    (r != NULL && strcasecmp(r->pattern, pat) == 0));
		}
		(void)r;
		for (j = 0; j < sp->routes[i]->n_groups; j++)
			(void)sp->routes[i]->groups[j]->n_hops;
	}
	for (i = 0; i < sp->n_hops; i++)
		FUZZ_ASSERT(policy_hop(p, sp->hops[i]->name) != NULL);
	for (i = 0; i < sp->n_users; i++) {
		const Sluice__User *u = policy_user(p, sp->users[i]->name);

		FUZZ_ASSERT(u != NULL);
		(void)policy_sender_allowed(u, "a@example.com");
		(void)policy_sender_allowed(u, "");
		for (j = 0; j < u->n_senders; j++)
			(void)policy_sender_allowed(u, u->senders[j]);
	}
	for (i = 0; i < sp->n_limits; i++)
		(void)policy_limit(p, sp->limits[i]->key);
	(void)policy_limit(p, "max_message_size");
	/* addresses from the input itself */
	memset(a6, 0, sizeof(a6));
	memcpy(a6, data, size < sizeof(a6) ? size : sizeof(a6));
	(void)policy_client_trusted(p, AF_INET, a6);
	(void)policy_client_trusted(p, AF_INET6, a6);
	policy_unref(p);
	return 0;
}
