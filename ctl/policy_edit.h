/* policy_edit.h - in-memory edits of a Sluice__Policy.  Every string and
 * array is malloc'd (or protobuf-c's static empty string), so a policy
 * built or edited here is freed with sluice__policy__free_unpacked(p, NULL),
 * exactly like one unpacked from the wire.  Pure, no I/O. */
#ifndef SLUICECTL_POLICY_EDIT_H
#define SLUICECTL_POLICY_EDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

Sluice__Policy *policy_new(void);
/* Deep copy through pack/unpack. */
Sluice__Policy *policy_dup(const Sluice__Policy *);

/* Replace a string field, freeing the old value. */
void policy_set_str(char **field, const char *value);
/* Append a copy of s to a repeated string field. */
void policy_strv_add(char ***v, size_t *n, const char *s);

/* Lookups return the index or -1. */
int policy_find_network(const Sluice__Policy *, const char *cidr);
int policy_find_user(const Sluice__Policy *, const char *name);
int policy_find_hop(const Sluice__Policy *, const char *name);
int policy_find_route(const Sluice__Policy *, const char *pattern);
int policy_find_limit(const Sluice__Policy *, const char *key);

/* Appends return the new, initialised element (owned by the policy).
 * Networks keep allows before denies. */
Sluice__Network *policy_add_network(
    Sluice__Policy *, const char *cidr, bool deny);
Sluice__User *policy_add_user(Sluice__Policy *, const char *name);
Sluice__Hop *policy_add_hop(Sluice__Policy *, const char *name);
Sluice__Route *policy_add_route(Sluice__Policy *, const char *pattern);
Sluice__HopGroup *policy_route_add_group(Sluice__Route *);
/* The user's default route (created empty, pattern "*"). */
Sluice__Route *policy_user_route(Sluice__User *);
/* The route with the same conditions as r (route_same_match), or -1. */
int policy_find_route_like(const Sluice__Policy *, const Sluice__Route *);
Sluice__Limit *policy_add_limit(
    Sluice__Policy *, const char *key, int64_t value);

/* Removals free the element and keep the order of the rest. */
void policy_del_network(Sluice__Policy *, size_t i);
void policy_del_user(Sluice__Policy *, size_t i);
void policy_del_hop(Sluice__Policy *, size_t i);
void policy_del_route(Sluice__Policy *, size_t i);
void policy_del_limit(Sluice__Policy *, size_t i);
void policy_route_clear(Sluice__Route *);

/* Before an apply of a policy read from the controller: hops whose secret
 * was redacted keep it, users whose hash was redacted keep it. */
void policy_mark_kept(Sluice__Policy *);

/* Sets key to value; a value equal to the default removes the key, as a
 * policy lists only limits set away from their default.  The caller has
 * checked the key exists. */
void policy_set_limit(Sluice__Policy *, const char *key, int64_t value);

#endif
