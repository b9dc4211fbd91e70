/* user_route.h - a credential's routing policy flags (issue 15): hold,
 * rewrite_sender, rewrite_from, default route.  cmd_user_route.c parses
 * them and applies them to a user; kept separate so another `user set`
 * (quotas) can take these flags too: call user_route_flag() for a flag
 * it does not know and user_route_apply() in its edit. */
#ifndef SLUICECTL_USER_ROUTE_H
#define SLUICECTL_USER_ROUTE_H

#include <stdbool.h>

#include "proto.h"

struct user_route_arg {
	const char *name;
	int hold;                                  /* -1: keep, 0 off, 1 on */
	const char *rewrite_sender, *rewrite_from; /* NULL: keep, "": off */
	char **groups; /* --route, one hop group each ("a,b") */
	int ngroups;
	bool no_route;
};

/* argc: the most flags there can be (sizes the group list). */
void user_route_arg_init(struct user_route_arg *, int argc);
void user_route_arg_fini(struct user_route_arg *);
/* argv[*ip] is one of our flags: consumed (its value too, *ip moved to
 * the last word used), 1; else 0.  Bad values die with one line. */
int user_route_flag(struct user_route_arg *, int argc, char **argv, int *ip);
/* Any of our flags given? */
bool user_route_arg_any(const struct user_route_arg *);
/* The flags given, onto u. */
void user_route_apply(Sluice__User *u, const struct user_route_arg *);

#endif
