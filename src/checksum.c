/*
 * checksum: table-driven CRC-32C. Persisted files are small (a block map of a 100 GiB
 * image is 200 KiB), so a byte-at-a-time table is fast enough and portable.
 */
#include "aheadfs/checksum.h"

#include <glib.h>

static uint32_t crc_table[256];

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t checksum_crc32c(uint32_t crc, const void *data, size_t len)
{
	static gsize initialised;
	const uint8_t *p = data;

	if (g_once_init_enter(&initialised)) {
		crc_table_init();
		g_once_init_leave(&initialised, 1);
	}
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
