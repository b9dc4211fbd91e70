/* sluicectl.h - what the command handlers share: the run context, the
 * one-line error exit and a few string helpers.  Every handler takes the
 * words after its command phrase and returns the process exit status. */
#ifndef SLUICECTL_H
#define SLUICECTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rpc_client;

struct ctl {
	const char *admin_url;
	bool json;
	struct rpc_client *rpc; /* opened on first call */
	char summary[512];      /* the command in words */
};

typedef int (*ctl_handler)(struct ctl *, int argc, char **argv);

/* "sluicectl: <message>" on stderr, exit 1. */
void ctl_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* "usage: sluicectl <usage>" on stderr, exit 2. */
void ctl_usage(const char *usage) __attribute__((noreturn));

/* Parse a non-negative decimal integer no larger than max; -1 if bad. */
int ctl_parse_u64(const char *s, uint64_t max, uint64_t *out);
/* The login name of the effective user, for policy history. */
const char *ctl_identity(void);

/* A read-modify-write of the policy (cmd_policy.c): edit changes the
 * head (or dies with a reason) and writes what it did into msg; applied
 * with the head's version as base, retried on a conflict. */
struct Sluice__Policy;
typedef void (*ctl_edit_fn)(
    struct Sluice__Policy *, void *arg, char *msg, size_t msglen);
int ctl_policy_mutate(struct ctl *, ctl_edit_fn, void *arg);

/* Handlers, one file per command family. */
int cmd_node_add(struct ctl *, int, char **);
int cmd_node_list(struct ctl *, int, char **);
int cmd_node_show(struct ctl *, int, char **);
int cmd_node_remove(struct ctl *, int, char **);
int cmd_node_drain(struct ctl *, int, char **);
int cmd_node_resume(struct ctl *, int, char **);
int cmd_node_lost(struct ctl *, int, char **);

int cmd_network_allow(struct ctl *, int, char **);
int cmd_network_deny(struct ctl *, int, char **);
int cmd_network_del(struct ctl *, int, char **);
int cmd_network_list(struct ctl *, int, char **);
int cmd_user_add(struct ctl *, int, char **);
int cmd_user_del(struct ctl *, int, char **);
int cmd_user_list(struct ctl *, int, char **);

/* Per-credential quota flags (--quota-hour-msgs N ...; issue 15), shared
 * by user add and user set (cmd_policy.c). */
struct ctl_user_quota {
	bool has[4]; /* hour_msgs hour_rcpts day_msgs day_rcpts */
	uint32_t v[4];
};
/* A quota flag at argv[*i] with its value (consumed: true). */
bool ctl_user_quota_flag(
    struct ctl_user_quota *, int argc, char **argv, int *i);
struct Sluice__User;
void ctl_user_quota_apply(struct Sluice__User *, const struct ctl_user_quota *);
int cmd_user_set(struct ctl *, int, char **);
int cmd_hop_add(struct ctl *, int, char **);
int cmd_hop_del(struct ctl *, int, char **);
int cmd_hop_list(struct ctl *, int, char **);
int cmd_dkim_add(struct ctl *, int, char **);
int cmd_dkim_list(struct ctl *, int, char **);
int cmd_dkim_del(struct ctl *, int, char **);
int cmd_dkim_rotate(struct ctl *, int, char **);
int cmd_dkim_dns(struct ctl *, int, char **);
int cmd_dkim_check(struct ctl *, int, char **);
int cmd_route_set(struct ctl *, int, char **);
int cmd_route_del(struct ctl *, int, char **);
int cmd_route_list(struct ctl *, int, char **);
int cmd_limit_set(struct ctl *, int, char **);
int cmd_limit_list(struct ctl *, int, char **);
int cmd_policy_export(struct ctl *, int, char **);
int cmd_policy_show(struct ctl *, int, char **);
int cmd_policy_apply(struct ctl *, int, char **);
int cmd_policy_diff(struct ctl *, int, char **);
int cmd_policy_check(struct ctl *, int, char **);
int cmd_policy_history(struct ctl *, int, char **);
int cmd_trace(struct ctl *, int, char **);
int cmd_hook_add(struct ctl *, int, char **);
int cmd_hook_del(struct ctl *, int, char **);
int cmd_hook_list(struct ctl *, int, char **);
int cmd_suppress_list(struct ctl *, int, char **);
int cmd_suppress_add(struct ctl *, int, char **);
int cmd_suppress_del(struct ctl *, int, char **);
int cmd_suppress_mode(struct ctl *, int, char **);
int cmd_route_explain(struct ctl *, int, char **);
int cmd_log(struct ctl *, int, char **);

int cmd_status(struct ctl *, int, char **);
int cmd_console_user(struct ctl *, int, char **);
int cmd_console_audit(struct ctl *, int, char **);
int cmd_alerts(struct ctl *, int, char **);
int cmd_queue_list(struct ctl *, int, char **);
int cmd_queue_retry(struct ctl *, int, char **);
int cmd_queue_hold(struct ctl *, int, char **);
int cmd_queue_release(struct ctl *, int, char **);
int cmd_queue_delete(struct ctl *, int, char **);
int cmd_queue_flush(struct ctl *, int, char **);
int cmd_queue_summary(struct ctl *, int, char **);

#endif
