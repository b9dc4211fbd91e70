/* cidr.c - network parsing and matching for policy networks. */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void
cidr_mask(uint8_t *a, size_t len, unsigned prefix)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (prefix >= 8)
			prefix -= 8;
		else {
			a[i] &= (uint8_t)(0xff << (8 - prefix));
			prefix = 0;
		}
	}
}

int
cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	struct cidr c, masked;
	unsigned max;
	long pl;

	memset(&c, 0, sizeof(c));
	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "'%.60s': not a network", s);
		return -1;
	}
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errlen, "'%s': not an IPv4 or IPv6 network", s);
		return -1;
	}
	c.prefix = max;
	if (slash != NULL) {
		errno = 0;
		pl = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || errno != 0 || pl < 0 ||
		    (unsigned long)pl > max) {
			snprintf(err, errlen,
			    "'%s': prefix length must be 0..%u", s, max);
			return -1;
		}
		c.prefix = (unsigned)pl;
	}
	masked = c;
	cidr_mask(masked.addr, c.family == AF_INET ? 4 : 16, c.prefix);
	if (memcmp(masked.addr, c.addr, sizeof(c.addr)) != 0) {
		char want[INET6_ADDRSTRLEN + 8];
		cidr_format(&masked, want, sizeof(want));
		snprintf(err, errlen, "'%s': host bits set (did you mean %s?)",
		    s, want);
		return -1;
	}
	*out = c;
	return 0;
}

void
cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, c->prefix);
}

bool
cidr_contains(const struct cidr *c, int family, const uint8_t *addr)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t a[16];
	size_t len;

	if (family == AF_INET6 && c->family == AF_INET &&
	    memcmp(addr, mapped, sizeof(mapped)) == 0) {
		addr += 12;
		family = AF_INET;
	}
	if (family != c->family)
		return false;
	len = family == AF_INET ? 4 : 16;
	memcpy(a, addr, len);
	cidr_mask(a, len, c->prefix);
	return memcmp(a, c->addr, len) == 0;
}
