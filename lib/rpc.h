/* rpc.h - the control-plane transport: nng REQ/REP carrying protobuf-c
 * messages.  This file and its .c are the nng boundary of lib/: nng error
 * codes become one-line messages here.
 *
 * Client: one REQ socket dialing every configured endpoint; nng keeps
 * reconnecting in the background and sends each request over a live pipe,
 * so a fleet with two controllers fails over by itself.
 * Server: one REP socket; rpc_server_serve() runs a blocking receive loop on
 * the calling thread and hands each request to a handler. */
#ifndef SLUICE_RPC_H
#define SLUICE_RPC_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define RPC_MAX_MSG (8 * 1024 * 1024) /* larger requests are dropped */

struct rpc_client;
struct rpc_server;

struct rpc_peer {
	int64_t uid;   /* ipc:// peer uid, -1 when unknown */
	char addr[80]; /* remote address, "" when unknown */
};

/* urls: nng URLs (tcp://, ipc://, tls+tcp://).  NULL on error, with err. */
struct rpc_client *rpc_client_open(const char *const *urls, size_t nurls,
    int timeout_ms, char *err, size_t errlen);
/* Sends req, waits for the reply and unpacks it as reply_desc.  0 with
 * *reply set (free with protobuf_c_message_free_unpacked(*reply, NULL)),
 * or -1 with err ("controller did not answer within 5 s"). */
int rpc_client_call(struct rpc_client *, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply,
    char *err, size_t errlen);
void rpc_client_close(struct rpc_client *);
/* Aborts a call blocked in another thread (it fails at once); the client
 * is unusable afterwards but must still be closed by its owner. */
void rpc_client_abort(struct rpc_client *);

/* The handler gets the raw request (unpacking is its job, so a garbage
 * request becomes an error reply of its own) and returns a malloc'd packed
 * reply in *out, or sets *out = NULL to send nothing. */
typedef void (*rpc_handler)(void *arg, const uint8_t *req, size_t len,
    const struct rpc_peer *, uint8_t **out, size_t *outlen);

/* mode: file mode for ipc:// sockets (0 leaves the default). */
struct rpc_server *rpc_server_open(
    const char *url, int ipc_mode, char *err, size_t errlen);
/* Serves until *stop becomes non-zero (checked every 200 ms). */
void rpc_server_serve(
    struct rpc_server *, rpc_handler, void *arg, volatile sig_atomic_t *stop);
void rpc_server_close(struct rpc_server *);

/* Packs msg into a malloc'd buffer; NULL on allocation failure. */
uint8_t *rpc_pack(const ProtobufCMessage *msg, size_t *len);

#endif
