/*
 * manifest: which images a mount shows, and under which names.
 *
 * One image: NAME is the last path segment of its URL (percent-decoded, query and
 * fragment dropped) unless -o name= says otherwise. Several: a manifest file, one
 * "NAME URL" per line; blank lines and lines starting with '#' are ignored.
 */
#ifndef AHEADFS_MANIFEST_H
#define AHEADFS_MANIFEST_H

#include <glib.h>

struct manifest_entry {
	char *name;
	char *url;
};

/* An array of struct manifest_entry that frees its entries. */
GArray *manifest_new(void);
gboolean manifest_add(GArray *manifest, const char *name, const char *url, GError **error);
gboolean manifest_load(GArray *manifest, const char *path, GError **error);

/* A file name for the image at `url`, or NULL with an error when the URL has none. */
char *manifest_name_from_url(const char *url, GError **error);

/* Names must be usable as one file name and must not hide the control folder. */
gboolean manifest_name_valid(const char *name, GError **error);
/* http://, https:// or s3:// (resolved later, see options), without white space. */
gboolean manifest_url_valid(const char *url, GError **error);

#endif
