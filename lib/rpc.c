/* rpc.c - nng REQ/REP transport for protobuf-c messages (see rpc.h), and
 * the control plane's transport security: mutual TLS on tls+tcp://, and the
 * rule that plaintext never leaves the machine unless asked to. */
#include "rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "log.h"

struct rpc_server {
	nng_socket sock;
	nng_listener listener;
	char url[256];
	/* TLS handshake failures seen in the listener's statistics. */
	uint64_t seen_auth, seen_proto;
	int64_t checked_at;
};

/* ------------------------------------------- connection failure reasons
 *
 * nng 1.5 reports nothing about a connection that fails before it is a
 * pipe: no pipe event, no callback.  Its statistics count them, per
 * dialer and per listener, by kind ("auth" for a TLS handshake that
 * failed on certificates, "refused", "proto", "timeout"), which is all
 * there is: neither the mbed TLS reason (unknown CA, no certificate,
 * expired are all "auth") nor, on a listener, the peer's address. */

struct rpc_conn_stats {
	uint64_t auth, refused, proto, timeout;
};

/* Direct children only: nng 1.5's nng_stat_find() and
 * nng_stat_find_listener() search too widely and may answer with another
 * object's counter. */
static uint64_t
rpc_stat_value(nng_stat *parent, const char *name)
{
	nng_stat *st;

	for (st = parent != NULL ? nng_stat_child(parent) : NULL; st != NULL;
	     st = nng_stat_next(st))
		if (strcmp(nng_stat_name(st), name) == 0)
			return nng_stat_value(st);
	return 0;
}

/* The statistics of the listener or dialer ("listener", "dialer") id. */
static nng_stat *
rpc_stat_scope(nng_stat *root, const char *kind, int id)
{
	nng_stat *st;

	for (st = nng_stat_child(root); st != NULL; st = nng_stat_next(st))
		if (strcmp(nng_stat_name(st), kind) == 0 &&
		    rpc_stat_value(st, "id") == (uint64_t)id)
			return st;
	return NULL;
}

static void
rpc_conn_stats(nng_stat *st, struct rpc_conn_stats *out)
{
	out->auth = rpc_stat_value(st, "auth");
	out->refused = rpc_stat_value(st, "refused");
	out->proto = rpc_stat_value(st, "proto");
	out->timeout = rpc_stat_value(st, "timeout");
}

#define RPC_WHY_AUTH                                                           \
	"TLS handshake failed: a certificate was not accepted (unknown CA, "   \
	"none, or expired; by this side or the peer)"

uint8_t *
rpc_pack(const ProtobufCMessage *msg, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf;

	if ((buf = malloc(n > 0 ? n : 1)) == NULL)
		return NULL;
	*len = protobuf_c_message_pack(msg, buf);
	return buf;
}

/* ------------------------------------------------------- url security */

enum rpc_scheme {
	RPC_LOCAL,     /* ipc://, inproc:// */
	RPC_TLS,       /* tls+tcp:// (and tls+tcp4/6) */
	RPC_PLAINTEXT, /* tcp://, ws:// and anything else on a network */
};

static enum rpc_scheme
rpc_scheme(const char *url)
{
	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
		return RPC_LOCAL;
	if (strncmp(url, "tls+tcp://", 10) == 0 ||
	    strncmp(url, "tls+tcp4://", 11) == 0 ||
	    strncmp(url, "tls+tcp6://", 11) == 0)
		return RPC_TLS;
	return RPC_PLAINTEXT;
}

/* The host part of "scheme://host:port" or "scheme://[v6]:port" into out
 * (brackets removed); "" for a wildcard.  -1 if there is no "://". */
static int
rpc_url_host(const char *url, char *out, size_t outlen)
{
	const char *h, *e;

	if ((h = strstr(url, "://")) == NULL)
		return -1;
	h += 3;
	if (*h == '[') {
		h++;
		if ((e = strchr(h, ']')) == NULL)
			return -1;
	} else if ((e = strrchr(h, ':')) == NULL)
		e = h + strlen(h);
	if ((size_t)(e - h) >= outlen)
		return -1;
	memcpy(out, h, (size_t)(e - h));
	out[e - h] = '\0';
	if (strcmp(out, "*") == 0)
		out[0] = '\0';
	return 0;
}

/* Literal loopback addresses and the name "localhost" only: any other
 * name may resolve to a network address now or later. */
static bool
rpc_host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

int
rpc_url_check(const char *url, const struct rpc_tls *tls, bool listen,
    char *err, size_t errlen)
{
	const char *keys = tls != NULL && tls->keys != NULL
	                       ? tls->keys
	                       : "a CA file and a certificate+key file";
	char host[256];
	bool wild;

	switch (rpc_scheme(url)) {
	case RPC_LOCAL:
		return 0;
	case RPC_TLS:
		if (tls == NULL || tls->ca_file == NULL ||
		    (tls->cert_key_file == NULL &&
		        (tls->cert_file == NULL || tls->key_file == NULL))) {
			snprintf(err, errlen,
			    "%s: tls+tcp:// is mutual TLS and needs %s", url,
			    keys);
			return -1;
		}
		return 0;
	case RPC_PLAINTEXT:
		break;
	}
	if (rpc_url_host(url, host, sizeof(host)) == -1) {
		snprintf(err, errlen, "%s: not an nng URL", url);
		return -1;
	}
	if (host[0] != '\0' && rpc_host_is_loopback(host))
		return 0;
	wild = host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 ||
	       strcmp(host, "::") == 0;
	if (tls != NULL && tls->insecure)
		return 0;
	snprintf(err, errlen,
	    "refusing %s: plain %.*s to %s would carry enrollment tokens "
	    "and smart-host secrets unencrypted; use tls+tcp:// (with %s), "
	    "or set 'insecure = yes' to accept that",
	    url, (int)(strstr(url, "://") - url + 3), url,
	    wild ? (listen ? "every interface" : "a wildcard address")
	         : "a non-loopback address",
	    keys);
	return -1;
}

/* A private key readable by everyone is a finding, not a warning. */
static int
rpc_tls_key_private(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(err, errlen,
		    "%s holds a private key and is readable by every user "
		    "(mode %04o); chmod o-r it",
		    path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* Reads a PEM file (at most 1 MiB) into a NUL-terminated buffer. */
static char *
rpc_read_pem(const char *path, char *err, size_t errlen)
{
	char *buf;
	size_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(1024 * 1024 + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, 1024 * 1024, f);
	if (ferror(f) || !feof(f)) {
		snprintf(err, errlen, "%s: unreadable or over 1 MiB", path);
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Our certificate and key: one combined file, or two. */
static int
rpc_tls_own_cert(
    nng_tls_config *cfg, const struct rpc_tls *tls, char *err, size_t errlen)
{
	char *cert, *key;
	int rv;

	if (tls->cert_key_file != NULL) {
		if ((rv = nng_tls_config_cert_key_file(
		         cfg, tls->cert_key_file, NULL)) != 0) {
			snprintf(err, errlen,
			    "cannot load a certificate and private key from "
			    "%s: %s",
			    tls->cert_key_file, nng_strerror(rv));
			return -1;
		}
		return 0;
	}
	if ((cert = rpc_read_pem(tls->cert_file, err, errlen)) == NULL)
		return -1;
	if ((key = rpc_read_pem(tls->key_file, err, errlen)) == NULL) {
		free(cert);
		return -1;
	}
	rv = nng_tls_config_own_cert(cfg, cert, key, NULL);
	/* the key leaves our memory as soon as the TLS library has it */
	explicit_bzero(key, strlen(key));
	free(key);
	free(cert);
	if (rv != 0) {
		snprintf(err, errlen,
		    "cannot use the certificate %s with the key %s: %s",
		    tls->cert_file, tls->key_file, nng_strerror(rv));
		return -1;
	}
	return 0;
}

/* A TLS configuration for one dialer or listener of url. */
static nng_tls_config *
rpc_tls_config(const char *url, const struct rpc_tls *tls, bool server,
    char *err, size_t errlen)
{
	nng_tls_config *cfg;
	char host[256];
	int rv;

	if (rpc_tls_key_private(
	        tls->cert_key_file != NULL ? tls->cert_key_file : tls->key_file,
	        err, errlen) == -1)
		return NULL;
	if ((rv = nng_tls_config_alloc(&cfg,
	         server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)) != 0) {
		snprintf(err, errlen, "tls: %s", nng_strerror(rv));
		return NULL;
	}
	/* TLS 1.2 and later (1.3 where the TLS library has it). */
	if (nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_3) != 0 &&
	    (rv = nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_2)) != 0) {
		snprintf(err, errlen, "tls version: %s", nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_ca_file(cfg, tls->ca_file)) != 0) {
		snprintf(err, errlen, "cannot load CA certificates from %s: %s",
		    tls->ca_file, nng_strerror(rv));
		goto fail;
	}
	if (rpc_tls_own_cert(cfg, tls, err, errlen) == -1)
		goto fail;
	/* Mutual: the peer must present a certificate from the CA. */
	if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) !=
	    0) {
		snprintf(err, errlen, "tls auth mode: %s", nng_strerror(rv));
		goto fail;
	}
	if (!server) {
		if (tls->server_name == NULL &&
		    rpc_url_host(url, host, sizeof(host)) == -1) {
			snprintf(err, errlen, "%s: not an nng URL", url);
			goto fail;
		}
		if ((rv = nng_tls_config_server_name(cfg,
		         tls->server_name != NULL ? tls->server_name : host)) !=
		    0) {
			snprintf(err, errlen, "tls server name: %s",
			    nng_strerror(rv));
			goto fail;
		}
	}
	return cfg;
fail:
	nng_tls_config_free(cfg);
	return NULL;
}

int
rpc_endpoint_check(const char *url, const struct rpc_tls *tls, bool listen,
    char *err, size_t errlen)
{
	nng_tls_config *cfg;

	if (rpc_url_check(url, tls, listen, err, errlen) == -1)
		return -1;
	if (rpc_scheme(url) != RPC_TLS)
		return 0;
	if ((cfg = rpc_tls_config(url, tls, listen, err, errlen)) == NULL)
		return -1;
	nng_tls_config_free(cfg);
	return 0;
}

/* ----------------------------------------------------------- client */

/* One REQ socket per endpoint, so that we know which controller answers and
 * which does not.  A controller that is down has no connection and is
 * skipped at once; one that hangs with its connections open (stopped,
 * swapping, stuck in a lock) is only visible as silence.  So with racing
 * on (rpc_client_set_race), a request goes to the preferred endpoint (the
 * one that answered last), and if it has not answered within race_ms, to
 * the next one as well; the first reply wins.  An endpoint left with an
 * unanswered request is "suspect" and skipped until it answers: its old
 * request stays outstanding and doubles as the probe, and after
 * RPC_STALE_MS without an answer a later request probes it afresh. */

/* An unanswered request is given up (and the endpoint probed afresh by a
 * later call) after this long. */
#define RPC_STALE_MS 10000

static int64_t
rpc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct rpc_endpoint {
	struct rpc_client *c;
	nng_socket sock;
	nng_dialer dialer;
	struct rpc_conn_stats seen; /* caller's thread only */
	nng_aio *aio;
	char url[256];
	atomic_int pipes; /* live connections (pipe notifications) */
	/* Under c->mu. */
	bool busy;       /* a send or receive is in flight on aio */
	bool receiving;  /* the request is out, waiting for its reply */
	bool cancelling; /* the caller is cancelling: do not chain */
	bool suspect;    /* left a request unanswered: skipped */
	uint64_t gen;    /* the call the request in flight belongs to */
	nng_msg *reply;  /* reply to call gen, not yet taken */
	int64_t sent_at;
};

struct rpc_client {
	struct rpc_endpoint ep[RPC_MAX_ENDPOINTS];
	size_t nep;
	int timeout_ms;
	int race_ms; /* 0: one endpoint at a time, no racing */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC; an endpoint changed */
	/* Under mu. */
	size_t preferred; /* the endpoint that answered the last call */
	uint64_t gen;     /* current call */
	bool aborted;
};

static void
rpc_msg_free(nng_msg *m)
{
	if (m != NULL)
		nng_msg_free(m);
}

static void
rpc_signal(struct rpc_client *c)
{
	pthread_mutex_lock(&c->mu);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* nng thread: a connection to the endpoint came or went. */
static void
rpc_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct rpc_endpoint *e = arg;
	int n;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&e->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST) {
		/* a pipe closed before ADD_POST is reported too */
		n = atomic_load(&e->pipes);
		while (n > 0 &&
		       !atomic_compare_exchange_weak(&e->pipes, &n, n - 1))
			;
	}
	rpc_signal(e->c);
}

/* nng thread: the send or the receive on e->aio completed.  The receive is
 * chained here under c->mu, so a caller that set e->cancelling and then
 * cancels the aio always finds either nothing or that receive. */
static void
rpc_ep_cb(void *arg)
{
	struct rpc_endpoint *e = arg;
	struct rpc_client *c = e->c;
	int rv = nng_aio_result(e->aio);
	nng_msg *m;

	pthread_mutex_lock(&c->mu);
	if (!e->receiving) {
		if (rv != 0) {
			/* a failed send hands the message back */
			rpc_msg_free(nng_aio_get_msg(e->aio));
			nng_aio_set_msg(e->aio, NULL);
			e->busy = false;
		} else if (e->cancelling || c->aborted)
			e->busy = false;
		else {
			e->receiving = true;
			nng_aio_set_timeout(e->aio, c->timeout_ms > RPC_STALE_MS
			                                ? c->timeout_ms
			                                : RPC_STALE_MS);
			nng_recv_aio(e->sock, e->aio);
		}
	} else {
		e->receiving = false;
		e->busy = false;
		if (rv == 0) {
			m = nng_aio_get_msg(e->aio);
			nng_aio_set_msg(e->aio, NULL);
			if (e->suspect)
				log_info("controller %s answers again; "
				         "using it again",
				    e->url);
			e->suspect = false;
			if (e->gen == c->gen && e->reply == NULL)
				e->reply = m;
			else
				nng_msg_free(m); /* an earlier call's */
		}
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Caller thread, mu not held: sends body as call gen to e, first
 * cancelling a request still outstanding there. */
static void
rpc_ep_send(struct rpc_client *c, struct rpc_endpoint *e, const void *body,
    size_t len, uint64_t gen)
{
	nng_msg *m;
	bool busy;

	pthread_mutex_lock(&c->mu);
	if ((busy = e->busy))
		e->cancelling = true;
	pthread_mutex_unlock(&c->mu);
	if (busy) {
		nng_aio_cancel(e->aio);
		nng_aio_wait(e->aio);
	}
	pthread_mutex_lock(&c->mu);
	e->cancelling = false;
	rpc_msg_free(e->reply);
	e->reply = NULL;
	pthread_mutex_unlock(&c->mu);
	if (nng_msg_alloc(&m, len) != 0)
		return;
	memcpy(nng_msg_body(m), body, len);
	pthread_mutex_lock(&c->mu);
	e->busy = true;
	e->receiving = false;
	e->gen = gen;
	e->sent_at = rpc_now_ms();
	pthread_mutex_unlock(&c->mu);
	nng_aio_set_msg(e->aio, m);
	/* a connection that is not up yet may still come within this */
	nng_aio_set_timeout(e->aio, c->timeout_ms);
	nng_send_aio(e->sock, e->aio);
}

int
rpc_pick(
    const struct rpc_ep_state *st, size_t n, size_t preferred, unsigned tried)
{
	size_t k, i;
	int pass;

	for (pass = 0; pass < 3; pass++)
		for (k = 0; k < n; k++) {
			i = (preferred + k) % n;
			if (tried & (1u << i))
				continue;
			if (pass == 0 && st[i].connected && !st[i].suspect &&
			    !st[i].busy)
				return (int)i;
			if (pass == 1 && st[i].connected)
				return (int)i;
			if (pass == 2)
				return (int)i;
		}
	return -1;
}

/* Under mu: rpc_pick over the endpoints as they are now. */
static int
rpc_client_pick(struct rpc_client *c, unsigned tried)
{
	struct rpc_ep_state st[RPC_MAX_ENDPOINTS];
	size_t i;

	for (i = 0; i < c->nep; i++) {
		st[i].connected = atomic_load(&c->ep[i].pipes) > 0;
		st[i].suspect = c->ep[i].suspect;
		st[i].busy = c->ep[i].busy;
	}
	return rpc_pick(st, c->nep, c->preferred, tried);
}

struct rpc_client *
rpc_client_open(const char *const *urls, size_t nurls, int timeout_ms,
    char *err, size_t errlen)
{
	return rpc_client_open_tls(urls, nurls, timeout_ms, NULL, err, errlen);
}

static int
rpc_ep_open(struct rpc_client *c, struct rpc_endpoint *e, const char *url,
    const struct rpc_tls *tls, char *err, size_t errlen)
{
	nng_tls_config *cfg;
	nng_dialer d;
	int rv;

	e->c = c;
	snprintf(e->url, sizeof(e->url), "%s", url);
	if ((rv = nng_req0_open(&e->sock)) != 0) {
		snprintf(err, errlen, "nng req socket: %s", nng_strerror(rv));
		return -1;
	}
	if ((rv = nng_aio_alloc(&e->aio, rpc_ep_cb, e)) != 0) {
		snprintf(err, errlen, "nng aio: %s", nng_strerror(rv));
		return -1;
	}
	nng_socket_set_ms(e->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(e->sock, NNG_OPT_RECONNMAXT, 2000);
	/* Our own racing replaces timed resends to the same controller; a
	 * request whose connection dies is still resent on the next one. */
	nng_socket_set_ms(e->sock, NNG_OPT_REQ_RESENDTIME, RPC_STALE_MS);
	nng_socket_set_size(e->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_MSG);
	nng_pipe_notify(e->sock, NNG_PIPE_EV_ADD_POST, rpc_pipe_cb, e);
	nng_pipe_notify(e->sock, NNG_PIPE_EV_REM_POST, rpc_pipe_cb, e);
	/* Non-blocking: a controller that is down now is retried in the
	 * background and used when it comes up. */
	if ((rv = nng_dialer_create(&d, e->sock, url)) != 0) {
		snprintf(err, errlen, "%s: %s", url, nng_strerror(rv));
		return -1;
	}
	if (rpc_scheme(url) == RPC_TLS) {
		if ((cfg = rpc_tls_config(url, tls, false, err, errlen)) ==
		    NULL)
			return -1;
		/* the dialer holds its own reference */
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg);
		if (rv != 0) {
			snprintf(
			    err, errlen, "%s: tls: %s", url, nng_strerror(rv));
			return -1;
		}
	}
	if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
		snprintf(err, errlen, "%s: %s", url, nng_strerror(rv));
		return -1;
	}
	e->dialer = d;
	return 0;
}

/* Appends to err why endpoints without a connection failed to connect
 * since the last call: "; tls+tcp://h:p: TLS handshake failed ...". */
static void
rpc_client_why(struct rpc_client *c, char *err, size_t errlen)
{
	struct rpc_conn_stats now, *was;
	struct rpc_endpoint *e;
	nng_stat *all;
	size_t i, len;
	const char *why;

	if (nng_stats_get(&all) != 0)
		return;
	for (i = 0; i < c->nep; i++) {
		e = &c->ep[i];
		was = &e->seen;
		rpc_conn_stats(
		    rpc_stat_scope(all, "dialer", nng_dialer_id(e->dialer)),
		    &now);
		why = NULL;
		if (atomic_load(&e->pipes) > 0)
			why = NULL;
		else if (now.auth > was->auth)
			why = RPC_WHY_AUTH;
		else if (now.refused > was->refused)
			why = "connection refused";
		else if (now.proto > was->proto)
			why = "protocol error (not a sluice controller, or TLS "
			      "on one side only?)";
		else if (now.timeout > was->timeout)
			why = "connection timed out";
		*was = now;
		len = strlen(err);
		if (why != NULL && len < errlen)
			snprintf(
			    err + len, errlen - len, "; %s: %s", e->url, why);
	}
	nng_stats_free(all);
}

struct rpc_client *
rpc_client_open_tls(const char *const *urls, size_t nurls, int timeout_ms,
    const struct rpc_tls *tls, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	struct rpc_client *c;
	size_t i;

	if (nurls == 0 || nurls > RPC_MAX_ENDPOINTS) {
		snprintf(err, errlen, "between 1 and %d endpoints, not %zu",
		    RPC_MAX_ENDPOINTS, nurls);
		return NULL;
	}
	for (i = 0; i < nurls; i++) {
		if (rpc_url_check(urls[i], tls, false, err, errlen) == -1)
			return NULL;
		/* nng would retry a socket we may not open until the
		 * timeout: say so now (the admin socket is owner-only) */
		if (strncmp(urls[i], "ipc://", 6) == 0 &&
		    access(urls[i] + 6, W_OK) == -1 && errno == EACCES) {
			snprintf(
			    err, errlen, "%s: permission denied", urls[i] + 6);
			return NULL;
		}
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < nurls; i++) {
		c->nep++;
		if (rpc_ep_open(c, &c->ep[i], urls[i], tls, err, errlen) ==
		    -1) {
			rpc_client_close(c);
			return NULL;
		}
	}
	return c;
}

void
rpc_client_set_race(struct rpc_client *c, int race_ms)
{
	c->race_ms = race_ms;
}

/* Under mu: endpoints that were sent this call's request and left it
 * unanswered while another answered become suspect. */
static void
rpc_mark_suspects(struct rpc_client *c, uint64_t gen, int winner)
{
	struct rpc_endpoint *e;
	size_t i;

	if (c->race_ms <= 0)
		return;
	for (i = 0; i < c->nep; i++) {
		e = &c->ep[i];
		/* not one we raced to a moment before the answer came */
		if ((int)i == winner || !e->busy || e->gen != gen ||
		    e->suspect || atomic_load(&e->pipes) == 0 ||
		    rpc_now_ms() - e->sent_at < c->race_ms)
			continue;
		e->suspect = true;
		log_warnx("controller %s has not answered for %" PRId64
		          " ms while another did; skipping it until it "
		          "answers",
		    e->url, rpc_now_ms() - e->sent_at);
	}
}

int
rpc_client_call(struct rpc_client *c, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply,
    char *err, size_t errlen)
{
	struct rpc_endpoint *e;
	int64_t now, deadline, next_at, wake;
	struct timespec ts;
	nng_msg *m = NULL;
	unsigned tried = 0;
	bool live;
	uint8_t *body;
	uint64_t gen;
	size_t len, i;
	int pick, winner = -1;

	*reply = NULL;
	if ((body = rpc_pack(req, &len)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	now = rpc_now_ms();
	deadline = now + c->timeout_ms;
	next_at = now;
	pthread_mutex_lock(&c->mu);
	gen = ++c->gen;
	/* A suspect endpoint whose old request was given up is probed
	 * again with this one (racing clients only: requests are safe to
	 * repeat there). */
	for (i = 0; c->race_ms > 0 && i < c->nep; i++) {
		e = &c->ep[i];
		if (e->suspect && !e->busy && atomic_load(&e->pipes) > 0) {
			tried |= 1u << i;
			pthread_mutex_unlock(&c->mu);
			rpc_ep_send(c, e, body, len, gen);
			pthread_mutex_lock(&c->mu);
		}
	}
	for (;;) {
		if (c->aborted) {
			snprintf(err, errlen, "aborted");
			break;
		}
		for (i = 0; i < c->nep && winner == -1; i++)
			if (c->ep[i].reply != NULL && c->ep[i].gen == gen) {
				m = c->ep[i].reply;
				c->ep[i].reply = NULL;
				winner = (int)i;
			}
		if (winner != -1)
			break;
		now = rpc_now_ms();
		if (now >= deadline) {
			snprintf(err, errlen,
			    "controller did not answer within %d ms",
			    c->timeout_ms);
			break;
		}
		/* Nothing of ours in flight on a live connection: no reason
		 * to wait before trying the next endpoint. */
		live = false;
		for (i = 0; i < c->nep; i++) {
			e = &c->ep[i];
			if ((tried & (1u << i)) && e->busy && e->gen == gen &&
			    atomic_load(&e->pipes) > 0 && !e->suspect)
				live = true;
		}
		if (!live)
			next_at = now;
		if (now >= next_at &&
		    (pick = rpc_client_pick(c, tried)) != -1) {
			tried |= 1u << pick;
			pthread_mutex_unlock(&c->mu);
			rpc_ep_send(c, &c->ep[pick], body, len, gen);
			pthread_mutex_lock(&c->mu);
			next_at = c->race_ms > 0 ? rpc_now_ms() + c->race_ms
			                         : deadline;
			continue;
		}
		/* Wake for the race, or now and then to see connections
		 * come up, or at the deadline. */
		wake = next_at > now ? next_at : now + 100;
		if (wake > deadline)
			wake = deadline;
		ts.tv_sec = (time_t)(wake / 1000);
		ts.tv_nsec = (long)(wake % 1000) * 1000000;
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	if (winner != -1) {
		c->preferred = (size_t)winner;
		rpc_mark_suspects(c, gen, winner);
	}
	pthread_mutex_unlock(&c->mu);
	free(body);
	if (m == NULL) {
		if (!c->aborted)
			rpc_client_why(c, err, errlen);
		return -1;
	}
	*reply = protobuf_c_message_unpack(
	    reply_desc, NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	if (*reply == NULL) {
		snprintf(err, errlen, "controller sent a malformed reply");
		return -1;
	}
	return 0;
}

void
rpc_client_abort(struct rpc_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->aborted = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	for (i = 0; i < c->nep; i++)
		nng_close(c->ep[i].sock); /* in-flight operations fail */
}

void
rpc_client_close(struct rpc_client *c)
{
	struct rpc_endpoint *e;
	size_t i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->aborted = true;
	pthread_mutex_unlock(&c->mu);
	for (i = 0; i < c->nep; i++) {
		e = &c->ep[i];
		nng_close(e->sock);
		if (e->aio != NULL)
			nng_aio_free(e->aio); /* waits for its callback */
		rpc_msg_free(e->reply);
	}
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

/* ----------------------------------------------------------- server */

struct rpc_server *
rpc_server_open(const char *url, int ipc_mode, char *err, size_t errlen)
{
	return rpc_server_open_tls(url, ipc_mode, NULL, err, errlen);
}

struct rpc_server *
rpc_server_open_tls(const char *url, int ipc_mode, const struct rpc_tls *tls,
    char *err, size_t errlen)
{
	struct rpc_server *s;
	nng_tls_config *cfg;
	nng_listener l;
	int rv;

	if (rpc_url_check(url, tls, true, err, errlen) == -1)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(s->url, sizeof(s->url), "%s", url);
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		snprintf(err, errlen, "nng rep socket: %s", nng_strerror(rv));
		free(s);
		return NULL;
	}
	/* Oversized messages are dropped by nng before we see them. */
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_MSG);
	nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, 200);
	nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, 5000);
	if ((rv = nng_listener_create(&l, s->sock, url)) != 0) {
		snprintf(err, errlen, "%s: %s", url, nng_strerror(rv));
		goto fail;
	}
	if (ipc_mode != 0 && strncmp(url, "ipc://", 6) == 0)
		nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, ipc_mode);
	if (rpc_scheme(url) == RPC_TLS) {
		if ((cfg = rpc_tls_config(url, tls, true, err, errlen)) == NULL)
			goto fail;
		rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg);
		if (rv != 0) {
			snprintf(
			    err, errlen, "%s: tls: %s", url, nng_strerror(rv));
			goto fail;
		}
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		goto fail;
	}
	s->listener = l;
	return s;
fail:
	nng_close(s->sock);
	free(s);
	return NULL;
}

static void
rpc_peer_of(nng_msg *m, struct rpc_peer *peer)
{
	nng_pipe p = nng_msg_get_pipe(m);
	nng_sockaddr sa;
	uint64_t uid;
	char a[INET6_ADDRSTRLEN];

	peer->uid = -1;
	peer->addr[0] = '\0';
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) == 0)
		peer->uid = (int64_t)uid;
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	switch (sa.s_family) {
	case NNG_AF_INET:
		inet_ntop(AF_INET, &sa.s_in.sa_addr, a, sizeof(a));
		snprintf(peer->addr, sizeof(peer->addr), "%s", a);
		break;
	case NNG_AF_INET6:
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, a, sizeof(a));
		snprintf(peer->addr, sizeof(peer->addr), "%s", a);
		break;
	case NNG_AF_IPC:
		snprintf(peer->addr, sizeof(peer->addr), "local");
		break;
	default:
		break;
	}
}

/* Every RPC_FAILURES_MS: log the connections the listener refused in
 * the handshake meanwhile, one line, with what nng tells (see above). */
#define RPC_FAILURES_MS 5000

static void
rpc_server_failures(struct rpc_server *s)
{
	struct rpc_conn_stats now;
	int64_t t = rpc_now_ms();
	nng_stat *all;

	if (t - s->checked_at < RPC_FAILURES_MS || nng_stats_get(&all) != 0)
		return;
	rpc_conn_stats(
	    rpc_stat_scope(all, "listener", nng_listener_id(s->listener)),
	    &now);
	nng_stats_free(all);
	if (s->checked_at != 0 && now.auth > s->seen_auth)
		log_warnx("rpc %s: %" PRIu64 " connection(s) refused in the "
		          "last %d s: " RPC_WHY_AUTH "; nng 1.5 does not give "
		          "the peer's address",
		    s->url, now.auth - s->seen_auth,
		    (int)((t - s->checked_at + 500) / 1000));
	if (s->checked_at != 0 && now.proto > s->seen_proto)
		log_warnx("rpc %s: %" PRIu64 " connection(s) failed in the "
		          "last %d s: protocol error (plain TCP to a TLS "
		          "listener, or not an nng peer); nng 1.5 does not "
		          "give the peer's address",
		    s->url, now.proto - s->seen_proto,
		    (int)((t - s->checked_at + 500) / 1000));
	s->seen_auth = now.auth;
	s->seen_proto = now.proto;
	s->checked_at = t;
}

void
rpc_server_serve(struct rpc_server *s, rpc_handler fn, void *arg,
    volatile sig_atomic_t *stop)
{
	struct rpc_peer peer;
	nng_msg *m, *r;
	uint8_t *out;
	size_t outlen;
	int rv;

	while (!*stop) {
		rpc_server_failures(s);
		if ((rv = nng_recvmsg(s->sock, &m, 0)) != 0) {
			if (rv != NNG_ETIMEDOUT && rv != NNG_ECLOSED)
				log_warnx("rpc %s: receive: %s", s->url,
				    nng_strerror(rv));
			if (rv == NNG_ECLOSED)
				return;
			continue;
		}
		rpc_peer_of(m, &peer);
		out = NULL;
		outlen = 0;
		fn(arg, nng_msg_body(m), nng_msg_len(m), &peer, &out, &outlen);
		nng_msg_free(m);
		if (out == NULL)
			continue;
		if ((rv = nng_msg_alloc(&r, outlen)) != 0) {
			free(out);
			continue;
		}
		memcpy(nng_msg_body(r), out, outlen);
		free(out);
		if ((rv = nng_sendmsg(s->sock, r, 0)) != 0) {
			log_warnx(
			    "rpc %s: reply: %s", s->url, nng_strerror(rv));
			nng_msg_free(r);
		}
	}
}

void
rpc_server_close(struct rpc_server *s)
{
	if (s == NULL)
		return;
	nng_close(s->sock);
	free(s);
}
