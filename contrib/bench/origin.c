/*
 * aheadfs-origin: the benchmark's HTTP/1.1 origin server with an emulated wide-area link.
 *
 * Every system in the benchmark (aheadfs, qemu's curl driver, nbdkit, httpdirfs, rclone)
 * reads the same disk image from this server, so the link they see is identical and the
 * server's log says how many requests and bytes each of them cost.
 *
 *   client --request--> [parse] --(rtt +- jitter)--> [headers] --(token bucket)--> [body]
 *
 * - Delay: every response waits --rtt-ms (plus uniform jitter in [-jitter, +jitter]) between
 *   the end of its request and its first byte. That is what one request costs on a real
 *   link once the connection is open; connection setup itself is not charged.
 * - Bandwidth: one token bucket shared by all connections caps the body bytes of every
 *   response, as a single access link would. The bucket is a reservation queue: a sender
 *   takes its chunk's tokens even when that drives the balance negative and sleeps until
 *   the debt is paid, so concurrent senders are served first come, first served.
 * - Unshaped, bodies go out with sendfile(2) straight from the page cache; one thread per
 *   connection, which is plenty for the tens of connections a benchmark opens.
 *
 * Usage: aheadfs-origin --root DIR [--port N] [--rtt-ms N] [--bandwidth-mbit N] ...
 *        aheadfs-origin --summarize LOGFILE
 * See contrib/bench/README.origin.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <glib.h>

/* Requests whose header block does not fit are answered 431 and the connection closed. */
#define ORIGIN_HEADER_MAX 16384
/* Matches nginx's keepalive_timeout, so clients see the same idle behaviour as in production. */
#define ORIGIN_IDLE_TIMEOUT_S 75
#define ORIGIN_MAX_CONNECTIONS 4096

struct origin_options {
	char *root;
	char *bind;
	int port;
	double rtt_ms;
	double jitter_ms;
	double bandwidth_mbit;
	double error_rate;
	int error_first;
	gboolean no_ranges;
	char *log_path;
	double max_seconds;
	char *summarize;
};

/* Set once in main() before any thread starts, read-only afterwards. */
static struct origin_options opt = {
    .bind = NULL,
    .port = 0,
    .max_seconds = 3600,
};
static int log_fd = -1;

/*
 * The shared link. lock protects tokens and last; rate, burst and chunk are constant
 * once the server runs. No other lock is ever taken while holding it.
 */
struct bucket {
	pthread_mutex_t lock;
	double rate;  /* bytes per second; 0 = unshaped */
	double burst; /* most tokens that may accumulate while the link is idle */
	size_t chunk; /* bytes sent per reservation: the shaping granularity */
	double tokens;
	double last;
};

static struct bucket link_bucket = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

static int active_connections;
static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;

struct conn {
	int fd;
	char peer[INET6_ADDRSTRLEN + 8];
	size_t len; /* bytes of buf holding received, not yet consumed data */
	char buf[ORIGIN_HEADER_MAX];
};

struct request {
	char *method;
	char *target;
	bool http10;
	bool keep_alive;
	const char *range;
	const char *if_range;
	bool has_body;
	size_t consumed; /* length of the header block in conn->buf */
};

/* What was answered, for the log line. */
struct outcome {
	int status;
	uint64_t offset;
	uint64_t length;
	uint64_t sent;
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void bucket_init(struct bucket *b, double mbit)
{
	b->rate = mbit * 1e6 / 8;
	if (b->rate <= 0)
		return;
	/* ~5 ms of link time per chunk, so the rate is smooth at the scale of one read. */
	b->chunk = (size_t)(b->rate / 200);
	if (b->chunk < 4096)
		b->chunk = 4096;
	if (b->chunk > 1 << 20)
		b->chunk = 1 << 20;
	/*
	 * A real link has no burst, but a sender that oversleeps (a busy CPU: qemu TCG runs
	 * next to us) would lose that link time for good. 20 ms of credit absorbs such
	 * oversleeping at the cost of letting a transfer after an idle spell start 20 ms
	 * ahead: +5% on a 4 MB transfer, nothing on a long one.
	 */
	b->burst = b->rate * 0.020;
	if (b->burst < (double)b->chunk)
		b->burst = (double)b->chunk;
	b->tokens = b->burst;
	b->last = now_mono();
}

/* Reserve n bytes of link time and sleep until they are paid for. */
static void bucket_take(struct bucket *b, size_t n)
{
	double now, wait;

	pthread_mutex_lock(&b->lock);
	now = now_mono();
	b->tokens += (now - b->last) * b->rate;
	b->last = now;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	b->tokens -= (double)n;
	wait = b->tokens < 0 ? -b->tokens / b->rate : 0;
	pthread_mutex_unlock(&b->lock);
	sleep_s(wait);
}

/* ---- HTTP helpers ---- */

static void http_date(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static bool http_parse_date(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end)
		return false;
	*out = timegm(&tm);
	return true;
}

/* Strong validator from inode, size and mtime, so a rewritten image gets a new tag. */
static void http_etag(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st->st_ino,
		 (uint64_t)st->st_size, (uint64_t)st->st_mtime);
}

static const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 416:
		return "Range Not Satisfiable";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

/* Case-insensitive search for a token in a comma-separated header value. */
static bool http_has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	const char *p = value;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!strncasecmp(p, token, tl) &&
		    (p[tl] == '\0' || p[tl] == ',' || p[tl] == ' ' || p[tl] == '\t'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

enum range_result {
	RANGE_NONE,	     /* no usable Range header: answer 200 with the whole file */
	RANGE_OK,	     /* one satisfiable range: 206 */
	RANGE_UNSATISFIABLE, /* 416 */
};

/*
 * Parse "bytes=A-B", "bytes=A-" or "bytes=-N" against a file of size bytes. Anything else
 * (several ranges, another unit, bad syntax) is ignored, which RFC 9110 allows: the
 * client gets the whole file with 200.
 */
static enum range_result http_parse_range(const char *v, uint64_t size, uint64_t *first,
					  uint64_t *last)
{
	unsigned long long a, b;
	char *end;

	while (*v == ' ')
		v++;
	if (strncasecmp(v, "bytes=", 6))
		return RANGE_NONE;
	v += 6;
	while (*v == ' ')
		v++;
	if (strchr(v, ','))
		return RANGE_NONE;
	if (*v == '-') {
		if (!g_ascii_isdigit(v[1]))
			return RANGE_NONE;
		errno = 0;
		b = strtoull(v + 1, &end, 10);
		if (errno || (*end && *end != ' '))
			return RANGE_NONE;
		if (b == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return RANGE_OK;
	}
	if (!g_ascii_isdigit(*v))
		return RANGE_NONE;
	errno = 0;
	a = strtoull(v, &end, 10);
	if (errno || *end != '-')
		return RANGE_NONE;
	v = end + 1;
	if (*v == '\0' || *v == ' ') {
		b = UINT64_MAX;
	} else {
		if (!g_ascii_isdigit(*v))
			return RANGE_NONE;
		b = strtoull(v, &end, 10);
		if (errno || (*end && *end != ' '))
			return RANGE_NONE;
		if (b < a)
			return RANGE_NONE;
	}
	if (a >= size)
		return RANGE_UNSATISFIABLE;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return RANGE_OK;
}

/*
 * Decode the request target into a path below the root. Returns false for anything that
 * could escape it: a ".." segment (also percent-encoded), a NUL, a relative target.
 */
static bool http_target_to_path(const char *target, char *out, size_t len)
{
	const char *p = target;
	size_t o = 0;
	char *seg;

	if (!g_ascii_strncasecmp(p, "http://", 7)) {
		p = strchr(p + 7, '/');
		if (!p)
			p = "/";
	}
	if (*p != '/')
		return false;
	while (*p && *p != '?' && *p != '#') {
		char c = *p++;

		if (c == '%') {
			int hi = g_ascii_xdigit_value(p[0]);
			int lo = hi < 0 ? -1 : g_ascii_xdigit_value(p[1]);

			if (lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			p += 2;
			if (c == '\0')
				return false;
		}
		if (o + 1 >= len)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	for (seg = out; seg; seg = strchr(seg + 1, '/')) {
		if (seg[1] == '.' && seg[2] == '.' && (seg[3] == '/' || seg[3] == '\0'))
			return false;
	}
	return true;
}

/* ---- Connection handling ---- */

static bool send_all(int fd, const char *p, size_t n, int flags)
{
	while (n > 0) {
		ssize_t r = send(fd, p, n, flags | MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* Send [off, off + n) of file through the shared link. Returns the bytes sent. */
static uint64_t send_body(int sock, int file, uint64_t off, uint64_t n)
{
	uint64_t sent = 0;

	while (sent < n) {
		size_t want = n - sent > (1u << 30) ? (1u << 30) : (size_t)(n - sent);
		off_t o = (off_t)(off + sent);
		ssize_t r;

		if (link_bucket.rate > 0) {
			if (want > link_bucket.chunk)
				want = link_bucket.chunk;
			bucket_take(&link_bucket, want);
		}
		r = sendfile(sock, file, &o, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* peer gone, or the file shrank under us */
		sent += (uint64_t)r;
	}
	return sent;
}

static void log_request(const struct conn *c, const struct request *req, const struct outcome *out,
			double started)
{
	char line[1024];
	struct timespec wall;
	int n;

	if (log_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &wall);
	n = snprintf(line, sizeof(line),
		     "time=%lld.%06ld client=%s method=%s path=%s offset=%" PRIu64
		     " length=%" PRIu64 " status=%d bytes=%" PRIu64 " dur_ms=%.3f\n",
		     (long long)wall.tv_sec, wall.tv_nsec / 1000, c->peer,
		     req->method ? req->method : "-", req->target ? req->target : "-", out->offset,
		     out->length, out->status, out->sent, (now_mono() - started) * 1e3);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* O_APPEND and one write per line: lines from concurrent connections never mix. */
	if (write(log_fd, line, (size_t)n) < 0) {
		/* Nothing sensible to do mid-benchmark; the summary will be short. */
	}
}

static double response_delay_s(void)
{
	double d = opt.rtt_ms;

	if (opt.jitter_ms > 0)
		d += g_random_double_range(-opt.jitter_ms, opt.jitter_ms);
	return d > 0 ? d / 1e3 : 0;
}

/* Whether this request is answered 503: one of the first --error-first, or by chance. */
static bool origin_injects_error(void)
{
	static int served; /* requests that reached this point, across connections */

	if (__atomic_fetch_add(&served, 1, __ATOMIC_RELAXED) < opt.error_first)
		return true;
	return opt.error_rate > 0 && g_random_double() < opt.error_rate;
}

/* A response without a file body. Returns false when the connection must close. */
static bool reply_simple(struct conn *c, int status, bool keep_alive, const char *extra)
{
	char hdr[512], date[64];
	const char *body = http_reason(status);
	int n;

	http_date(time(NULL), date, sizeof(date));
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\nServer: aheadfs-origin\r\nDate: %s\r\n"
		     "Content-Type: text/plain\r\nContent-Length: %zu\r\n%sConnection: %s\r\n\r\n"
		     "%s\n",
		     status, http_reason(status), date, strlen(body) + 1, extra ? extra : "",
		     keep_alive ? "keep-alive" : "close", body);
	return send_all(c->fd, hdr, (size_t)n, 0) && keep_alive;
}

/* ---- Directory index ---- */

static int compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The HTML page nginx's autoindex writes for a directory: one <a href="name"> line per
 * entry (subdirectories end in '/'), then the date and the size in bytes. rclone's http
 * backend finds the files of a remote by parsing exactly this; hidden entries are left
 * out, as nginx does. Returns NULL when the directory cannot be read.
 */
static GString *dir_index_html(const char *dir, const char *url_path)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *title = g_markup_escape_text(url_path, -1);
	struct dirent *e;
	GString *html;
	DIR *d = opendir(dir);

	if (!d)
		return NULL;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			g_ptr_array_add(names, g_strdup(e->d_name));
	closedir(d);
	g_ptr_array_sort(names, compare_names);

	html = g_string_new(NULL);
	g_string_append_printf(html,
			       "<html>\r\n<head><title>Index of %s</title></head>\r\n<body>\r\n"
			       "<h1>Index of %s</h1><hr><pre><a href=\"../\">../</a>\r\n",
			       title, title);
	for (guint i = 0; i < names->len; i++) {
		const char *name = g_ptr_array_index(names, i);
		g_autofree char *full = g_build_filename(dir, name, NULL);
		g_autofree char *href = g_uri_escape_string(name, NULL, FALSE);
		g_autofree char *text = g_markup_escape_text(name, -1);
		const char *slash;
		struct stat st;
		struct tm tm;
		char mtime[32], size[24];

		if (stat(full, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
			continue;
		slash = S_ISDIR(st.st_mode) ? "/" : "";
		strftime(mtime, sizeof(mtime), "%d-%b-%Y %H:%M", gmtime_r(&st.st_mtime, &tm));
		if (S_ISDIR(st.st_mode))
			g_strlcpy(size, "-", sizeof(size));
		else
			snprintf(size, sizeof(size), "%jd", (intmax_t)st.st_size);
		g_string_append_printf(html, "<a href=\"%s%s\">%s%s</a> %s %19s\r\n", href, slash,
				       text, slash, mtime, size);
	}
	g_string_append(html, "</pre><hr></body>\r\n</html>\r\n");
	return html;
}

/*
 * GET or HEAD of a directory: its index if the target ends in '/', else a redirect to
 * the target with the '/' (as nginx answers), so relative links resolve. Returns false
 * when the connection must close.
 */
static bool serve_directory(struct conn *c, const struct request *req, const char *dir,
			    const char *url_path, bool head, bool keep, struct outcome *out)
{
	g_autoptr(GString) html = NULL;
	char hdr[PATH_MAX + 512], date[64];
	int n;

	if (!g_str_has_suffix(url_path, "/")) {
		/* The raw target, less any query, keeps its percent-encoding. */
		g_autofree char *loc = g_strdup_printf("Location: %.*s/\r\n",
						       (int)strcspn(req->target, "?#"), req->target);

		out->status = 301;
		return reply_simple(c, out->status, keep, strlen(loc) < 400 ? loc : NULL);
	}
	html = dir_index_html(dir, url_path);
	if (!html) {
		out->status = errno == EACCES ? 403 : 404;
		return reply_simple(c, out->status, keep, NULL);
	}
	out->status = 200;
	out->length = html->len;
	http_date(time(NULL), date, sizeof(date));
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 200 OK\r\nServer: aheadfs-origin\r\nDate: %s\r\n"
		     "Content-Type: text/html\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
		     date, html->len, keep ? "keep-alive" : "close");
	if (!send_all(c->fd, hdr, (size_t)n, 0))
		return false;
	if (head)
		return keep;
	/* The page crosses the same emulated link as any body. */
	if (link_bucket.rate > 0)
		bucket_take(&link_bucket, html->len);
	if (!send_all(c->fd, html->str, html->len, 0))
		return false;
	out->sent = html->len;
	return keep;
}

/* Answer one parsed request. Returns false when the connection must close. */
static bool serve(struct conn *c, struct request *req, double started)
{
	struct outcome out = {0};
	char path[PATH_MAX], full[PATH_MAX * 2], etag[80], lastmod[64], date[64], extra[160];
	char hdr[1024];
	bool head = !strcmp(req->method, "HEAD");
	bool keep = req->keep_alive;
	enum range_result rr = RANGE_NONE;
	uint64_t size, first = 0, last = 0;
	struct stat st;
	int fd = -1, n;

	sleep_s(response_delay_s());

	/* A request body is never read: rather than skip it, stop reading this stream. */
	if (req->has_body)
		keep = false;
	if (!head && strcmp(req->method, "GET")) {
		out.status = 405;
		keep = reply_simple(c, out.status, keep, "Allow: GET, HEAD\r\n");
		goto out;
	}
	if (req->has_body) {
		out.status = 400;
		reply_simple(c, out.status, keep, NULL);
		goto out;
	}
	if (origin_injects_error()) {
		out.status = 503;
		keep = reply_simple(c, out.status, keep, "Retry-After: 0\r\n");
		goto out;
	}
	if (!http_target_to_path(req->target, path, sizeof(path))) {
		out.status = 400;
		keep = reply_simple(c, out.status, keep, NULL);
		goto out;
	}
	snprintf(full, sizeof(full), "%s%s", opt.root, path);
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		keep = serve_directory(c, req, full, path, head, keep, &out);
		goto out;
	}
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		out.status = (fd < 0 && errno == EACCES) ? 403 : 404;
		keep = reply_simple(c, out.status, keep, NULL);
		goto out;
	}
	size = (uint64_t)st.st_size;
	http_etag(&st, etag, sizeof(etag));
	http_date(st.st_mtime, lastmod, sizeof(lastmod));

	if (req->range && !opt.no_ranges) {
		rr = http_parse_range(req->range, size, &first, &last);
		if (rr == RANGE_OK && req->if_range) {
			/* A stale validator means the client's other pieces are from another
			 * version: it must get the whole current file. */
			const char *v = req->if_range;
			time_t t;

			if (*v == '"' || !strncmp(v, "W/", 2))
				rr = strcmp(v, etag) ? RANGE_NONE : RANGE_OK;
			else
				rr = (http_parse_date(v, &t) && t == st.st_mtime) ? RANGE_OK
										  : RANGE_NONE;
		}
	}
	if (rr == RANGE_UNSATISFIABLE) {
		snprintf(extra, sizeof(extra), "Content-Range: bytes */%" PRIu64 "\r\n", size);
		out.status = 416;
		keep = reply_simple(c, out.status, keep, extra);
		goto out;
	}
	if (rr == RANGE_OK) {
		out.status = 206;
		out.offset = first;
		out.length = last - first + 1;
		snprintf(extra, sizeof(extra),
			 "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", first,
			 last, size);
	} else {
		out.status = 200;
		out.offset = 0;
		out.length = size;
		extra[0] = '\0';
	}
	http_date(time(NULL), date, sizeof(date));
	n = snprintf(
	    hdr, sizeof(hdr),
	    "HTTP/1.1 %d %s\r\nServer: aheadfs-origin\r\nDate: %s\r\n"
	    "Content-Type: application/octet-stream\r\nContent-Length: %" PRIu64 "\r\n"
	    "%sAccept-Ranges: %s\r\nETag: %s\r\nLast-Modified: %s\r\nConnection: %s\r\n\r\n",
	    out.status, http_reason(out.status), date, out.length, extra,
	    opt.no_ranges ? "none" : "bytes", etag, lastmod, keep ? "keep-alive" : "close");
	if (!send_all(c->fd, hdr, (size_t)n, (!head && out.length) ? MSG_MORE : 0)) {
		keep = false;
		goto out;
	}
	if (!head) {
		out.sent = send_body(c->fd, fd, out.offset, out.length);
		if (out.sent != out.length)
			keep = false;
	}
out:
	if (fd >= 0)
		close(fd);
	log_request(c, req, &out, started);
	return keep;
}

/*
 * Parse the header block ending at buf[end] in place (NUL-terminating its pieces).
 * Returns false when it is not HTTP.
 */
static bool parse_request(char *buf, size_t end, struct request *req)
{
	char *line, *next, *sp1, *sp2;
	const char *connection = NULL;

	memset(req, 0, sizeof(*req));
	buf[end] = '\0';
	line = buf;
	next = strstr(line, "\r\n");
	if (next)
		*next = '\0';
	sp1 = strchr(line, ' ');
	if (!sp1)
		return false;
	*sp1 = '\0';
	sp2 = strchr(sp1 + 1, ' ');
	if (!sp2)
		return false;
	*sp2 = '\0';
	req->method = line;
	req->target = sp1 + 1;
	if (!strcmp(sp2 + 1, "HTTP/1.0"))
		req->http10 = true;
	else if (strncmp(sp2 + 1, "HTTP/1.", 7))
		return false;

	while (next) {
		char *colon, *value, *vend;

		line = next + 2;
		next = strstr(line, "\r\n");
		if (next)
			*next = '\0';
		if (!*line)
			break;
		colon = strchr(line, ':');
		if (!colon)
			return false;
		*colon = '\0';
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		vend = value + strlen(value);
		while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
			*--vend = '\0';
		if (!strcasecmp(line, "Range"))
			req->range = value;
		else if (!strcasecmp(line, "If-Range"))
			req->if_range = value;
		else if (!strcasecmp(line, "Connection"))
			connection = value;
		else if (!strcasecmp(line, "Transfer-Encoding"))
			req->has_body = true;
		else if (!strcasecmp(line, "Content-Length") && strcmp(value, "0"))
			req->has_body = true;
	}
	if (req->http10)
		req->keep_alive = connection && http_has_token(connection, "keep-alive");
	else
		req->keep_alive = !(connection && http_has_token(connection, "close"));
	return true;
}

/*
 * Read until a whole header block is buffered. Returns its length including the blank
 * line, 0 on a clean end of stream, -1 on error or timeout, -2 when it does not fit.
 */
static ssize_t read_request(struct conn *c)
{
	for (;;) {
		char *end;
		ssize_t r;

		if (c->len > 0) {
			c->buf[c->len] = '\0';
			end = memmem(c->buf, c->len, "\r\n\r\n", 4);
			if (end)
				return end - c->buf + 4;
		}
		if (c->len >= sizeof(c->buf) - 1)
			return -2;
		r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && c->len == 0)
			return 0;
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;

	for (;;) {
		struct request req;
		ssize_t end = read_request(c);
		double started = now_mono();

		if (end == -2 || (end > 0 && !parse_request(c->buf, (size_t)end - 2, &req))) {
			/* Not a request we can answer; still one log line, like any other. */
			struct request none = {0};
			struct outcome out = {.status = end == -2 ? 431 : 400};

			reply_simple(c, out.status, false, NULL);
			log_request(c, &none, &out, started);
			break;
		}
		if (end <= 0)
			break;
		req.consumed = (size_t)end;
		if (!serve(c, &req, started))
			break;
		/* Keep what a pipelining client already sent after this request. */
		memmove(c->buf, c->buf + req.consumed, c->len - req.consumed);
		c->len -= req.consumed;
	}
	close(c->fd);
	g_free(c);
	pthread_mutex_lock(&active_lock);
	active_connections--;
	pthread_mutex_unlock(&active_lock);
	return NULL;
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	}
	snprintf(out, len, "%s:%u", host, port);
}

static void *accept_thread(void *arg)
{
	int lfd = *(int *)arg;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct timeval tv = {.tv_sec = ORIGIN_IDLE_TIMEOUT_S};
		struct conn *c;
		pthread_t tid;
		int one = 1, fd, busy;

		fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				sleep_s(0.01);
			continue;
		}
		pthread_mutex_lock(&active_lock);
		busy = active_connections >= ORIGIN_MAX_CONNECTIONS;
		if (!busy)
			active_connections++;
		pthread_mutex_unlock(&active_lock);
		if (busy) {
			close(fd);
			continue;
		}
		/* Small responses (HEAD, 416, 503) must not wait for Nagle on a kept-alive
		 * connection; bodies are corked by MSG_MORE instead. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		c = g_new0(struct conn, 1);
		c->fd = fd;
		format_peer(&ss, c->peer, sizeof(c->peer));
		if (pthread_create(&tid, &attr, conn_thread, c)) {
			close(fd);
			g_free(c);
			pthread_mutex_lock(&active_lock);
			active_connections--;
			pthread_mutex_unlock(&active_lock);
		}
	}
	return NULL;
}

static int listen_on(const char *host, int port, int *bound_port, GError **error)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char portstr[16];
	int fd, one = 1, rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "--bind %s: %s (a numeric address is expected)", host,
			    gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		int e = errno;

		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
			    "listen on %s port %d: %s", host, port, g_strerror(e));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	*bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* --summarize: add up a log written by --log. */
static int summarize(const char *path)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	uint64_t requests = 0, bytes = 0;
	char *line, *save = NULL;

	if (!g_file_get_contents(path, &text, NULL, &error)) {
		fprintf(stderr, "aheadfs-origin: %s\n", error->message);
		return 1;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *b = strstr(line, " bytes=");

		if (!b)
			continue;
		requests++;
		bytes += g_ascii_strtoull(b + 7, NULL, 10);
	}
	printf("requests=%" PRIu64 " bytes=%" PRIu64 "\n", requests, bytes);
	return 0;
}

static gboolean parse_options(int *argc, char ***argv, GError **error)
{
	GOptionEntry entries[] = {
	    {"root", 0, 0, G_OPTION_ARG_FILENAME, &opt.root, "Serve files below DIR", "DIR"},
	    {"port", 0, 0, G_OPTION_ARG_INT, &opt.port, "TCP port; 0 picks a free one (default 0)",
	     "N"},
	    {"bind", 0, 0, G_OPTION_ARG_STRING, &opt.bind,
	     "Numeric address to listen on (default 127.0.0.1)", "ADDR"},
	    {"rtt-ms", 0, 0, G_OPTION_ARG_DOUBLE, &opt.rtt_ms,
	     "Delay before each response's first byte (default 0)", "MS"},
	    {"jitter-ms", 0, 0, G_OPTION_ARG_DOUBLE, &opt.jitter_ms,
	     "Add a uniform random delay in [-MS, +MS] to --rtt-ms", "MS"},
	    {"bandwidth-mbit", 0, 0, G_OPTION_ARG_DOUBLE, &opt.bandwidth_mbit,
	     "Cap all connections together at N Mbit/s (default 0 = unshaped)", "N"},
	    {"error-rate", 0, 0, G_OPTION_ARG_DOUBLE, &opt.error_rate,
	     "Fraction of requests answered 503 (default 0)", "F"},
	    {"error-first", 0, 0, G_OPTION_ARG_INT, &opt.error_first,
	     "Answer the first N requests 503 (default 0)", "N"},
	    {"no-ranges", 0, 0, G_OPTION_ARG_NONE, &opt.no_ranges,
	     "Ignore Range and answer 200, like a server without range support", NULL},
	    {"log", 0, 0, G_OPTION_ARG_FILENAME, &opt.log_path,
	     "Append one line per request to FILE", "FILE"},
	    {"max-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt.max_seconds,
	     "Exit after S seconds (default 3600)", "S"},
	    {"summarize", 0, 0, G_OPTION_ARG_FILENAME, &opt.summarize,
	     "Print requests=N bytes=N for a log written by --log, then exit", "LOG"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- benchmark HTTP origin");

	g_option_context_set_summary(ctx,
				     "Serves files over HTTP/1.1 with byte ranges, "
				     "an emulated round-trip time and a shared bandwidth cap.");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, argc, argv, error))
		return FALSE;
	if (opt.summarize)
		return TRUE;
	if (!opt.root) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--root is required");
		return FALSE;
	}
	if (opt.port < 0 || opt.port > 65535 || opt.rtt_ms < 0 || opt.jitter_ms < 0 ||
	    opt.bandwidth_mbit < 0 || opt.error_rate < 0 || opt.error_rate > 1 ||
	    opt.error_first < 0 ||
	    opt.max_seconds <= 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "option out of range (see --help)");
		return FALSE;
	}
	if (!opt.bind)
		opt.bind = g_strdup("127.0.0.1");
	return TRUE;
}

int main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	struct timespec deadline;
	pthread_t tid;
	sigset_t sigs;
	int lfd, port;

	if (!parse_options(&argc, &argv, &error)) {
		fprintf(stderr, "aheadfs-origin: %s\n", error->message);
		return 2;
	}
	if (opt.summarize)
		return summarize(opt.summarize);

	/* Strip trailing slashes so "root" + "/path" is one clean path. */
	while (strlen(opt.root) > 1 && opt.root[strlen(opt.root) - 1] == '/')
		opt.root[strlen(opt.root) - 1] = '\0';
	if (!g_file_test(opt.root, G_FILE_TEST_IS_DIR)) {
		fprintf(stderr, "aheadfs-origin: --root %s: not a directory\n", opt.root);
		return 2;
	}
	if (opt.log_path) {
		log_fd = open(opt.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (log_fd < 0) {
			fprintf(stderr, "aheadfs-origin: --log %s: %s\n", opt.log_path,
				g_strerror(errno));
			return 2;
		}
	}
	bucket_init(&link_bucket, opt.bandwidth_mbit);

	/* Only the main thread takes signals; workers never see EINTR from them. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	lfd = listen_on(opt.bind, opt.port, &port, &error);
	if (lfd < 0) {
		fprintf(stderr, "aheadfs-origin: %s\n", error->message);
		return 2;
	}
	if (pthread_create(&tid, NULL, accept_thread, &lfd)) {
		fprintf(stderr, "aheadfs-origin: cannot start the accept thread\n");
		return 2;
	}
	printf("port=%d\n", port);
	fflush(stdout);

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)opt.max_seconds;
	deadline.tv_nsec += (long)((opt.max_seconds - floor(opt.max_seconds)) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	for (;;) {
		struct timespec now, left;
		int sig;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = deadline.tv_sec - now.tv_sec;
		left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0)
			break;
		sig = sigtimedwait(&sigs, NULL, &left);
		if (sig > 0)
			break;
		if (sig < 0 && errno != EINTR && errno != EAGAIN)
			break;
	}
	/* Connection threads may be mid-response; the process exit ends them. The log stays
	 * open for them and needs no flush: every finished request is already written. */
	close(lfd);
	return 0;
}
