/* resolver.c - c-ares driven by libevent: every socket c-ares opens is
 * watched by an event, and one timer follows ares_timeout().  An MX
 * lookup is a small state machine: the MX query, then one getaddrinfo per
 * MX host, then the callback with every target in order.  Errors are
 * classified once here into temporary and permanent. */
#include "resolver.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define RESOLVER_MAX_MX      16
#define RESOLVER_MAX_TARGETS 64

struct resolver_sock {
	ares_socket_t fd;
	struct event *ev;
};

struct resolver {
	struct event_base *base;
	ares_channel ch;
	struct event *timer;
	struct resolver_sock *socks;
	size_t nsocks;
	bool closing;
};

struct resolver_mxhost {
	char name[256];
	int pref;
	struct resolver_target *addrs;
	size_t naddrs;
	int status;
};

struct resolver_req {
	struct resolver *r;
	char *domain;
	resolver_cb cb;
	void *arg;
	uint64_t cookie;
	struct resolver_mxhost mx[RESOLVER_MAX_MX];
	size_t nmx;
	size_t pending;
	bool implicit; /* no MX: the domain itself */
};

struct resolver_host_arg {
	struct resolver_req *req;
	size_t idx;
};

static void resolver_arm(struct resolver *);

static void
resolver_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	ares_process_fd(r->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	resolver_arm(r);
}

static void
resolver_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	(void)fd;
	(void)what;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	resolver_arm(r);
}

static void
resolver_arm(struct resolver *r)
{
	struct timeval max = {5, 0}, tv, *t;

	if (r->closing)
		return;
	t = ares_timeout(r->ch, &max, &tv);
	evtimer_add(r->timer, t);
}

static void
resolver_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct resolver_sock *s = NULL;
	size_t i;
	short what =
	    (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	for (i = 0; i < r->nsocks; i++)
		if (r->socks[i].fd == fd)
			s = &r->socks[i];
	if (s != NULL && s->ev != NULL) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (what == 0) {
		if (s != NULL)
			*s = r->socks[--r->nsocks];
		return;
	}
	if (s == NULL) {
		struct resolver_sock *n =
		    realloc(r->socks, (r->nsocks + 1) * sizeof(*n));

		if (n == NULL)
			fatalx("resolver: out of memory");
		r->socks = n;
		s = &r->socks[r->nsocks++];
		s->fd = fd;
	}
	s->ev = event_new(r->base, fd, what | EV_PERSIST, resolver_on_io, r);
	if (s->ev == NULL)
		fatalx("resolver: event_new");
	event_add(s->ev, NULL);
}

struct resolver *
resolver_new(struct event_base *base, const char *servers)
{
	struct ares_options o;
	struct resolver *r;
	int rv;

	if ((rv = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		log_warnx("resolver: %s", ares_strerror(rv));
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->base = base;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = resolver_sock_state;
	o.sock_state_cb_data = r;
	o.timeout = 3000;
	o.tries = 2;
	if ((rv = ares_init_options(&r->ch, &o,
	         ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
	             ARES_OPT_TRIES)) != ARES_SUCCESS) {
		log_warnx("resolver: %s", ares_strerror(rv));
		free(r);
		return NULL;
	}
	if (servers != NULL && *servers != '\0' &&
	    (rv = ares_set_servers_ports_csv(r->ch, servers)) != ARES_SUCCESS) {
		log_warnx(
		    "resolver: servers '%s': %s", servers, ares_strerror(rv));
		ares_destroy(r->ch);
		free(r);
		return NULL;
	}
	if ((r->timer = evtimer_new(base, resolver_on_timer, r)) == NULL)
		fatalx("resolver: evtimer_new");
	return r;
}

void
resolver_free(struct resolver *r)
{
	size_t i;

	if (r == NULL)
		return;
	r->closing = true;
	ares_destroy(r->ch); /* callbacks run with ARES_EDESTRUCTION */
	for (i = 0; i < r->nsocks; i++)
		if (r->socks[i].ev != NULL)
			event_free(r->socks[i].ev);
	free(r->socks);
	event_free(r->timer);
	free(r);
	ares_library_cleanup();
}

static void
resolver_req_free(struct resolver_req *q)
{
	size_t i;

	for (i = 0; i < q->nmx; i++)
		free(q->mx[i].addrs);
	free(q->domain);
	free(q);
}

static enum resolver_status
resolver_classify(int status)
{
	return status == ARES_ENOTFOUND ? RESOLVER_PERMFAIL : RESOLVER_TEMPFAIL;
}

static void
resolver_finish(struct resolver_req *q)
{
	struct resolver_target t[RESOLVER_MAX_TARGETS];
	size_t i, j, n = 0;
	int status = ARES_SUCCESS;
	char err[300];

	if (q->r->closing) {
		resolver_req_free(q);
		return;
	}
	for (i = 0; i < q->nmx; i++) {
		if (q->mx[i].naddrs == 0 && status == ARES_SUCCESS)
			status = q->mx[i].status;
		for (j = 0; j < q->mx[i].naddrs && n < RESOLVER_MAX_TARGETS;
		     j++)
			t[n++] = q->mx[i].addrs[j];
	}
	if (n > 0)
		q->cb(q->arg, q->cookie, RESOLVER_OK, NULL, t, n);
	else {
		snprintf(err, sizeof(err), "%s: no address for %s%s (%s)",
		    q->domain, q->implicit ? "" : "any MX of ", q->domain,
		    ares_strerror(
		        status != ARES_SUCCESS ? status : ARES_ENODATA));
		/* An implicit MX that does not exist is permanent; MX hosts
		 * without addresses may be a transient misconfiguration. */
		q->cb(q->arg, q->cookie,
		    q->implicit ? resolver_classify(status) : RESOLVER_TEMPFAIL,
		    err, NULL, 0);
	}
	resolver_req_free(q);
}

static void
resolver_on_addr(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct resolver_host_arg *ha = arg;
	struct resolver_req *q = ha->req;
	struct resolver_mxhost *h = &q->mx[ha->idx];
	struct ares_addrinfo_node *ai;
	size_t n = 0;

	(void)timeouts;
	free(ha);
	h->status = status;
	if (status == ARES_SUCCESS && res != NULL) {
		for (ai = res->nodes; ai != NULL; ai = ai->ai_next)
			n++;
		h->addrs = calloc(n ? n : 1, sizeof(*h->addrs));
		for (ai = res->nodes; ai != NULL && h->addrs != NULL;
		     ai = ai->ai_next) {
			struct resolver_target *t = &h->addrs[h->naddrs];

			if (ai->ai_addrlen > sizeof(t->addr) ||
			    (ai->ai_family != AF_INET &&
			        ai->ai_family != AF_INET6))
				continue;
			snprintf(t->host, sizeof(t->host), "%s", h->name);
			t->pref = h->pref;
			memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
			t->addrlen = ai->ai_addrlen;
			h->naddrs++;
		}
	}
	if (res != NULL)
		ares_freeaddrinfo(res);
	if (--q->pending == 0)
		resolver_finish(q);
}

static void
resolver_lookup_hosts(struct resolver_req *q)
{
	struct ares_addrinfo_hints hints;
	size_t i, n = q->nmx;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	q->pending = n;
	for (i = 0; i < n; i++) {
		struct resolver_host_arg *ha = malloc(sizeof(*ha));

		if (ha == NULL)
			fatalx("resolver: out of memory");
		ha->req = q;
		ha->idx = i;
		ares_getaddrinfo(q->r->ch, q->mx[i].name, NULL, &hints,
		    resolver_on_addr, ha);
	}
}

static int
resolver_mx_cmp(const void *a, const void *b)
{
	const struct resolver_mxhost *x = a, *y = b;

	return x->pref - y->pref;
}

static void
resolver_on_mx(
    void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct resolver_req *q = arg;
	struct ares_mx_reply *mx = NULL, *m;
	char err[300];
	size_t i, j;

	(void)timeouts;
	if (q->r->closing) {
		resolver_req_free(q);
		return;
	}
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &mx);
	if (status == ARES_ENODATA) {
		/* RFC 5321 5.1: no MX, the domain is its own implicit MX. */
		q->implicit = true;
		snprintf(q->mx[0].name, sizeof(q->mx[0].name), "%s", q->domain);
		q->nmx = 1;
		resolver_lookup_hosts(q);
		return;
	}
	if (status != ARES_SUCCESS) {
		snprintf(err, sizeof(err), "MX lookup of %s: %s", q->domain,
		    ares_strerror(status));
		q->cb(
		    q->arg, q->cookie, resolver_classify(status), err, NULL, 0);
		resolver_req_free(q);
		return;
	}
	for (m = mx; m != NULL && q->nmx < RESOLVER_MAX_MX; m = m->next) {
		/* RFC 7505: a null MX says the domain takes no mail. */
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
			ares_free_data(mx);
			snprintf(err, sizeof(err),
			    "%s does not accept mail (null MX)", q->domain);
			q->cb(
			    q->arg, q->cookie, RESOLVER_PERMFAIL, err, NULL, 0);
			resolver_req_free(q);
			return;
		}
		snprintf(q->mx[q->nmx].name, sizeof(q->mx[q->nmx].name), "%s",
		    m->host);
		q->mx[q->nmx++].pref = m->priority;
	}
	ares_free_data(mx);
	/* Shuffle, then a stable sort: equal preferences in random order. */
	for (i = q->nmx; i > 1; i--) {
		struct resolver_mxhost tmp;

		j = (size_t)arc4random_uniform((uint32_t)i);
		tmp = q->mx[i - 1];
		q->mx[i - 1] = q->mx[j];
		q->mx[j] = tmp;
	}
	for (i = 1; i < q->nmx; i++)
		for (j = i;
		     j > 0 && resolver_mx_cmp(&q->mx[j - 1], &q->mx[j]) > 0;
		     j--) {
			struct resolver_mxhost tmp = q->mx[j];

			q->mx[j] = q->mx[j - 1];
			q->mx[j - 1] = tmp;
		}
	resolver_lookup_hosts(q);
}

void
resolver_mx(struct resolver *r, const char *domain, resolver_cb cb, void *arg,
    uint64_t cookie)
{
	struct resolver_req *q;

	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->domain = strdup(domain)) == NULL)
		fatalx("resolver: out of memory");
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->cookie = cookie;
	ares_query(r->ch, domain, ns_c_in, ns_t_mx, resolver_on_mx, q);
	resolver_arm(r);
}

void
resolver_host(struct resolver *r, const char *host, resolver_cb cb, void *arg,
    uint64_t cookie)
{
	struct resolver_req *q;

	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->domain = strdup(host)) == NULL)
		fatalx("resolver: out of memory");
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->cookie = cookie;
	q->implicit = true;
	snprintf(q->mx[0].name, sizeof(q->mx[0].name), "%s", host);
	q->nmx = 1;
	resolver_lookup_hosts(q);
	resolver_arm(r);
}
