/* cidr.h - IPv4/IPv6 networks: parse, print, match.  Pure. */
#ifndef SLUICE_CIDR_H
#define SLUICE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (/32, /128).  Host bits
 * set past the prefix are an error that names the network meant. */
int cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen);
void cidr_format(const struct cidr *, char *buf, size_t len);
/* addr is 4 or 16 bytes per family; IPv4-mapped IPv6 matches IPv4 nets. */
bool cidr_contains(const struct cidr *, int family, const uint8_t *addr);

#endif
