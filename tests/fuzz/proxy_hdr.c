/* proxy_hdr.c - fuzz target: HAProxy PROXY v1/v2 headers (node/proxy.c),
 * which smtp_server.c parses again each time more bytes arrive.
 * Invariants: a header is never longer than its input nor than the
 * protocol's ceiling; every proper prefix of a valid header is "need more"
 * (0), never "invalid", or a client behind a load balancer is dropped
 * when TCP splits its header; bytes after a header do not change it; a
 * non-LOCAL header names an IPv4 or IPv6 family. */
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "proxy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info pi, pj;
	size_t k, step;
	int rv, rp;

	memset(&pi, 0, sizeof(pi));
	rv = proxy_parse(data, size, &pi);
	FUZZ_ASSERT(rv >= -1);
	if (rv <= 0)
		return 0;
	FUZZ_ASSERT((size_t)rv <= size);
	FUZZ_ASSERT((size_t)rv <= PROXY_V1_MAX || (size_t)rv <= PROXY_V2_MAX);
	FUZZ_ASSERT(pi.local || pi.family == AF_INET || pi.family == AF_INET6);
	/* Prefixes: all for short headers, a sample for long ones. */
	step = rv > 256 ? (size_t)rv / 97 + 1 : 1;
	for (k = 0; k < (size_t)rv; k += step) {
		rp = proxy_parse(data, k, &pj);
		if (rp != 0)
			fprintf(stderr, "prefix %zu of a %d-octet header: %d\n",
			    k, rv, rp);
		FUZZ_ASSERT(rp == 0);
	}
	/* The exact header alone parses to the same result. */
	memset(&pj, 0, sizeof(pj));
	FUZZ_ASSERT(proxy_parse(data, (size_t)rv, &pj) == rv);
	FUZZ_ASSERT(pj.local == pi.local);
	if (!pi.local) {
		FUZZ_ASSERT(pj.family == pi.family &&
		            pj.src_port == pi.src_port &&
		            pj.dst_port == pi.dst_port);
		FUZZ_ASSERT(memcmp(pj.src, pi.src, sizeof(pi.src)) == 0 &&
		            memcmp(pj.dst, pi.dst, sizeof(pi.dst)) == 0);
	}
	return 0;
}
