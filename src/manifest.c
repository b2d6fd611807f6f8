/*
 * manifest: names and URLs of the images of a mount. See the header for the rules.
 */
#include "aheadfs/manifest.h"

#include <string.h>

static void entry_clear(gpointer p)
{
	struct manifest_entry *e = p;

	g_free(e->name);
	g_free(e->url);
}

GArray *manifest_new(void)
{
	GArray *m = g_array_new(FALSE, TRUE, sizeof(struct manifest_entry));

	g_array_set_clear_func(m, entry_clear);
	return m;
}

gboolean manifest_name_valid(const char *name, GError **error)
{
	if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strcmp(name, ".aheadfs") == 0 ||
	    !g_utf8_validate(name, -1, NULL) || strpbrk(name, "\n\r")) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "invalid image name \"%s\" (it must be a file name: not empty, no "
			    "'/', not '.', '..' or '.aheadfs')",
			    name ? name : "");
		return FALSE;
	}
	return TRUE;
}

gboolean manifest_url_valid(const char *url, GError **error)
{
	if (!g_str_has_prefix(url, "http://") && !g_str_has_prefix(url, "https://") &&
	    !g_str_has_prefix(url, "s3://")) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "unsupported URL \"%s\" (expected http://, https:// or s3://)", url);
		return FALSE;
	}
	if (strpbrk(url, " \t\r\n")) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "URL \"%s\" contains white space (percent-encode it)", url);
		return FALSE;
	}
	return TRUE;
}

char *manifest_name_from_url(const char *url, GError **error)
{
	const char *path = strstr(url, "://");
	g_autofree char *segment = NULL;
	const char *slash;
	size_t len;
	char *name;

	path = path ? strchr(path + 3, '/') : NULL;
	len = path ? strcspn(path, "?#") : 0;
	while (len > 0 && path[len - 1] == '/')
		len--;
	if (len == 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "URL \"%s\" has no file name: give one with -o name=NAME", url);
		return NULL;
	}
	segment = g_strndup(path, len);
	slash = strrchr(segment, '/');
	name = g_uri_unescape_string(slash ? slash + 1 : segment, "/");
	if (!name || !manifest_name_valid(name, error)) {
		if (!name)
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "URL \"%s\" has a badly encoded file name", url);
		g_free(name);
		return NULL;
	}
	return name;
}

gboolean manifest_add(GArray *manifest, const char *name, const char *url, GError **error)
{
	struct manifest_entry e;

	if (!manifest_name_valid(name, error) || !manifest_url_valid(url, error))
		return FALSE;
	for (guint i = 0; i < manifest->len; i++) {
		if (strcmp(g_array_index(manifest, struct manifest_entry, i).name, name) == 0) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "image name \"%s\" is used twice", name);
			return FALSE;
		}
	}
	e.name = g_strdup(name);
	e.url = g_strdup(url);
	g_array_append_val(manifest, e);
	return TRUE;
}

gboolean manifest_load(GArray *manifest, const char *path, GError **error)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	int n = 0;

	if (!g_file_get_contents(path, &text, NULL, error))
		return FALSE;
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		g_autofree char *line = g_strstrip(g_strdup(*l));
		g_auto(GStrv) fields = NULL;
		g_autoptr(GError) why = NULL;

		n++;
		if (!*line || *line == '#')
			continue;
		fields = g_regex_split_simple("[ \t]+", line, 0, 0);
		if (g_strv_length(fields) != 2) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "%s:%d: expected \"NAME URL\"", path, n);
			return FALSE;
		}
		if (!manifest_add(manifest, fields[0], fields[1], &why)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s:%d: %s",
				    path, n, why->message);
			return FALSE;
		}
	}
	if (manifest->len == 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s: no images listed", path);
		return FALSE;
	}
	return TRUE;
}
