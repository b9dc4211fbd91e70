/* fuzz.h - the libFuzzer entry points every target in tests/fuzz/ defines
 * (LLVMFuzzerInitialize optionally).  Built two ways by tests/fuzz.cmake:
 * with clang and -fsanitize=fuzzer (SLUICE_FUZZ=ON), or linked with
 * replay.c into a plain program that runs the committed corpus.
 * Invariants are checked with FUZZ_ASSERT: a failure aborts with the line,
 * which libFuzzer and the replay binary both report as a crash. */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(c)                                                         \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
			    __FILE__, __LINE__, #c);                           \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
