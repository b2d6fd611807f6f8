/*
 * mapfile: serialise a block map with its identity header and checksum. See the header
 * for the layout. Reading is paranoid: every length is checked against the file size
 * before it is used, and the checksum before anything is trusted.
 */
#include "aheadfs/mapfile.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aheadfs/checksum.h"
#include "aheadfs/range.h"

#define MAPFILE_MAGIC "AHFSMAP"
#define HEADER_BYTES 40

G_DEFINE_QUARK(aheadfs-mapfile-error-quark, mapfile_error)

static void put_u32(GByteArray *b, uint32_t v)
{
	uint32_t le = htole32(v);

	g_byte_array_append(b, (const guint8 *)&le, 4);
}

static void put_u64(GByteArray *b, uint64_t v)
{
	uint64_t le = htole64(v);

	g_byte_array_append(b, (const guint8 *)&le, 8);
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static GByteArray *mapfile_encode(const struct mapfile_identity *id, const struct blockmap *map)
{
	GByteArray *b = g_byte_array_new();
	size_t url_len = strlen(id->url), val_len = strlen(id->validator);
	size_t bits_at;

	g_byte_array_append(b, (const guint8 *)MAPFILE_MAGIC, 8); /* includes the NUL */
	put_u32(b, MAPFILE_VERSION);
	put_u32(b, id->block_size);
	put_u64(b, id->image_size);
	put_u64(b, map->nblocks);
	put_u32(b, (uint32_t)url_len);
	put_u32(b, (uint32_t)val_len);
	g_byte_array_append(b, (const guint8 *)id->url, (guint)url_len);
	g_byte_array_append(b, (const guint8 *)id->validator, (guint)val_len);
	bits_at = b->len;
	g_byte_array_set_size(b, (guint)(bits_at + blockmap_bytes(map)));
	blockmap_export(map, b->data + bits_at);
	put_u32(b, checksum_crc32c(0, b->data, b->len));
	return b;
}

static gboolean write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return FALSE;
		p += n;
		len -= (size_t)n;
	}
	return TRUE;
}

gboolean mapfile_write(const char *path, const struct mapfile_identity *id,
		       const struct blockmap *map, GError **error)
{
	g_autofree char *tmp = g_strdup_printf("%s.tmp", path);
	GByteArray *b = mapfile_encode(id, map);
	int fd, saved;
	gboolean ok;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		saved = errno;
		g_byte_array_unref(b);
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved), "%s: %s", tmp,
			    g_strerror(saved));
		return FALSE;
	}
	ok = write_all(fd, b->data, b->len) && fdatasync(fd) == 0;
	saved = errno;
	g_byte_array_unref(b);
	if (close(fd) != 0 && ok) {
		ok = FALSE;
		saved = errno;
	}
	if (ok && rename(tmp, path) != 0) {
		ok = FALSE;
		saved = errno;
	}
	if (!ok) {
		unlink(tmp);
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
			    "writing block map %s: %s", path, g_strerror(saved));
	}
	return ok;
}

static gboolean header_matches(const uint8_t *p, size_t url_len, size_t val_len,
			       const struct mapfile_identity *id, GError **error)
{
	const char *why = NULL;

	if (get_u32(p + 12) != id->block_size)
		why = "block size";
	else if (get_u64(p + 16) != id->image_size)
		why = "image size";
	else if (url_len != strlen(id->url) || memcmp(p + HEADER_BYTES, id->url, url_len) != 0)
		why = "URL";
	else if (val_len != strlen(id->validator) ||
		 memcmp(p + HEADER_BYTES + url_len, id->validator, val_len) != 0)
		why = "validator";
	if (why)
		g_set_error(error, MAPFILE_ERROR, MAPFILE_ERROR_FOREIGN,
			    "cache is for another %s", why);
	return why == NULL;
}

struct blockmap *mapfile_read(const char *path, const struct mapfile_identity *id,
			      GError **error)
{
	g_autofree char *raw = NULL;
	gsize len = 0;
	const uint8_t *p;
	uint64_t nblocks, url_len, val_len, bits_len, want;
	struct blockmap *map;

	if (!g_file_get_contents(path, &raw, &len, error))
		return NULL;
	p = (const uint8_t *)raw;
	if (len < HEADER_BYTES + 4 || memcmp(p, MAPFILE_MAGIC, 8) != 0) {
		g_set_error(error, MAPFILE_ERROR, MAPFILE_ERROR_CORRUPT, "%s: not a block map",
			    path);
		return NULL;
	}
	if (get_u32(p + 8) != MAPFILE_VERSION) {
		g_set_error(error, MAPFILE_ERROR, MAPFILE_ERROR_VERSION,
			    "%s: block map version %u, expected %u", path, get_u32(p + 8),
			    MAPFILE_VERSION);
		return NULL;
	}
	nblocks = get_u64(p + 24);
	url_len = get_u32(p + 32);
	val_len = get_u32(p + 36);
	bits_len = (nblocks + 63) / 64 * 8;
	want = HEADER_BYTES + url_len + val_len + bits_len + 4;
	if (nblocks > (UINT64_C(1) << 48) || want != len ||
	    checksum_crc32c(0, p, len - 4) != get_u32(p + len - 4)) {
		g_set_error(error, MAPFILE_ERROR, MAPFILE_ERROR_CORRUPT,
			    "%s: block map is damaged (size or checksum)", path);
		return NULL;
	}
	if (!header_matches(p, url_len, val_len, id, error))
		return NULL;
	if (nblocks != range_block_count(id->image_size, __builtin_ctz(id->block_size))) {
		g_set_error(error, MAPFILE_ERROR, MAPFILE_ERROR_CORRUPT,
			    "%s: block count does not match the image size", path);
		return NULL;
	}
	map = blockmap_new(nblocks);
	blockmap_import(map, p + HEADER_BYTES + url_len + val_len);
	return map;
}
