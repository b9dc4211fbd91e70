/* proxy.h - HAProxy PROXY protocol v1 (text) and v2 (binary) headers, as
 * sent by a load balancer in front of a listener marked proxy_protocol.
 * Pure parser: bytes in, the original client address out.  smtp_server.c
 * reads the header before greeting and drops the connection, without a
 * reply, when the header is missing, malformed or late. */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_V1_MAX 107         /* the spec's worst case, CRLF included */
#define PROXY_V2_MAX (16 + 2048) /* our ceiling for addresses + TLVs */

struct proxy_info {
	bool local; /* LOCAL / UNKNOWN: use the socket's */
	int family; /* AF_INET or AF_INET6 */
	uint8_t src[16];
	uint16_t src_port;
	uint8_t dst[16];
	uint16_t dst_port;
};

/* Returns 0: need more bytes; >0: a valid header of that many bytes (info
 * filled); -1: not a valid PROXY header (drop the connection). */
int proxy_parse(const uint8_t *buf, size_t len, struct proxy_info *);

#endif
