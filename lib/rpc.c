/* rpc.c - nng REQ/REP transport for protobuf-c messages (see rpc.h). */
#include "rpc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

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

struct rpc_client *
rpc_client_open(const char *const *urls, size_t nurls, int timeout_ms,
    char *err, size_t errlen)
{
	struct rpc_client *c;
	size_t i;
	int rv;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->timeout_ms = timeout_ms;
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
		if ((rv = nng_dial(
		         c->sock, urls[i], NULL, NNG_FLAG_NONBLOCK)) != 0) {
			snprintf(
			    err, errlen, "%s: %s", urls[i], nng_strerror(rv));
			nng_close(c->sock);
			free(c);
			return NULL;
		}
	}
	return c;
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

struct rpc_server *
rpc_server_open(const char *url, int ipc_mode, char *err, size_t errlen)
{
	struct rpc_server *s;
	nng_listener l;
	int rv;

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
