/* rpc.h - the control-plane transport: nng REQ/REP carrying protobuf-c
 * messages.  This file and its .c are the nng boundary of lib/: nng error
 * codes become one-line messages here.
 *
 * Client: one REQ socket per configured endpoint; nng keeps reconnecting
 * in the background.  A request goes to the endpoint that answered last;
 * one without a connection is skipped at once, and with racing on, one
 * that stays silent (a hung controller) is raced by the next after a short
 * time and then skipped until it answers again (docs/control-plane.md).
 * Server: one REP socket; rpc_server_serve() runs a blocking receive loop on
 * the calling thread and hands each request to a handler. */
#ifndef SLUICE_RPC_H
#define SLUICE_RPC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define RPC_MAX_MSG       (8 * 1024 * 1024) /* larger requests are dropped */
#define RPC_MAX_ENDPOINTS 8

struct rpc_client;
struct rpc_server;

/* Transport security of one endpoint (docs/security.md).
 *
 * tls+tcp:// is mutual TLS (nng's TLS transport, TLS 1.2+): both sides
 * present a certificate that must chain to ca_file, so a peer without a
 * certificate from the fleet CA cannot even complete a handshake.  A
 * client also checks the server's certificate against server_name (NULL:
 * the URL's host).  nng 1.5 does not show us the peer certificate's name,
 * so which node is talking is still proven by its enrollment token.
 *
 * Plain tcp:// (and other unencrypted network transports) is refused
 * unless the address is loopback or insecure is set: tokens and smart-host
 * secrets must never cross a network in clear text by accident.  ipc:// and
 * inproc:// are local and always allowed.
 *
 * keys names the config keys for messages, e.g. "controller_ca and
 * controller_cert_key"; NULL gives a generic sentence. */
struct rpc_tls {
	const char *ca_file;       /* PEM CA certificate(s) peers chain to */
	const char *cert_key_file; /* PEM: our certificate chain + its key */
	const char *cert_file;     /* or the chain and the key apart */
	const char *key_file;
	const char *server_name; /* client only; NULL: the URL's host */
	const char *keys;        /* config key names, for messages */
	bool insecure;           /* allow plaintext to non-loopback */
};

/* Whether url may be used under tls (NULL: no certificates, not
 * insecure).  listen: url is for a listener (a wildcard host counts as
 * non-loopback).  0, or -1 with the reason in err. */
int rpc_url_check(const char *url, const struct rpc_tls *, bool listen,
    char *err, size_t errlen);
/* Everything opening url would refuse, without a socket (--check-config):
 * rpc_url_check(), and for tls+tcp:// the CA, certificate and key files
 * (key not world-readable, all loadable).  0, or -1 with err. */
int rpc_endpoint_check(const char *url, const struct rpc_tls *, bool listen,
    char *err, size_t errlen);

struct rpc_peer {
	int64_t uid;   /* ipc:// peer uid, -1 when unknown */
	char addr[80]; /* remote address, "" when unknown */
};

/* urls: nng URLs (tcp://, ipc://, tls+tcp://).  NULL on error, with err.
 * rpc_client_open() is rpc_client_open_tls() with tls NULL: loopback and
 * local transports only. */
struct rpc_client *rpc_client_open(const char *const *urls, size_t nurls,
    int timeout_ms, char *err, size_t errlen);
struct rpc_client *rpc_client_open_tls(const char *const *urls, size_t nurls,
    int timeout_ms, const struct rpc_tls *, char *err, size_t errlen);
/* Sends req, waits for the reply and unpacks it as reply_desc.  0 with
 * *reply set (free with protobuf_c_message_free_unpacked(*reply, NULL)),
 * or -1 with err ("controller did not answer within 5 s"). */
int rpc_client_call(struct rpc_client *, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply,
    char *err, size_t errlen);
void rpc_client_close(struct rpc_client *);
/* With several endpoints: when the chosen one has not answered within
 * race_ms, send the same request to the next one too and take the first
 * reply; an endpoint that lost a race this way is skipped until it
 * answers.  Only for requests that are safe to handle twice (the node's
 * are; admin requests are not).  0 (the default) turns racing off. */
void rpc_client_set_race(struct rpc_client *, int race_ms);
/* Aborts a call blocked in another thread (it fails at once); the client
 * is unusable afterwards but must still be closed by its owner. */
void rpc_client_abort(struct rpc_client *);

/* Pure: the endpoint a call tries next, not one in the bitmask tried:
 * connected, not suspect and idle first, then connected ones, then the
 * rest; in each class the first from preferred on.  -1: none left.
 * (rpc.c's choice; its own table test.) */
struct rpc_ep_state {
	bool connected; /* has a live connection */
	bool suspect;   /* lost a race and has not answered since */
	bool busy;      /* a request of an earlier call is still out */
};
int rpc_pick(
    const struct rpc_ep_state *, size_t n, size_t preferred, unsigned tried);

/* The handler gets the raw request (unpacking is its job, so a garbage
 * request becomes an error reply of its own) and returns a malloc'd packed
 * reply in *out, or sets *out = NULL to send nothing. */
typedef void (*rpc_handler)(void *arg, const uint8_t *req, size_t len,
    const struct rpc_peer *, uint8_t **out, size_t *outlen);

/* mode: file mode for ipc:// sockets (0 leaves the default).
 * rpc_server_open() is rpc_server_open_tls() with tls NULL. */
struct rpc_server *rpc_server_open(
    const char *url, int ipc_mode, char *err, size_t errlen);
struct rpc_server *rpc_server_open_tls(const char *url, int ipc_mode,
    const struct rpc_tls *, char *err, size_t errlen);
/* Serves until *stop becomes non-zero (checked every 200 ms). */
void rpc_server_serve(
    struct rpc_server *, rpc_handler, void *arg, volatile sig_atomic_t *stop);
void rpc_server_close(struct rpc_server *);

/* Packs msg into a malloc'd buffer; NULL on allocation failure. */
uint8_t *rpc_pack(const ProtobufCMessage *msg, size_t *len);

#endif
