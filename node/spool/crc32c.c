/* crc32c.c - CRC32C (crc32c.h): the checksum of every record the node
 * writes to disk, spool segments and the event journal alike. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t
crc_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* CRC32C (Castagnoli, reflected 0x82F63B78): SSE4.2 when the CPU has it,
 * a slicing table otherwise. */
static uint32_t crc_table[8][256];
static int crc_hw = -1;

/* The crc32 instruction takes three cycles and can start one a cycle:
 * three independent streams over CRC_BLOCK octets each run three times
 * as fast as one, and are joined by shifting a register over CRC_BLOCK
 * zero octets (crc_shift, a linear map, tabled by octet).  A 20 KB
 * message's CRC took 5.5 us with one stream. */
#define CRC_BLOCK 1024
static uint32_t crc_shift_table[4][256];

/* The raw register after n zero octets, in software. */
static uint32_t
crc_zeros(uint32_t c, size_t n)
{
	while (n-- > 0)
		c = (c >> 8) ^ crc_table[0][c & 0xff];
	return c;
}

static uint32_t
crc_shift(uint32_t c)
{
	return crc_shift_table[0][c & 0xff] ^
	       crc_shift_table[1][(c >> 8) & 0xff] ^
	       crc_shift_table[2][(c >> 16) & 0xff] ^
	       crc_shift_table[3][c >> 24];
}

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] =
			    (crc_table[t - 1][i] >> 8) ^
			    crc_table[0][crc_table[t - 1][i] & 0xff];
	/* the shift of each of the 32 register bits, then every octet of
	 * each of the four register octets as the sum of its bits' */
	uint32_t bit[32];
	for (int b = 0; b < 32; b++)
		bit[b] = crc_zeros(1U << b, CRC_BLOCK);
	for (int k = 0; k < 4; k++)
		for (uint32_t v = 0; v < 256; v++) {
			uint32_t c = 0;
			for (int b = 0; b < 8; b++)
				if (v & (1U << b))
					c ^= bit[8 * k + b];
			crc_shift_table[k][v] = c;
		}
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
	crc_hw = 0;
#endif
}

static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	while (n >= 3 * CRC_BLOCK) {
		uint64_t c1 = 0, c2 = 0, v0, v1, v2;
		for (size_t i = 0; i < CRC_BLOCK; i += 8) {
			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + CRC_BLOCK + i, 8);
			memcpy(&v2, p + 2 * CRC_BLOCK + i, 8);
			c = __builtin_ia32_crc32di(c, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		c = crc_shift((uint32_t)c) ^ (uint32_t)c1;
		c = crc_shift((uint32_t)c) ^ (uint32_t)c2;
		p += 3 * CRC_BLOCK;
		n -= 3 * CRC_BLOCK;
	}
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		n -= 8;
	}
	while (n-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t
crc32c(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw == 1)
		return ~crc_sse42(crc, p, n);
#endif
	while (n >= 8) {
		uint32_t lo = crc ^ crc_get32(p);
		uint32_t hi = crc_get32(p + 4);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n-- > 0)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}
