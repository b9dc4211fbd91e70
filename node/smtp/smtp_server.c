/* smtp_server.c - the node's SMTP listeners (smtp_server.h): parses the
 * listen lines, builds the TLS context, binds every socket before
 * privileges are dropped, and hands accepted connections (TCP_NODELAY
 * set: replies go out in one send, see smtp_session.c) to the session
 * layer.  Configuration errors are returned with a reason; nothing binds
 * unless every line is valid. */
#include "smtp_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "policy_check.h"
#include "node.h"
#include "ratelimit.h"
#include "smtp_session.h"
#include "tls_server.h"

const char *const smtp_server_config_keys[] = {
    "listen", "tls_cert", "tls_key", NULL};

static void
smtp_server_on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	struct smtp_listener *l = arg;
	int one = 1;

	(void)lev;
	/* DESIGN.md "Performance": no Nagle on replies */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	smtp_session_start(l, fd, sa, socklen);
}

static void
smtp_server_on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct smtp_listener *l = arg;

	(void)lev;
	/* EMFILE and friends: libevent retries on the next readiness */
	log_warn("smtp listener %s: accept", l->name);
}

/* "ADDR:PORT ROLE [proxy_protocol] [name=NAME]"; the name (routes match
 * on it, default: the role) is 1-64 of [A-Za-z0-9._@+-]. */
static int
parse_listen(const char *line, struct smtp_listener *l,
    struct sockaddr_storage *ss, int *sslen, char *err, size_t errlen)
{
	char buf[256], *tok[4], *save = NULL, *p;
	const char *rname;
	size_t n = 0, i;

	if (strlen(line) >= sizeof(buf)) {
		snprintf(err, errlen, "listen: line too long");
		return -1;
	}
	strcpy(buf, line);
	for (p = strtok_r(buf, " \t", &save); p != NULL;
	     p = strtok_r(NULL, " \t", &save)) {
		if (n == 4) {
			snprintf(
			    err, errlen, "listen %s: too many words", line);
			return -1;
		}
		tok[n++] = p;
	}
	if (n < 2) {
		snprintf(err, errlen,
		    "listen %s: want ADDR:PORT relay|submission|smtps "
		    "[proxy_protocol] [name=NAME]",
		    line);
		return -1;
	}
	*sslen = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	if (evutil_parse_sockaddr_port(tok[0], (struct sockaddr *)ss, sslen) ==
	        -1 ||
	    (ss->ss_family == AF_INET &&
	        ((struct sockaddr_in *)ss)->sin_port == 0) ||
	    (ss->ss_family == AF_INET6 &&
	        ((struct sockaddr_in6 *)ss)->sin6_port == 0)) {
		snprintf(
		    err, errlen, "listen %s: bad address %s", line, tok[0]);
		return -1;
	}
	for (i = SMTP_ROLE_RELAY; i <= SMTP_ROLE_SMTPS; i++)
		if (strcmp(tok[1], smtp_role_name((enum smtp_role)i)) == 0)
			break;
	if (i > SMTP_ROLE_SMTPS) {
		snprintf(
		    err, errlen, "listen %s: unknown role %s", line, tok[1]);
		return -1;
	}
	l->role = (enum smtp_role)i;
	rname = tok[1];
	for (i = 2; i < n; i++) {
		if (strcmp(tok[i], "proxy_protocol") == 0 && !l->proxy)
			l->proxy = true;
		else if (strncmp(tok[i], "name=", 5) == 0 && rname == tok[1] &&
		         policy_check_name(tok[i] + 5) == 0)
			rname = tok[i] + 5;
		else {
			snprintf(err, errlen, "listen %s: unknown option %s",
			    line, tok[i]);
			return -1;
		}
	}
	snprintf(l->route_name, sizeof(l->route_name), "%s", rname);
	snprintf(l->name, sizeof(l->name), "%s", tok[0]);
	return 0;
}

static void
smtp_server_on_auth(void *arg, uint64_t id, bool ok)
{
	smtp_session_on_auth(arg, id, ok);
}

struct smtp_server *
smtp_server_open(struct node *n, char *err, size_t errlen)
{
	const struct config *c = n->conf;
	const char *cert = config_get(c, "tls_cert");
	const char *key = config_get(c, "tls_key");
	struct smtp_server *srv;
	struct sockaddr_storage ss;
	struct smtp_listener *l;
	const char *line;
	size_t i, nl = 0;
	int sslen;

	while (config_get_nth(c, "listen", nl) != NULL)
		nl++;
	if ((srv = calloc(1, sizeof(*srv))) == NULL ||
	    (srv->listeners = calloc(nl + 1, sizeof(*l))) == NULL ||
	    (srv->rl = ratelimit_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	srv->node = n;
	if ((cert == NULL) != (key == NULL)) {
		snprintf(err, errlen, "tls_cert and tls_key go together");
		goto fail;
	}
	if (cert != NULL &&
	    (srv->tls = tls_server_new(cert, key, err, errlen)) == NULL)
		goto fail;
	if ((srv->auth = auth_new(
	         n->base, smtp_server_on_auth, srv, err, errlen)) == NULL)
		goto fail;
	for (i = 0; i < nl; i++) {
		l = &srv->listeners[i];
		l->srv = srv;
		line = config_get_nth(c, "listen", i);
		if (parse_listen(line, l, &ss, &sslen, err, errlen) == -1)
			goto fail;
		if (l->role != SMTP_ROLE_RELAY && srv->tls == NULL) {
			/* submission needs STARTTLS for AUTH, smtps TLS */
			snprintf(err, errlen,
			    "listen %s: role %s needs tls_cert and tls_key",
			    line, smtp_role_name(l->role));
			goto fail;
		}
		l->lev =
		    evconnlistener_new_bind(n->base, smtp_server_on_accept, l,
		        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		            LEV_OPT_CLOSE_ON_EXEC,
		        1024, (struct sockaddr *)&ss, sslen);
		if (l->lev == NULL) {
			snprintf(err, errlen, "listen %s: cannot bind: %s",
			    l->name,
			    evutil_socket_error_to_string(
			        EVUTIL_SOCKET_ERROR()));
			goto fail;
		}
		evconnlistener_set_error_cb(
		    l->lev, smtp_server_on_accept_error);
		srv->nlisteners++;
		log_info("smtp listening on %s role=%s%s", l->name,
		    smtp_role_name(l->role), l->proxy ? " proxy_protocol" : "");
	}
	return srv;
fail:
	smtp_server_close(srv);
	return NULL;
}

int
smtp_server_check_config(const struct config *c, char *err, size_t errlen)
{
	const char *cert = config_get(c, "tls_cert");
	const char *key = config_get(c, "tls_key");
	struct smtp_listener l;
	struct sockaddr_storage ss;
	struct tls_server *tls = NULL;
	const char *line;
	size_t i;
	int sslen, rv = -1;

	if ((cert == NULL) != (key == NULL)) {
		snprintf(err, errlen, "tls_cert and tls_key go together");
		return -1;
	}
	if (cert != NULL &&
	    (tls = tls_server_new(cert, key, err, errlen)) == NULL)
		return -1;
	for (i = 0; (line = config_get_nth(c, "listen", i)) != NULL; i++) {
		memset(&l, 0, sizeof(l));
		if (parse_listen(line, &l, &ss, &sslen, err, errlen) == -1)
			goto out;
		if (l.role != SMTP_ROLE_RELAY && tls == NULL) {
			snprintf(err, errlen,
			    "listen %s: role %s needs tls_cert and tls_key",
			    line, smtp_role_name(l.role));
			goto out;
		}
	}
	rv = 0;
out:
	tls_server_free(tls);
	return rv;
}

void
smtp_server_close(struct smtp_server *srv)
{
	size_t i;

	if (srv == NULL)
		return;
	smtp_session_close_all(srv);
	if (srv->listeners != NULL)
		for (i = 0; i < srv->nlisteners; i++)
			evconnlistener_free(srv->listeners[i].lev);
	free(srv->listeners);
	auth_free(srv->auth);
	tls_server_free(srv->tls);
	ratelimit_free(srv->rl);
	free(srv);
}

/* Drain support (issue 5, node/command.c).  Linux: shutdown(SHUT_RD) on a
 * listening socket stops listening (connects are refused, the pending
 * backlog is reset) and listen() on it again resumes on the same bound
 * address. */
int
smtp_server_pause(struct smtp_server *srv)
{
	size_t i;
	int rv = 0;

	for (i = 0; srv != NULL && i < srv->nlisteners; i++) {
		evconnlistener_disable(srv->listeners[i].lev);
		if (shutdown(evconnlistener_get_fd(srv->listeners[i].lev),
		        SHUT_RD) == -1) {
			log_warn(
			    "smtp listener %s: pause", srv->listeners[i].name);
			rv = -1;
		}
	}
	return rv;
}

int
smtp_server_resume(struct smtp_server *srv)
{
	size_t i;
	int rv = 0;

	for (i = 0; srv != NULL && i < srv->nlisteners; i++) {
		if (listen(evconnlistener_get_fd(srv->listeners[i].lev),
		        1024) == -1) {
			log_warn(
			    "smtp listener %s: resume", srv->listeners[i].name);
			rv = -1;
			continue;
		}
		evconnlistener_enable(srv->listeners[i].lev);
	}
	return rv;
}

size_t
smtp_server_sessions(const struct smtp_server *srv)
{
	return srv != NULL ? srv->nsessions : 0;
}
