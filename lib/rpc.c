/* rpc.c - nng REQ/REP transport for protobuf-c messages (see rpc.h), and
 * the control plane's transport security: mutual TLS on tls+tcp://, and the
 * rule that plaintext never leaves the machine unless asked to. */
#include "rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "log.h"

struct rpc_client {
	nng_socket sock;
	int timeout_ms;
};

struct rpc_server {
	nng_socket sock;
	char url[256];
};

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

/* ----------------------------------------------------------- client */

struct rpc_client *
rpc_client_open(const char *const *urls, size_t nurls, int timeout_ms,
    char *err, size_t errlen)
{
	return rpc_client_open_tls(urls, nurls, timeout_ms, NULL, err, errlen);
}

struct rpc_client *
rpc_client_open_tls(const char *const *urls, size_t nurls, int timeout_ms,
    const struct rpc_tls *tls, char *err, size_t errlen)
{
	nng_tls_config *cfg;
	nng_dialer d;
	struct rpc_client *c;
	size_t i;
	int rv;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	for (i = 0; i < nurls; i++) {
		if (rpc_url_check(urls[i], tls, false, err, errlen) == -1) {
			free(c);
			return NULL;
		}
		/* nng would retry a socket we may not open until the
		 * timeout: say so now (the admin socket is owner-only) */
		if (strncmp(urls[i], "ipc://", 6) == 0 &&
		    access(urls[i] + 6, W_OK) == -1 && errno == EACCES) {
			snprintf(
			    err, errlen, "%s: permission denied", urls[i] + 6);
			free(c);
			return NULL;
		}
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		snprintf(err, errlen, "nng req socket: %s", nng_strerror(rv));
		free(c);
		return NULL;
	}
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 2000);
	/* A lost request is resent on another pipe well before timeout. */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
	    timeout_ms > 2000 ? timeout_ms / 2 : 1000);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, RPC_MAX_MSG);
	for (i = 0; i < nurls; i++) {
		/* Non-blocking: a controller that is down now is retried in
		 * the background and used when it comes up. */
		if ((rv = nng_dialer_create(&d, c->sock, urls[i])) != 0) {
			snprintf(
			    err, errlen, "%s: %s", urls[i], nng_strerror(rv));
			goto fail;
		}
		if (rpc_scheme(urls[i]) == RPC_TLS) {
			if ((cfg = rpc_tls_config(
			         urls[i], tls, false, err, errlen)) == NULL)
				goto fail;
			/* the dialer holds its own reference */
			rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
			nng_tls_config_free(cfg);
			if (rv != 0) {
				snprintf(err, errlen, "%s: tls: %s", urls[i],
				    nng_strerror(rv));
				goto fail;
			}
		}
		if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
			snprintf(
			    err, errlen, "%s: %s", urls[i], nng_strerror(rv));
			goto fail;
		}
	}
	return c;
fail:
	nng_close(c->sock);
	free(c);
	return NULL;
}

int
rpc_client_call(struct rpc_client *c, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply,
    char *err, size_t errlen)
{
	nng_msg *m;
	size_t n;
	int rv;

	*reply = NULL;
	n = protobuf_c_message_get_packed_size(req);
	if ((rv = nng_msg_alloc(&m, n)) != 0) {
		snprintf(err, errlen, "nng: %s", nng_strerror(rv));
		return -1;
	}
	protobuf_c_message_pack(req, nng_msg_body(m));
	if ((rv = nng_sendmsg(c->sock, m, 0)) != 0) {
		nng_msg_free(m);
		snprintf(err, errlen, "cannot send to controller: %s",
		    rv == NNG_ETIMEDOUT ? "no controller reachable"
		                        : nng_strerror(rv));
		return -1;
	}
	if ((rv = nng_recvmsg(c->sock, &m, 0)) != 0) {
		if (rv == NNG_ETIMEDOUT)
			snprintf(err, errlen,
			    "controller did not answer within %d ms",
			    c->timeout_ms);
		else
			snprintf(
			    err, errlen, "controller: %s", nng_strerror(rv));
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
	if (c != NULL)
		nng_close(c->sock); /* blocked send/recv return ECLOSED */
}

void
rpc_client_close(struct rpc_client *c)
{
	if (c == NULL)
		return;
	nng_close(c->sock);
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
