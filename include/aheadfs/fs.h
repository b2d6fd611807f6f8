/*
 * fs: the FUSE low-level operations. The tree is small and fixed at mount time:
 *
 *   MOUNTPOINT/                 inode 1
 *   MOUNTPOINT/NAME ...         the images, inode FS_INO_IMAGE0 + index, read-only
 *   MOUNTPOINT/.aheadfs/        inode FS_INO_CTL, the control folder
 *   MOUNTPOINT/.aheadfs/stats   inode FS_INO_STATS, JSON (see report.h)
 *   MOUNTPOINT/.aheadfs/summary inode FS_INO_SUMMARY, the same as text for people
 *   MOUNTPOINT/.aheadfs/NAME.heat  inode FS_INO_HEAT0 + index, the image's heat map
 *                               (heat.h format), refreshed once a second
 *
 * Only this layer replies to the kernel; everything below returns 0 or -errno.
 */
#ifndef AHEADFS_FS_H
#define AHEADFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdbool.h>

#include "aheadfs/image.h"
#include "aheadfs/learner.h"
#include "aheadfs/link.h"
#include "aheadfs/origin.h"

enum {
	FS_INO_ROOT = FUSE_ROOT_ID,
	FS_INO_CTL = 2,
	FS_INO_STATS = 3,
	FS_INO_SUMMARY = 4,
	FS_INO_IMAGE0 = 16,
};
/* Far above the images' inodes, however many a manifest names. */
#define FS_INO_HEAT0 ((fuse_ino_t)1 << 32)
#define FS_HEAT_SUFFIX ".heat"

/* What the operations work on; the session's userdata. Fixed after mount. */
struct fs {
	struct image **images;
	struct learner_image **learned; /* per image, same index */
	guint n_images;
	struct origin *origin;
	struct learner *learner;
	struct link link;
	gint64 started_us; /* monotonic, for uptime */
	time_t mounted_at; /* wall clock, for the directories' times */
	uid_t uid;
	gid_t gid;
	/* Images bypass the kernel's page cache: every read comes here (-o direct_io). */
	bool direct_io;
	/* The largest read reply libfuse can splice from the cache file; set at INIT. */
	size_t splice_max;
};

const struct fuse_lowlevel_ops *fs_operations(void);

#endif
