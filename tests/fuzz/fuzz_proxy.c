/* fuzz_proxy.c - libFuzzer target for node/proxy.c: a header is never
 * longer than its input, and any prefix of a valid header is "need more"
 * or invalid, never a different header. */
#include <stdint.h>
#include <stdlib.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info pi;
	int rv = proxy_parse(data, size, &pi);

	if (rv > 0 && (size_t)rv > size)
		abort();
	if (rv > 0 && proxy_parse(data, (size_t)rv - 1, &pi) > 0)
		abort();
	return 0;
}
