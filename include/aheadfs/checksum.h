/*
 * checksum: CRC-32C (Castagnoli) for the persisted files, so a torn or bit-flipped file
 * is detected and rebuilt instead of trusted.
 */
#ifndef AHEADFS_CHECKSUM_H
#define AHEADFS_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC over `len` more bytes; start with crc = 0. */
uint32_t checksum_crc32c(uint32_t crc, const void *data, size_t len);

#endif
