/* smtp_server.h - the node's SMTP listeners (roles relay, submission,
 * smtps; optional PROXY protocol), accept, per-IP connection limits.
 * Listener configuration comes from the node config:
 *   listen = 127.0.0.1:2525 relay [proxy_protocol]
 *   listen = [::1]:2587 submission
 *   listen = 0.0.0.0:465 smtps
 *   tls_cert = /etc/sluice/smtp.crt
 *   tls_key = /etc/sluice/smtp.key
 * Loop thread only. */
#ifndef SLUICE_SMTP_SERVER_H
#define SLUICE_SMTP_SERVER_H

#include <stddef.h>

struct node;
struct smtp_server;

/* Config keys this module reads (node.c accepts them). */
extern const char *const smtp_server_config_keys[];

/* Binds every listener (before privileges are dropped) and starts
 * accepting.  NULL with err on a bad listen line or a bind failure. */
struct smtp_server *smtp_server_open(struct node *, char *err, size_t errlen);
void smtp_server_close(struct smtp_server *);

/* Drain (issue 5, node/command.c): pause stops listening - new
 * connections are refused, so a load balancer moves on - while sessions
 * already open go on; resume listens again on the same sockets (no
 * re-bind, so it works after privileges are dropped).  0 or -1. */
int smtp_server_pause(struct smtp_server *);
int smtp_server_resume(struct smtp_server *);
/* SMTP sessions open now. */
size_t smtp_server_sessions(const struct smtp_server *);
/* For --check-config: every listen line parses, roles that need TLS have
 * it, and the certificate and key load.  Binds nothing.  0 or -1 with
 * err. */
struct config;
int smtp_server_check_config(const struct config *, char *err, size_t errlen);

#endif
