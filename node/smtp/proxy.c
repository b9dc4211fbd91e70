/* proxy.c - PROXY protocol v1/v2 header parser (proxy.h), per the HAProxy
 * specification "The PROXY protocol" (versions 1 and 2).  Strict: one
 * header, first on the connection, nothing guessed; anything else is -1
 * and the caller drops the connection. */
#include "proxy.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t proxy_v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static int
port_parse(const char *s, uint16_t *out)
{
	unsigned long v = 0;
	size_t n = strlen(s), i;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int
proxy_v1(const uint8_t *buf, size_t len, struct proxy_info *pi)
{
	char line[PROXY_V1_MAX + 1], *tok[6], *save = NULL, *p;
	const uint8_t *crlf;
	size_t n, ntok = 0;
	int fam;

	crlf = memchr(buf, '\n', len < PROXY_V1_MAX ? len : PROXY_V1_MAX);
	if (crlf == NULL)
		return len >= PROXY_V1_MAX ? -1 : 0;
	n = (size_t)(crlf - buf);
	if (n == 0 || buf[n - 1] != '\r')
		return -1; /* a bare LF */
	n--;
	if (memchr(buf, '\0', n) != NULL || memchr(buf, '\r', n) != NULL)
		return -1;
	memcpy(line, buf, n);
	line[n] = '\0';
	for (p = strtok_r(line, " ", &save); p != NULL && ntok < 6;
	     p = strtok_r(NULL, " ", &save))
		tok[ntok++] = p;
	if (ntok < 2 || strcmp(tok[0], "PROXY") != 0)
		return -1;
	memset(pi, 0, sizeof(*pi));
	if (strcmp(tok[1], "UNKNOWN") == 0) {
		pi->local = true; /* rest of the line is ignored */
		return (int)n + 2;
	}
	if (p != NULL || ntok != 6)
		return -1;
	if (strcmp(tok[1], "TCP4") == 0)
		fam = AF_INET;
	else if (strcmp(tok[1], "TCP6") == 0)
		fam = AF_INET6;
	else
		return -1;
	pi->family = fam;
	if (inet_pton(fam, tok[2], pi->src) != 1 ||
	    inet_pton(fam, tok[3], pi->dst) != 1 ||
	    port_parse(tok[4], &pi->src_port) == -1 ||
	    port_parse(tok[5], &pi->dst_port) == -1)
		return -1;
	return (int)n + 2;
}

static int
proxy_v2(const uint8_t *buf, size_t len, struct proxy_info *pi)
{
	size_t alen;

	if (len < 16)
		return 0;
	alen = (size_t)buf[14] << 8 | buf[15];
	if ((buf[12] & 0xf0) != 0x20 || 16 + alen > PROXY_V2_MAX)
		return -1;
	if (len < 16 + alen)
		return 0;
	memset(pi, 0, sizeof(*pi));
	switch (buf[12] & 0x0f) {
	case 0x0: /* LOCAL: health check by the proxy itself */
		pi->local = true;
		return (int)(16 + alen);
	case 0x1: /* PROXY */
		break;
	default:
		return -1;
	}
	switch (buf[13]) {
	case 0x11: /* TCP over IPv4 */
		if (alen < 12)
			return -1;
		pi->family = AF_INET;
		memcpy(pi->src, buf + 16, 4);
		memcpy(pi->dst, buf + 20, 4);
		pi->src_port = (uint16_t)(buf[24] << 8 | buf[25]);
		pi->dst_port = (uint16_t)(buf[26] << 8 | buf[27]);
		break;
	case 0x21: /* TCP over IPv6 */
		if (alen < 36)
			return -1;
		pi->family = AF_INET6;
		memcpy(pi->src, buf + 16, 16);
		memcpy(pi->dst, buf + 32, 16);
		pi->src_port = (uint16_t)(buf[48] << 8 | buf[49]);
		pi->dst_port = (uint16_t)(buf[50] << 8 | buf[51]);
		break;
	case 0x00: /* UNSPEC: keep the socket's address */
		pi->local = true;
		break;
	default: /* UDP, unix sockets: not for SMTP */
		return -1;
	}
	return (int)(16 + alen); /* TLVs skipped */
}

int
proxy_parse(const uint8_t *buf, size_t len, struct proxy_info *pi)
{
	static const char v1[] = "PROXY ";
	size_t n;

	n = len < sizeof(proxy_v2_sig) ? len : sizeof(proxy_v2_sig);
	if (n > 0 && memcmp(buf, proxy_v2_sig, n) == 0)
		return n < sizeof(proxy_v2_sig) ? 0 : proxy_v2(buf, len, pi);
	n = len < sizeof(v1) - 1 ? len : sizeof(v1) - 1;
	if (memcmp(buf, v1, n) != 0)
		return -1;
	return n < sizeof(v1) - 1 ? 0 : proxy_v1(buf, len, pi);
}
