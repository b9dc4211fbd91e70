/* cmd_user_route.c - `sluicectl user set NAME ...`: a credential's
 * routing policy (issue 15): the hold flag (its mail is accepted and kept
 * queued until `queue release`: a leaked credential quarantined without
 * bouncing), the envelope-sender and From: rewrites to a verified
 * identity, and its default route.  One policy version per call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_check.h"
#include "policy_edit.h"
#include "proto.h"
#include "sluicectl.h"
#include "xmalloc.h"

struct user_route_arg {
	const char *name;
	int hold;                                  /* -1: keep, 0 off, 1 on */
	const char *rewrite_sender, *rewrite_from; /* NULL: keep */
	char **groups; /* --route, one group each ("a,b") */
	int ngroups;
	bool no_route;
};

static void
user_route_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct user_route_arg *a = arg;
	Sluice__User *u;
	Sluice__HopGroup *g;
	char *copy, *tok, *save;
	int i = policy_find_user(p, a->name), k;

	if (i < 0)
		ctl_die("no user named '%s' (add it with user add)", a->name);
	u = p->users[i];
	u->has_password = true; /* keep the stored one */
	if (a->hold >= 0)
		u->hold = a->hold != 0;
	if (a->rewrite_sender != NULL)
		policy_set_str(&u->rewrite_sender, a->rewrite_sender);
	if (a->rewrite_from != NULL)
		policy_set_str(&u->rewrite_from, a->rewrite_from);
	if (a->no_route || a->ngroups > 0) {
		sluice__route__free_unpacked(u->default_route, NULL);
		u->default_route = NULL;
	}
	for (k = 0; k < a->ngroups; k++) {
		g = policy_route_add_group(policy_user_route(u));
		copy = xstrdup(a->groups[k]);
		for (tok = strtok_r(copy, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save))
			policy_strv_add(&g->hops, &g->n_hops, tok);
		free(copy);
		if (g->n_hops == 0)
			ctl_die("empty hop group '%s'", a->groups[k]);
	}
	snprintf(msg, msglen, "user %s updated", a->name);
}

static void
check_address(const char *flag, const char *s)
{
	if (s[0] != '\0' && (policy_check_sender(s) == -1 ||
	                        strchr(s, '*') != NULL || s[0] == '@'))
		ctl_die("%s '%s' must be one address (local@domain)", flag, s);
}

int
cmd_user_set(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "user set NAME [--hold | --no-hold] [--rewrite-sender ADDR] "
	    "[--rewrite-from ADDR] [--route HOP[,HOP...]]... [--no-route]";
	struct user_route_arg a;
	int i, rc;

	memset(&a, 0, sizeof(a));
	a.hold = -1;
	if (argc < 2 || argv[0][0] == '-')
		ctl_usage(use);
	a.name = argv[0];
	a.groups = xcalloc((size_t)argc, sizeof(char *));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--hold") == 0)
			a.hold = 1;
		else if (strcmp(argv[i], "--no-hold") == 0)
			a.hold = 0;
		else if (strcmp(argv[i], "--rewrite-sender") == 0 &&
		         i + 1 < argc) {
			a.rewrite_sender = argv[++i];
			check_address("--rewrite-sender", a.rewrite_sender);
		} else if (strcmp(argv[i], "--rewrite-from") == 0 &&
		           i + 1 < argc) {
			a.rewrite_from = argv[++i];
			check_address("--rewrite-from", a.rewrite_from);
		} else if (strcmp(argv[i], "--route") == 0 && i + 1 < argc)
			a.groups[a.ngroups++] = argv[++i];
		else if (strcmp(argv[i], "--no-route") == 0)
			a.no_route = true;
		else
			ctl_usage(use);
	}
	if (a.no_route && a.ngroups > 0)
		ctl_die("--route and --no-route exclude each other");
	rc = ctl_policy_mutate(ctl, user_route_edit, &a);
	free(a.groups);
	return rc;
}
