/* cmd_user_route.c - `sluicectl user set NAME ...`: a credential's
 * routing policy (issue 15): the hold flag (its mail is accepted and kept
 * queued until `queue release`: a leaked credential quarantined without
 * bouncing), the envelope-sender and From: rewrites to a verified
 * identity, and its default route.  One policy version per call.  The
 * flag parsing and the edit are user_route.h's, for other `user set`
 * flags to share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_check.h"
#include "policy_edit.h"
#include "proto.h"
#include "sluicectl.h"
#include "user_route.h"
#include "xmalloc.h"

void
user_route_arg_init(struct user_route_arg *a, int argc)
{
	memset(a, 0, sizeof(*a));
	a->hold = -1;
	a->groups = xcalloc((size_t)argc + 1, sizeof(char *));
}

void
user_route_arg_fini(struct user_route_arg *a)
{
	free(a->groups);
	a->groups = NULL;
}

bool
user_route_arg_any(const struct user_route_arg *a)
{
	return a->hold >= 0 || a->rewrite_sender != NULL ||
	       a->rewrite_from != NULL || a->ngroups > 0 || a->no_route;
}

void
user_route_apply(Sluice__User *u, const struct user_route_arg *a)
{
	Sluice__HopGroup *g;
	char *copy, *tok, *save;
	int k;

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
}

/* user set: the routing flags and the quotas (issue 15 part 2). */
struct user_set_arg {
	struct user_route_arg route;
	struct ctl_user_quota quota;
};

static void
user_set_edit(Sluice__Policy *p, void *arg, char *msg, size_t msglen)
{
	struct user_set_arg *a = arg;
	int i = policy_find_user(p, a->route.name);

	if (i < 0)
		ctl_die(
		    "no user named '%s' (add it with user add)", a->route.name);
	p->users[i]->has_password = true; /* keep the stored one */
	user_route_apply(p->users[i], &a->route);
	ctl_user_quota_apply(p->users[i], &a->quota);
	snprintf(msg, msglen, "user %s updated", a->route.name);
}

static void
check_address(const char *flag, const char *s)
{
	if (s[0] != '\0' && (policy_check_sender(s) == -1 ||
	                        strchr(s, '*') != NULL || s[0] == '@'))
		ctl_die("%s '%s' must be one address (local@domain)", flag, s);
}

int
user_route_flag(struct user_route_arg *a, int argc, char **argv, int *ip)
{
	int i = *ip;

	if (strcmp(argv[i], "--hold") == 0)
		a->hold = 1;
	else if (strcmp(argv[i], "--no-hold") == 0)
		a->hold = 0;
	else if (strcmp(argv[i], "--rewrite-sender") == 0 && i + 1 < argc) {
		a->rewrite_sender = argv[++i];
		check_address("--rewrite-sender", a->rewrite_sender);
	} else if (strcmp(argv[i], "--rewrite-from") == 0 && i + 1 < argc) {
		a->rewrite_from = argv[++i];
		check_address("--rewrite-from", a->rewrite_from);
	} else if (strcmp(argv[i], "--route") == 0 && i + 1 < argc)
		a->groups[a->ngroups++] = argv[++i];
	else if (strcmp(argv[i], "--no-route") == 0)
		a->no_route = true;
	else
		return 0;
	if (a->no_route && a->ngroups > 0)
		ctl_die("--route and --no-route exclude each other");
	*ip = i;
	return 1;
}

int
cmd_user_set(struct ctl *ctl, int argc, char **argv)
{
	static const char use[] =
	    "user set NAME [--hold | --no-hold] [--rewrite-sender ADDR] "
	    "[--rewrite-from ADDR] [--route HOP[,HOP...]]... [--no-route] "
	    "[--quota-hour-msgs N] [--quota-hour-rcpts N] "
	    "[--quota-day-msgs N] [--quota-day-rcpts N]";
	struct user_set_arg a;
	int i, rc;

	if (argc < 2 || argv[0][0] == '-')
		ctl_usage(use);
	memset(&a.quota, 0, sizeof(a.quota));
	user_route_arg_init(&a.route, argc);
	a.route.name = argv[0];
	for (i = 1; i < argc; i++)
		if (!user_route_flag(&a.route, argc, argv, &i) &&
		    !ctl_user_quota_flag(&a.quota, argc, argv, &i))
			ctl_usage(use);
	rc = ctl_policy_mutate(ctl, user_set_edit, &a);
	user_route_arg_fini(&a.route);
	return rc;
}
