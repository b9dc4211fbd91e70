/* console_admin.h - the admin endpoint's console body (AdminRequest
 * .console): operator accounts and the audit history for `sluicectl
 * console ...`.  Called from api_admin_handle on the admin thread and
 * from the console's own thread (console_api.c reads the audit history
 * through it); the reply parts live in struct console_admin_out. */
#ifndef SLUICE_CONSOLE_ADMIN_H
#define SLUICE_CONSOLE_ADMIN_H

#include "api.h"

struct console_admin_out {
	Sluice__ConsoleReply console;
	size_t ops_cap, audit_cap;
	bool is_oom;
};

void console_admin_out_free(struct console_admin_out *);
int console_admin(struct api *, const struct rpc_peer *,
    const Sluice__ConsoleRequest *, Sluice__AdminReply *,
    struct console_admin_out *, struct api_error *);

#endif
