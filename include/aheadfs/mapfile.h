/*
 * mapfile: the persisted block map of one cached image.
 *
 * Layout (little-endian), version 1:
 *
 *   offset  size  field
 *   0       8     magic "AHFSMAP\0"
 *   8       4     version (1)
 *   12      4     block size in bytes
 *   16      8     image size in bytes
 *   24      8     number of blocks
 *   32      4     URL length (u)
 *   36      4     validator length (v)
 *   40      u     URL
 *   40+u    v     validator (ETag, or Last-Modified when there is no strong ETag)
 *   40+u+v  8*w   bitmap words, w = ceil(blocks / 64); bit b set = block b is in the data file
 *   end-4   4     CRC-32C of everything before it
 *
 * The file is replaced atomically (write a temporary, fsync, rename), so a crash leaves
 * either the old map or the new one, never a mix.
 */
#ifndef AHEADFS_MAPFILE_H
#define AHEADFS_MAPFILE_H

#include <glib.h>
#include <stdint.h>

#include "aheadfs/blockmap.h"

#define MAPFILE_VERSION 1

/* What a map describes: a cache is valid only for exactly this remote object. */
struct mapfile_identity {
	const char *url;
	const char *validator;
	uint64_t image_size;
	uint32_t block_size;
};

#define MAPFILE_ERROR (mapfile_error_quark())
GQuark mapfile_error_quark(void);

enum mapfile_error_code {
	MAPFILE_ERROR_CORRUPT, /* bad magic, truncated, checksum mismatch */
	MAPFILE_ERROR_VERSION, /* written by another format version */
	MAPFILE_ERROR_FOREIGN, /* valid, but for another URL, validator, size or block size */
};

gboolean mapfile_write(const char *path, const struct mapfile_identity *id,
		       const struct blockmap *map, GError **error);

/*
 * Read `path` and return its bitmap when it describes exactly `id`. A missing file is a
 * G_FILE_ERROR_NOENT error; anything else wrong is a MAPFILE_ERROR.
 */
struct blockmap *mapfile_read(const char *path, const struct mapfile_identity *id,
			      GError **error);

#endif
