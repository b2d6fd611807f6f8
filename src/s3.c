/*
 * s3: S3 URLs, credentials and error answers. See the header for the rules; the signing
 * itself is libcurl's (CURLOPT_AWS_SIGV4), configured in http.c.
 *
 * Secrets are handled so that they cannot leak through this module's messages: errors
 * name a file and a line number, never the line; values are wiped before they are freed.
 */
#include "config.h"

#include "aheadfs/s3.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CREDENTIALS_MAX_BYTES (64 * 1024)
#define EXPLAIN_MAX 200

bool s3_url_is_s3(const char *url)
{
	return url && g_ascii_strncasecmp(url, "s3://", 5) == 0;
}

/* SigV4's URI encoding of an object key: unreserved characters and '/' stay. */
static void append_key_encoded(GString *out, const char *key)
{
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (g_ascii_isalnum(*p) || strchr("-._~/", *p))
			g_string_append_c(out, (char)*p);
		else
			g_string_append_printf(out, "%%%02X", *p);
	}
}

static bool bucket_name_valid(const char *b, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(b[i]) && !strchr("._-", b[i]))
			return false;
	return true;
}

/* A bucket that can be the first label(s) of a host name with a valid certificate. */
static bool bucket_fits_host(const char *b, size_t len, bool https)
{
	if (len < 3 || len > 63 || !g_ascii_isalnum(b[0]) || !g_ascii_isalnum(b[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (g_ascii_isupper(b[i]) || b[i] == '_')
			return false;
		if (b[i] == '.' && (https || b[i + 1] == '.'))
			return false;
	}
	return true;
}

static bool host_is_literal(const char *authority)
{
	g_autofree char *host = NULL;
	const char *colon;

	if (authority[0] == '[')
		return true; /* IPv6 */
	colon = strrchr(authority, ':');
	host = colon ? g_strndup(authority, (gsize)(colon - authority)) : g_strdup(authority);
	return g_hostname_is_ip_address(host) || g_ascii_strcasecmp(host, "localhost") == 0;
}

static bool region_valid(const char *r)
{
	if (!r || !*r || strlen(r) > 64)
		return false;
	for (; *r; r++)
		if (!g_ascii_isalnum(*r) && *r != '-' && *r != '_')
			return false;
	return true;
}

/* Split an endpoint URL into scheme ("https"), authority and path prefix (no '/' at end). */
static gboolean endpoint_split(const char *endpoint, char **scheme, char **authority, char **prefix,
			       GError **error)
{
	const char *p, *slash;
	size_t plen;

	if (g_str_has_prefix(endpoint, "https://"))
		*scheme = g_strdup("https");
	else if (g_str_has_prefix(endpoint, "http://"))
		*scheme = g_strdup("http");
	else
		goto bad;
	p = strstr(endpoint, "://") + 3;
	slash = strchr(p, '/');
	*authority = slash ? g_strndup(p, (gsize)(slash - p)) : g_strdup(p);
	plen = slash ? strlen(slash) : 0;
	while (plen > 0 && slash[plen - 1] == '/')
		plen--;
	*prefix = g_strndup(slash ? slash : "", plen);
	if (!**authority || strpbrk(*authority, "@/?# \t\r\n") || strpbrk(*prefix, "?# \t\r\n")) {
		g_clear_pointer(scheme, g_free);
		g_clear_pointer(authority, g_free);
		g_clear_pointer(prefix, g_free);
		goto bad;
	}
	return TRUE;
bad:
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "endpoint: \"%s\" is not http(s)://HOST[:PORT][/PATH] (without user, query or "
		    "fragment)",
		    endpoint);
	return FALSE;
}

char *s3_url_resolve(const char *s3_url, const struct s3_endpoint *ep, GError **error)
{
	g_autofree char *scheme = NULL, *authority = NULL, *prefix = NULL, *raw_key = NULL;
	const char *region = ep->region ? ep->region : S3_DEFAULT_REGION;
	const char *bucket, *slash, *key;
	size_t blen;
	bool path_style;
	GString *out;

	if (!s3_url_is_s3(s3_url)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "\"%s\" is not an s3:// URL", s3_url);
		return NULL;
	}
	bucket = s3_url + 5;
	slash = strchr(bucket, '/');
	key = slash ? slash + 1 : "";
	blen = slash ? (size_t)(slash - bucket) : strlen(bucket);
	if (!*key) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "\"%s\" names no object (expected s3://BUCKET/KEY)", s3_url);
		return NULL;
	}
	if (!bucket_name_valid(bucket, blen)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "\"%s\": bad bucket name (letters, digits, '.', '-' and '_')", s3_url);
		return NULL;
	}
	raw_key = g_uri_unescape_string(key, NULL);
	if (!raw_key) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "\"%s\": badly percent-encoded key", s3_url);
		return NULL;
	}
	for (const char *c = raw_key; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "\"%s\": the key contains a control character", s3_url);
			return NULL;
		}
	}
	if (!region_valid(region)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "region: \"%s\" is not a region name (like us-east-1)", region);
		return NULL;
	}
	if (ep->endpoint) {
		if (!endpoint_split(ep->endpoint, &scheme, &authority, &prefix, error))
			return NULL;
	} else {
		scheme = g_strdup("https");
		authority = g_strdup_printf("s3.%s.amazonaws.com", region);
		prefix = g_strdup("");
	}
	path_style = ep->path_style || host_is_literal(authority) ||
		     !bucket_fits_host(bucket, blen, strcmp(scheme, "https") == 0);
	out = g_string_new(scheme);
	g_string_append(out, "://");
	if (!path_style) {
		g_string_append_len(out, bucket, (gssize)blen);
		g_string_append_c(out, '.');
	}
	g_string_append(out, authority);
	g_string_append(out, prefix);
	if (path_style) {
		g_string_append_c(out, '/');
		g_string_append_len(out, bucket, (gssize)blen);
	}
	g_string_append_c(out, '/');
	append_key_encoded(out, raw_key);
	return g_string_free(out, FALSE);
}

/* Query parameters that sign a URL (SigV4 and the legacy SigV2 ones). */
static const char *const signing_params[] = {
    "X-Amz-Algorithm",	   "X-Amz-Credential", "X-Amz-Date",	       "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Signature",  "X-Amz-Security-Token", "AWSAccessKeyId",
    "Signature",	   "Expires",
};

/* Those of them that are secret, or name who signed. */
static const char *const secret_params[] = {
    "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId", "Signature",
};

static bool param_in(const char *name, size_t len, const char *const *set, gsize n)
{
	for (gsize i = 0; i < n; i++)
		if (strlen(set[i]) == len && g_ascii_strncasecmp(name, set[i], len) == 0)
			return true;
	return false;
}

/* The value of query parameter `name` (not decoded), or NULL. */
static char *query_param(const char *url, const char *name)
{
	const char *q = strchr(url, '?');
	size_t nlen = strlen(name);

	while (q && *q && *q != '#') {
		const char *p = q + 1;
		size_t plen = strcspn(p, "&#");

		if (plen > nlen && p[nlen] == '=' && g_ascii_strncasecmp(p, name, nlen) == 0)
			return g_strndup(p + nlen + 1, plen - nlen - 1);
		q = p + plen;
	}
	return NULL;
}

bool s3_url_is_presigned(const char *url)
{
	g_autofree char *v4 = query_param(url, "X-Amz-Signature");
	g_autofree char *v2 = v4 ? NULL : query_param(url, "Signature");

	return v4 || v2;
}

/* Rebuild the URL with each signing parameter dropped (redact false) or blanked. */
static char *url_filter_query(const char *url, bool redact)
{
	const char *q = strchr(url, '?');
	const char *frag;
	GString *out;
	bool first = true;

	if (!q)
		return g_strdup(url);
	frag = strchr(q, '#');
	out = g_string_new_len(url, (gssize)(q - url));
	while (*q == '?' || *q == '&') {
		const char *p = q + 1;
		size_t plen = strcspn(p, "&#");
		size_t nlen = strcspn(p, "=&#");

		if (plen > 0) {
			bool drop = !redact &&
				    param_in(p, nlen, signing_params, G_N_ELEMENTS(signing_params));
			bool hide =
			    redact && param_in(p, nlen, secret_params, G_N_ELEMENTS(secret_params));

			if (!drop) {
				g_string_append_c(out, first ? '?' : '&');
				first = false;
				if (hide)
					g_string_append_printf(out, "%.*s=REDACTED", (int)nlen, p);
				else
					g_string_append_len(out, p, (gssize)plen);
			}
		}
		q = p + plen;
	}
	if (frag)
		g_string_append(out, frag);
	return g_string_free(out, FALSE);
}

char *s3_url_unsigned(const char *url)
{
	return url_filter_query(url, false);
}

char *s3_url_redact(const char *url)
{
	return url_filter_query(url, true);
}

gint64 s3_url_expiry(const char *url)
{
	g_autofree char *date = query_param(url, "X-Amz-Date");
	g_autofree char *expires = query_param(url, "X-Amz-Expires");
	g_autofree char *legacy = NULL;
	int y, mo, d, h, mi, s;
	char z;

	if (date && expires && strlen(date) == 16 &&
	    sscanf(date, "%4d%2d%2dT%2d%2d%2d%c", &y, &mo, &d, &h, &mi, &s, &z) == 7 && z == 'Z' &&
	    g_ascii_isdigit(*expires)) {
		g_autoptr(GDateTime) t = g_date_time_new_utc(y, mo, d, h, mi, s);

		if (t)
			return g_date_time_to_unix(t) + (gint64)g_ascii_strtoull(expires, NULL, 10);
	}
	/* SigV2: Expires= is an absolute time, with Signature= beside it. */
	legacy = query_param(url, "Expires");
	if (legacy && g_ascii_isdigit(*legacy) && s3_url_is_presigned(url))
		return (gint64)g_ascii_strtoull(legacy, NULL, 10);
	return 0;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

void s3_credentials_clear(struct s3_credentials *c)
{
	wipe_free(c->access_key_id);
	wipe_free(c->secret_access_key);
	wipe_free(c->session_token);
	c->access_key_id = c->secret_access_key = c->session_token = NULL;
}

/* A credential value: printable, no white space (a pasted line break is a typo). */
static bool credential_value_valid(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (!g_ascii_isgraph(*v))
			return false;
	return true;
}

/* Read the whole file into a string, checking who may read it. */
static char *credentials_read(const char *path, GError **error)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;

		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "cannot open %s: %s",
			    path, g_strerror(e));
		return NULL;
	}
	/* fstat of the opened file: what is checked is what is read. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s is not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & 077) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s may be read or written by others (mode %04o): chmod 600 it", path,
			    (unsigned)(st.st_mode & 07777));
		close(fd);
		return NULL;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s is owned by uid %u, neither this user nor root", path,
			    (unsigned)st.st_uid);
		close(fd);
		return NULL;
	}
	if (st.st_size > CREDENTIALS_MAX_BYTES) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s is too large for a credentials file", path);
		close(fd);
		return NULL;
	}
	buf = g_malloc((gsize)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return buf;
}

/*
 * Parse the text of a credentials file. Lines: "[section]", "key = value", comments
 * starting with '#' or ';', blank. Keys of [default] (or before any section) count.
 */
static gboolean credentials_parse(const char *path, char *text, struct s3_credentials *out,
				  GError **error)
{
	bool in_default = true, seen_default = false, any_section = false;
	int lineno = 0;

	for (char *line = text, *next; line; line = next) {
		char *eq, *key, *value, **slot = NULL;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line = g_strstrip(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			size_t len = strlen(line);

			if (line[len - 1] != ']') {
				g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
					    "%s:%d: a section line must end with ']'", path,
					    lineno);
				return FALSE;
			}
			line[len - 1] = '\0';
			any_section = true;
			in_default = strcmp(g_strstrip(line + 1), "default") == 0;
			seen_default |= in_default;
			continue;
		}
		eq = strchr(line, '=');
		if (!eq) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "%s:%d: expected KEY = VALUE", path, lineno);
			return FALSE;
		}
		*eq = '\0';
		key = g_strstrip(line);
		value = g_strstrip(eq + 1);
		if (!in_default)
			continue;
		if (g_ascii_strcasecmp(key, "aws_access_key_id") == 0)
			slot = &out->access_key_id;
		else if (g_ascii_strcasecmp(key, "aws_secret_access_key") == 0)
			slot = &out->secret_access_key;
		else if (g_ascii_strcasecmp(key, "aws_session_token") == 0)
			slot = &out->session_token;
		if (!slot)
			continue; /* region, output, ...: not ours */
		if (!credential_value_valid(value)) {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "%s:%d: the value of %s is empty or has white space", path,
				    lineno, key);
			return FALSE;
		}
		wipe_free(*slot);
		*slot = g_strdup(value);
	}
	if (any_section && !seen_default) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s has no [default] section", path);
		return FALSE;
	}
	if (!out->access_key_id || !out->secret_access_key) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "%s: no %s in [default]", path,
			    !out->access_key_id ? "aws_access_key_id" : "aws_secret_access_key");
		return FALSE;
	}
	return TRUE;
}

gboolean s3_credentials_load_file(const char *path, struct s3_credentials *out, GError **error)
{
	char *text;
	gboolean ok;

	memset(out, 0, sizeof(*out));
	text = credentials_read(path, error);
	if (!text)
		return FALSE;
	ok = credentials_parse(path, text, out, error);
	wipe_free(text);
	if (!ok)
		s3_credentials_clear(out);
	return ok;
}

/*
 * A copy of the variable's value; the original bytes are overwritten (they may be in the
 * process's initial environment block, which /proc/PID/environ shows) and it is unset.
 */
static char *env_take(const char *name)
{
	char *v = getenv(name);
	char *copy;

	if (!v)
		return NULL;
	copy = g_strdup(v);
	explicit_bzero(v, strlen(v));
	unsetenv(name);
	return copy;
}

gboolean s3_credentials_from_env(struct s3_credentials *out, GError **error)
{
	memset(out, 0, sizeof(*out));
	out->access_key_id = env_take("AWS_ACCESS_KEY_ID");
	out->secret_access_key = env_take("AWS_SECRET_ACCESS_KEY");
	out->session_token = env_take("AWS_SESSION_TOKEN");
	if (out->session_token && !*out->session_token)
		g_clear_pointer(&out->session_token, g_free);
	if (!out->access_key_id || !out->secret_access_key ||
	    !credential_value_valid(out->access_key_id) ||
	    !credential_value_valid(out->secret_access_key) ||
	    (out->session_token && !credential_value_valid(out->session_token))) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    !out->access_key_id && !out->secret_access_key
				? "no credentials: give -o credentials_file=FILE, or set "
				  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
			    : !out->access_key_id     ? "AWS_ACCESS_KEY_ID is not set"
			    : !out->secret_access_key ? "AWS_SECRET_ACCESS_KEY is not set"
						      : "an AWS_* credential variable is empty or "
							"has white space");
		s3_credentials_clear(out);
		return FALSE;
	}
	return TRUE;
}

struct s3_signing *s3_signing_new(const char *region, struct s3_credentials *creds)
{
	struct s3_signing *s = g_new0(struct s3_signing, 1);

	s->region = g_strdup(region ? region : S3_DEFAULT_REGION);
	s->sigv4 = g_strdup_printf("aws:amz:%s:s3", s->region);
	s->creds = *creds;
	memset(creds, 0, sizeof(*creds));
	return s;
}

void s3_signing_free(struct s3_signing *s)
{
	if (!s)
		return;
	s3_credentials_clear(&s->creds);
	g_free(s->region);
	g_free(s->sigv4);
	g_free(s);
}

/* The text of <tag>...</tag> in an XML error body, printable ASCII only, or NULL. */
static char *xml_element(const char *body, const char *tag)
{
	g_autofree char *open = g_strdup_printf("<%s>", tag);
	g_autofree char *close = g_strdup_printf("</%s>", tag);
	const char *a = body ? strstr(body, open) : NULL;
	const char *b;
	GString *out;

	if (!a)
		return NULL;
	a += strlen(open);
	b = strstr(a, close);
	if (!b || b == a)
		return NULL;
	out = g_string_new(NULL);
	for (; a < b && out->len < EXPLAIN_MAX; a++)
		g_string_append_c(out, g_ascii_isprint(*a) ? *a : ' ');
	return g_string_free(out, FALSE);
}

char *s3_error_explain(long status, const char *body, const char *url)
{
	g_autofree char *code = xml_element(body, "Code");
	g_autofree char *message = xml_element(body, "Message");
	g_autofree char *said = NULL, *lower = NULL;
	gint64 expiry = s3_url_expiry(url);
	bool says_expired;

	if (code || message)
		said = g_strdup_printf("%s%s%s", code ? code : "", code && message ? ": " : "",
				       message ? message : "");
	lower = said ? g_ascii_strdown(said, -1) : NULL;
	says_expired = lower && strstr(lower, "expired");
	if (status == 403 && s3_url_is_presigned(url) &&
	    (says_expired || (expiry > 0 && expiry < g_get_real_time() / G_USEC_PER_SEC))) {
		g_autofree char *when = NULL;

		if (expiry > 0) {
			g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(expiry);

			when = t ? g_date_time_format(t, " at %Y-%m-%dT%H:%M:%SZ") : NULL;
		}
		return g_strdup_printf("presigned URL expired%s%s%s%s", when ? when : "",
				       said ? " (" : "", said ? said : "", said ? ")" : "");
	}
	if (code && strcmp(code, "ExpiredToken") == 0)
		return g_strdup_printf("the session token has expired (%s)", said);
	if (code && strcmp(code, "SignatureDoesNotMatch") == 0)
		return g_strdup("SignatureDoesNotMatch: the secret access key is wrong, or the "
				"region or clock is off");
	if (code && strcmp(code, "InvalidAccessKeyId") == 0)
		return g_strdup("InvalidAccessKeyId: the store does not know this access key ID");
	if (code && strcmp(code, "RequestTimeTooSkewed") == 0)
		return g_strdup("RequestTimeTooSkewed: this host's clock is off");
	return g_steal_pointer(&said);
}
