/* dkim_dns.c - TXT lookups of DKIM key records and their comparison with
 * the stored key (dkim_dns.h).  c-ares runs to completion here: one query,
 * poll() on its sockets (no FD_SETSIZE limit: the controller may hold more
 * than 1024 descriptors), a 5 s budget. */
#include "dkim_dns.h"

#include <arpa/nameser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>

#include <ares.h>

struct txt_q {
	bool done;
	int status;
	char *txt;
	bool none;
};

static void
on_txt(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct txt_q *q = arg;
	struct ares_txt_ext *txt = NULL, *t;
	size_t n = 0;

	(void)timeouts;
	q->done = true;
	q->status = status;
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		q->none = true;
		return;
	}
	if (status != ARES_SUCCESS)
		return;
	if ((q->status = ares_parse_txt_reply_ext(abuf, alen, &txt)) !=
	    ARES_SUCCESS) {
		if (q->status == ARES_ENODATA)
			q->none = true;
		return;
	}
	/* the first record: strings from one record_start to the next */
	for (t = txt; t != NULL && (t == txt || !t->record_start); t = t->next)
		n += t->length;
	if ((q->txt = calloc(1, n + 1)) != NULL) {
		n = 0;
		for (t = txt; t != NULL && (t == txt || !t->record_start);
		     t = t->next) {
			memcpy(q->txt + n, t->txt, t->length);
			n += t->length;
		}
	}
	ares_free_data(txt);
}

enum dkim_dns_status
dkim_dns_txt(
    const char *servers, const char *name, char **txt, char *err, size_t errlen)
{
	ares_channel ch;
	struct ares_options o;
	struct txt_q q = {false, 0, NULL, false};
	int rv, rounds = 0;

	*txt = NULL;
	if ((rv = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: %s", ares_strerror(rv));
		return DKIM_DNS_ERROR;
	}
	memset(&o, 0, sizeof(o));
	o.timeout = 2000; /* ms, with ARES_OPT_TIMEOUTMS */
	o.tries = 2;
	if ((rv = ares_init_options(&ch, &o,
	         ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES)) != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: %s", ares_strerror(rv));
		ares_library_cleanup();
		return DKIM_DNS_ERROR;
	}
	if (servers != NULL &&
	    (rv = ares_set_servers_ports_csv(ch, servers)) != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver '%s': %s", servers,
		    ares_strerror(rv));
		goto out;
	}
	ares_query(ch, name, ns_c_in, ns_t_txt, on_txt, &q);
	while (!q.done && rounds++ < 1000) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp;
		unsigned bits;
		int i, n = 0, ms;

		/* ARES_GETSOCK_WRITABLE shifts a signed 1 into bit 31 (UB):
		 * the same tests on unsigned bits. */
		bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			bool rd = (bits & (1U << i)) != 0;
			bool wr =
			    (bits & (1U << (i + ARES_GETSOCK_MAXNUM))) != 0;

			if (!rd && !wr)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events =
			    (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
			pfd[n].revents = 0;
			n++;
		}
		if (n == 0)
			break;
		tvp = ares_timeout(ch, NULL, &tv);
		ms = tvp == NULL
		         ? 1000
		         : (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1;
		if (poll(pfd, (nfds_t)n, ms) <= 0) {
			/* timeout (or EINTR): let c-ares retry or give up */
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (i = 0; i < n; i++)
			ares_process_fd(ch,
			    (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
			        ? pfd[i].fd
			        : ARES_SOCKET_BAD,
			    (pfd[i].revents & POLLOUT) ? pfd[i].fd
			                               : ARES_SOCKET_BAD);
	}
	if (!q.done)
		snprintf(err, errlen, "no answer for %s", name);
	else if (!q.none && q.txt == NULL)
		snprintf(err, errlen, "%s: %s", name, ares_strerror(q.status));
out:
	ares_destroy(ch);
	ares_library_cleanup();
	if (q.txt != NULL) {
		*txt = q.txt;
		return DKIM_DNS_FOUND;
	}
	return q.none ? DKIM_DNS_NONE : DKIM_DNS_ERROR;
}

/* The value of tag t in a tag-list (RFC 6376 3.2), WSP removed, into
 * out; false if absent. */
static bool
tag(const char *txt, const char *t, char *out, size_t outlen)
{
	const char *p = txt;
	size_t tl = strlen(t);

	while (*p != '\0') {
		const char *s = p, *e;
		size_t n = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		e = strchr(s, ';');
		if (e == NULL)
			e = s + strlen(s);
		if (strncmp(s, t, tl) == 0) {
			const char *v = s + tl;
			while (*v == ' ' || *v == '\t')
				v++;
			if (*v == '=') {
				for (v++; v < e && n + 1 < outlen; v++)
					if (*v != ' ' && *v != '\t' &&
					    *v != '\r' && *v != '\n')
						out[n++] = *v;
				out[n] = '\0';
				return true;
			}
		}
		p = *e == ';' ? e + 1 : e;
	}
	return false;
}

const char *
dkim_dns_compare(const char *txt, const char *alg, const char *pub)
{
	char v[16], k[32], *p;
	size_t plen = strlen(txt) + 1;
	const char *why = NULL;

	if (tag(txt, "v", v, sizeof(v)) && strcmp(v, "DKIM1") != 0)
		return "not a DKIM key record (v= is not DKIM1)";
	if (!tag(txt, "k", k, sizeof(k)))
		snprintf(k, sizeof(k), "rsa"); /* RFC 6376 3.6.1 default */
	if (strcasecmp(k, alg[0] != '\0' ? alg : "rsa") != 0)
		return "k= names another algorithm";
	if ((p = malloc(plen)) == NULL)
		return "out of memory";
	if (!tag(txt, "p", p, plen))
		why = "no p= tag";
	else if (p[0] == '\0')
		why = "key revoked (empty p=)";
	else if (strcmp(p, pub) != 0)
		why = "p= is another key";
	free(p);
	return why;
}
