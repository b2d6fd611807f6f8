/*
 * fs: FUSE low-level operations over the fixed tree described in the header.
 *
 * Images are immutable for the life of a mount (a remote change turns reads into EIO,
 * never into new bytes), so their attributes and pages may be cached by the kernel for
 * as long as it likes: long entry/attr timeouts and keep_cache. Cached blocks are
 * answered with the cache file's descriptor (fuse_reply_data), which libfuse splices to
 * the kernel without copying through user space, when its pipe can hold them (see
 * fs_reply_cached).
 */
#include "aheadfs/fs.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "aheadfs/report.h"
#include "aheadfs/store.h"

#define FOREVER_S 86400.0

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct image *fs_image(struct fs *fs, fuse_ino_t ino)
{
	if (ino < FS_INO_IMAGE0 || ino - FS_INO_IMAGE0 >= fs->n_images)
		return NULL;
	return fs->images[ino - FS_INO_IMAGE0];
}

/* The learner image whose heat file @ino is, or NULL. */
static struct learner_image *fs_heat(struct fs *fs, fuse_ino_t ino)
{
	if (ino < FS_INO_HEAT0 || ino - FS_INO_HEAT0 >= fs->n_images || !fs->learned)
		return NULL;
	return fs->learned[ino - FS_INO_HEAT0];
}

static size_t fs_heat_size(struct learner_image *li)
{
	GBytes *b = learner_image_heat(li);
	size_t n = b ? g_bytes_get_size(b) : 0;

	if (b)
		g_bytes_unref(b);
	return n;
}

/* An image's attributes never change but for st_blocks (how much is cached, for du). */
#define IMAGE_ATTR_S 1.0

/* The control files made fresh at each open: the stats JSON and its text summary. */
static bool fs_is_report(fuse_ino_t ino)
{
	return ino == FS_INO_STATS || ino == FS_INO_SUMMARY;
}

static char *fs_report(struct fs *fs, fuse_ino_t ino)
{
	return (ino == FS_INO_STATS ? report_json : report_summary)(
	    fs->images, fs->learned, fs->n_images, fs->origin, &fs->link, fs->started_us);
}

static double fs_attr_timeout(struct fs *fs, fuse_ino_t ino)
{
	if (fs_is_report(ino) || fs_heat(fs, ino))
		return 0.0;
	return fs_image(fs, ino) ? IMAGE_ATTR_S : FOREVER_S;
}

static bool fs_attr(struct fs *fs, fuse_ino_t ino, struct stat *st)
{
	struct image *img;
	struct learner_image *li;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_nlink = 1;
	st->st_mtime = st->st_ctime = st->st_atime = fs->mounted_at;
	if (ino == FS_INO_ROOT || ino == FS_INO_CTL) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else if (fs_is_report(ino)) {
		g_autofree char *text = fs_report(fs, ino);

		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)strlen(text);
	} else if ((li = fs_heat(fs, ino))) {
		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)fs_heat_size(li);
	} else if ((img = fs_image(fs, ino))) {
		struct store *store = image_store(img);

		st->st_mode = S_IFREG | 0444;
		st->st_size = (off_t)image_size(img);
		if (image_mtime(img) > 0)
			st->st_mtime = st->st_ctime = image_mtime(img);
		st->st_blksize = (blksize_t)image_block_size(img);
		/* du(1) shows how much of the image is local. */
		st->st_blocks = (blkcnt_t)(store_cached_blocks(store) * image_block_size(img) / 512);
	} else {
		return false;
	}
	return true;
}

/* Larger than any read the kernel sends (FUSE's max_pages: 1 MiB unless raised). */
#define SPLICE_PROBE_BYTES (4 << 20)

/*
 * The largest read reply libfuse can splice. It sends a reply through a pipe of its own
 * that must hold the reply, the header and three pages of slack, and grows the pipe up
 * to /proc/sys/fs/pipe-max-size (1 MiB), or beyond with CAP_SYS_RESOURCE. Ask the
 * kernel for a pipe as large as libfuse could get, the way libfuse asks.
 */
static size_t fs_splice_max(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), slack = 4 * page;
	int p[2], size = -1;

	if (pipe2(p, O_CLOEXEC) != 0)
		return 0;
	for (int want = SPLICE_PROBE_BYTES; want >= (int)page && size < 0; want /= 2)
		size = fcntl(p[0], F_SETPIPE_SZ, want);
	if (size < 0)
		size = fcntl(p[0], F_GETPIPE_SZ);
	close(p[0]);
	close(p[1]);
	return size > (int)slack ? (size_t)size - slack : 0;
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	/* Cached reads go from the cache file to the kernel by splice, without a copy. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	fs->splice_max = conn->want & FUSE_CAP_SPLICE_WRITE ? fs_splice_max() : 0;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/*
	 * Image bytes never change under a mount, so the kernel must not drop its page cache
	 * when attributes expire: with auto_inval_data every read of a cached page would ask
	 * for attributes first (measured: 67k instead of 600k+ random 4K IOPS).
	 */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e = {0};

	e.ino = 0;
	if (parent == FS_INO_ROOT && strcmp(name, ".aheadfs") == 0) {
		e.ino = FS_INO_CTL;
	} else if (parent == FS_INO_CTL && strcmp(name, "stats") == 0) {
		e.ino = FS_INO_STATS;
	} else if (parent == FS_INO_CTL && strcmp(name, "summary") == 0) {
		e.ino = FS_INO_SUMMARY;
	} else if (parent == FS_INO_CTL && g_str_has_suffix(name, FS_HEAT_SUFFIX)) {
		size_t len = strlen(name) - strlen(FS_HEAT_SUFFIX);

		for (guint i = 0; i < fs->n_images; i++)
			if (strlen(image_name(fs->images[i])) == len &&
			    strncmp(name, image_name(fs->images[i]), len) == 0)
				e.ino = FS_INO_HEAT0 + i;
	} else if (parent == FS_INO_ROOT) {
		for (guint i = 0; i < fs->n_images; i++)
			if (strcmp(name, image_name(fs->images[i])) == 0)
				e.ino = FS_INO_IMAGE0 + i;
	}
	if (e.ino == 0 || !fs_attr(fs, e.ino, &e.attr)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.attr_timeout = fs_attr_timeout(fs, e.ino);
	e.entry_timeout = fs_attr_timeout(fs, e.ino) == 0.0 ? 0.0 : FOREVER_S;
	fuse_reply_entry(req, &e);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi G_GNUC_UNUSED)
{
	struct stat st;

	if (!fs_attr(fs_of(req), ino, &st)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_attr(req, &st, fs_attr_timeout(fs_of(req), ino));
}

struct dirent_spec {
	const char *name;
	fuse_ino_t ino;
	mode_t mode;
};

static void fs_reply_dir(fuse_req_t req, const struct dirent_spec *ents, size_t n, size_t size,
			 off_t off)
{
	g_autofree char *buf = g_malloc(size);
	size_t used = 0;

	for (size_t i = (size_t)off; i < n; i++) {
		struct stat st = {.st_ino = ents[i].ino, .st_mode = ents[i].mode};
		size_t len = fuse_add_direntry(req, buf + used, size - used, ents[i].name, &st,
					       (off_t)(i + 1));

		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi G_GNUC_UNUSED)
{
	struct fs *fs = fs_of(req);
	g_autoptr(GArray) ents = g_array_new(FALSE, FALSE, sizeof(struct dirent_spec));
	struct dirent_spec dot = {".", ino, S_IFDIR}, dotdot = {"..", FS_INO_ROOT, S_IFDIR};
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);

	if (ino != FS_INO_ROOT && ino != FS_INO_CTL) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	g_array_append_val(ents, dot);
	g_array_append_val(ents, dotdot);
	if (ino == FS_INO_ROOT) {
		struct dirent_spec ctl = {".aheadfs", FS_INO_CTL, S_IFDIR};

		g_array_append_val(ents, ctl);
		for (guint i = 0; i < fs->n_images; i++) {
			struct dirent_spec e = {image_name(fs->images[i]), FS_INO_IMAGE0 + i,
						S_IFREG};

			g_array_append_val(ents, e);
		}
	} else {
		struct dirent_spec stats = {"stats", FS_INO_STATS, S_IFREG};
		struct dirent_spec summary = {"summary", FS_INO_SUMMARY, S_IFREG};

		g_array_append_val(ents, stats);
		g_array_append_val(ents, summary);
		for (guint i = 0; fs->learned && i < fs->n_images; i++) {
			char *name = g_strconcat(image_name(fs->images[i]), FS_HEAT_SUFFIX, NULL);
			struct dirent_spec e = {name, FS_INO_HEAT0 + i, S_IFREG};

			g_ptr_array_add(names, name);
			g_array_append_val(ents, e);
		}
	}
	fs_reply_dir(req, (const struct dirent_spec *)(void *)ents->data, ents->len, size, off);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (fs_is_report(ino)) {
		/* A snapshot per open, so one read sequence sees one consistent document. */
		fi->fh = (uint64_t)(uintptr_t)fs_report(fs, ino);
		fi->direct_io = 1;
	} else if (fs_heat(fs, ino)) {
		/* The thread's latest snapshot, kept for this open; empty before the first. */
		GBytes *b = learner_image_heat(fs_heat(fs, ino));

		fi->fh = (uint64_t)(uintptr_t)(b ? b : g_bytes_new(NULL, 0));
		fi->direct_io = 1;
	} else if (fs_image(fs, ino)) {
		/* direct_io: the reader's bytes are copied straight from the cache file's
		 * pages, so the image is held in memory once, not also in this file's page
		 * cache; see -o direct_io in the man page. */
		if (fs->direct_io)
			fi->direct_io = 1;
		else
			fi->keep_cache = 1;
	} else {
		fuse_reply_err(req, ino == FS_INO_ROOT || ino == FS_INO_CTL ? EISDIR : ENOENT);
		return;
	}
	fuse_reply_open(req, fi);
}

/* A read of a control file from the snapshot its open took. */
static void fs_read_snapshot(fuse_req_t req, const char *data, size_t len, size_t size,
			     off_t off)
{
	g_autofree char *slice = NULL;

	if ((size_t)off >= len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/*
	 * Reply from a copy: once the reply is in the kernel the reader may close the file,
	 * and its RELEASE (on another thread) frees the document while this thread is still
	 * returning from the reply.
	 */
	slice = g_memdup2(data + off, MIN(size, len - (size_t)off));
	fuse_reply_buf(req, slice, MIN(size, len - (size_t)off));
}

/* A buffer of the calling thread's, of at least `len` bytes; freed when the thread ends. */
struct reply_buf {
	size_t size;
	char bytes[];
};
static GPrivate reply_buf_key = G_PRIVATE_INIT(g_free);

static void *fs_reply_buf(size_t len)
{
	struct reply_buf *b = g_private_get(&reply_buf_key);

	if (!b || b->size < len) {
		b = g_malloc(sizeof(*b) + len);
		b->size = len;
		g_private_replace(&reply_buf_key, b);
	}
	return b->bytes;
}

/*
 * Reply with cached bytes: spliced from the cache file when libfuse's pipe can hold them,
 * else read into the thread's buffer. libfuse's own fallback for a reply its pipe cannot
 * hold allocates a buffer of the reply's size, reads into it, writes and frees it: at
 * 1 MiB that is a fresh mapping every time, 256 page faults, and on a VM each costs a
 * host exit too. Warm 1 MiB reads with -o direct_io (dd bs=1M, unprivileged pipes of
 * 1 MiB) took 65,800 faults per 256 MiB and ran at 136-205 MB/s, against 1,670-2,130
 * MB/s at 512 KiB, which splices.
 */
static void fs_reply_cached(fuse_req_t req, const struct image_extent *ext)
{
	void *buf;
	int err;

	if (ext->length <= fs_of(req)->splice_max) {
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(ext->length);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = ext->fd;
		bv.buf[0].pos = (off_t)ext->offset;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	buf = fs_reply_buf(ext->length);
	err = store_pread_fd(ext->fd, ext->offset, buf, ext->length);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, ext->length);
}

/* Reply to a read; the extent's bytes are consumed when this returns. */
static void fs_reply_extent(fuse_req_t req, int err, struct image_extent *ext)
{
	if (err)
		fuse_reply_err(req, -err);
	else if (ext->data)
		fuse_reply_buf(req, ext->data, ext->length);
	else if (ext->length == 0)
		fuse_reply_buf(req, NULL, 0);
	else
		fs_reply_cached(req, ext);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct image *img = fs_image(fs_of(req), ino);
	struct image_extent ext;
	int err;

	if (fs_is_report(ino)) {
		const char *text = (const char *)(uintptr_t)fi->fh;

		fs_read_snapshot(req, text, strlen(text), size, off);
		return;
	}
	if (fs_heat(fs_of(req), ino)) {
		GBytes *b = (GBytes *)(uintptr_t)fi->fh;
		gsize len;
		const char *data = g_bytes_get_data(b, &len);

		fs_read_snapshot(req, data, len, size, off);
		return;
	}
	if (!img || off < 0) {
		fuse_reply_err(req, img ? EINVAL : EBADF);
		return;
	}
	err = image_read(img, (uint64_t)off, size, &ext);
	fs_reply_extent(req, err, &ext);
	image_read_end(img, &ext);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fs_is_report(ino))
		g_free((char *)(uintptr_t)fi->fh);
	else if (fs_heat(fs_of(req), ino))
		g_bytes_unref((GBytes *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino G_GNUC_UNUSED)
{
	struct fs *fs = fs_of(req);
	struct statvfs sv = {0};
	uint64_t total = 0;

	for (guint i = 0; i < fs->n_images; i++)
		total += image_size(fs->images[i]);
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_blocks = total / 4096;
	sv.f_bfree = sv.f_bavail = 0;
	sv.f_files = 2 * fs->n_images + 3;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.statfs = fs_statfs,
};

const struct fuse_lowlevel_ops *fs_operations(void)
{
	return &fs_ops;
}
