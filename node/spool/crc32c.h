/* crc32c.h - CRC32C (Castagnoli, RFC 3720 B.4), hardware-accelerated where
 * the CPU has SSE4.2.  Thread-safe.  crc32c(0, "123456789", 9) is
 * 0xE3069283; feed pieces by passing the previous result as crc. */
#ifndef SLUICE_CRC32C_H
#define SLUICE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t n);

#endif
