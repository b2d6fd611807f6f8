/*
 * origin_probe: learn size, range support and validator of a remote image at mount time.
 *
 * HEAD first (cheap, and it names the size even for servers that announce ranges). When
 * HEAD is refused (a presigned S3 GET URL answers 403) or does not announce byte ranges,
 * a one-byte range GET decides: 206 with a Content-Range proves ranges work and names the
 * size. A 200 to that GET means the server ignores Range: aheadfs cannot work with it,
 * and says so instead of downloading the whole image for every read.
 */
#include "aheadfs/origin.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "aheadfs/http.h"

G_DEFINE_QUARK(aheadfs-origin-error-quark, origin_error)

void origin_info_clear(struct origin_info *info)
{
	g_clear_pointer(&info->etag, g_free);
	g_clear_pointer(&info->last_modified, g_free);
	g_clear_pointer(&info->validator, g_free);
	info->size = 0;
	info->head_refused = false;
}

bool origin_parse_content_range(const char *value, uint64_t *first, uint64_t *last,
				uint64_t *total)
{
	const char *p = value;
	char *end;

	if (!p || g_ascii_strncasecmp(p, "bytes ", 6) != 0)
		return false;
	p += 6;
	if (!g_ascii_isdigit(*p))
		return false;
	*first = g_ascii_strtoull(p, &end, 10);
	if (*end != '-' || !g_ascii_isdigit(end[1]))
		return false;
	*last = g_ascii_strtoull(end + 1, &end, 10);
	if (*end != '/' || *last < *first)
		return false;
	p = end + 1;
	if (*p == '*' && p[1] == '\0') {
		*total = UINT64_MAX;
		return true;
	}
	if (!g_ascii_isdigit(*p))
		return false;
	*total = g_ascii_strtoull(p, &end, 10);
	return *end == '\0' && *last < *total;
}

/* The body of the one-byte probe: anything but a 206 is not read, whatever its size. */
static size_t probe_body_cb(char *data, size_t size, size_t n, void *opaque)
{
	CURL *easy = opaque;
	long status = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 206 || size * n > 1)
		return 0;
	return size * n;
}

struct probe {
	const struct origin_config *cfg;
	const char *url;
	CURL *easy;
	struct http_response resp;
	char errbuf[CURL_ERROR_SIZE];
	CURLcode result;
};

static void probe_run(struct probe *p, bool head)
{
	struct curl_slist *headers = http_request_headers(p->cfg, NULL);

	curl_easy_reset(p->easy);
	http_configure(p->easy, p->cfg, &p->resp, p->errbuf);
	curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
	curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT, (long)p->cfg->timeout_s * 2);
	if (head) {
		curl_easy_setopt(p->easy, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(p->easy, CURLOPT_RANGE, "0-0");
		curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, probe_body_cb);
		curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p->easy);
	}
	http_response_clear(&p->resp);
	p->result = curl_easy_perform(p->easy);
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &p->resp.status);
	curl_slist_free_all(headers);
}

static void set_http_error(struct probe *p, GError **error)
{
	const char *text = p->resp.status == 404   ? " Not Found"
			   : p->resp.status == 403 ? " Forbidden"
			   : p->resp.status == 401 ? " Unauthorized"
			   : p->resp.status == 410 ? " Gone"
						   : "";

	g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_HTTP, "%s: HTTP %ld%s", p->url,
		    p->resp.status, text);
}

static bool probe_transport_failed(struct probe *p, GError **error)
{
	/* CURLE_WRITE_ERROR is our own abort of an unwanted body: the status tells more. */
	if (p->result == CURLE_OK || p->result == CURLE_WRITE_ERROR)
		return false;
	g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_UNREACHABLE, "%s: %s", p->url,
		    p->errbuf[0] ? p->errbuf : curl_easy_strerror(p->result));
	return true;
}

static void probe_take_validator(struct probe *p, struct origin_info *info)
{
	if (p->resp.etag && !http_etag_is_weak(p->resp.etag))
		info->etag = g_strdup(p->resp.etag);
	info->last_modified = g_strdup(p->resp.last_modified);
	info->validator = g_strdup(info->etag ? info->etag
					      : info->last_modified ? info->last_modified : "");
}

static gboolean probe_by_range(struct probe *p, struct origin_info *info, GError **error)
{
	uint64_t first, last, total;

	probe_run(p, false);
	if (probe_transport_failed(p, error))
		return FALSE;
	if (p->resp.status == 200) {
		g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_NO_RANGES,
			    "%s: the server does not support range requests (it answered a "
			    "Range request with the whole file)",
			    p->url);
		return FALSE;
	}
	if (p->resp.status == 416) {
		/* Only an empty file cannot satisfy bytes=0-0. */
		if (!p->resp.content_range || strcmp(p->resp.content_range, "bytes */0") != 0) {
			set_http_error(p, error);
			return FALSE;
		}
		info->size = 0;
	} else if (p->resp.status == 206) {
		if (!origin_parse_content_range(p->resp.content_range, &first, &last, &total) ||
		    first != 0 || total == UINT64_MAX) {
			g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_PROTOCOL,
				    "%s: answer to a range request has no usable Content-Range (%s)",
				    p->url, p->resp.content_range ? p->resp.content_range : "none");
			return FALSE;
		}
		info->size = total;
	} else {
		set_http_error(p, error);
		return FALSE;
	}
	probe_take_validator(p, info);
	return TRUE;
}

static gboolean probe_by_head(struct probe *p, struct origin_info *info, bool *fall_back,
			      GError **error)
{
	curl_off_t length = -1;

	*fall_back = false;
	probe_run(p, true);
	if (probe_transport_failed(p, error))
		return FALSE;
	if (p->resp.status == 404 || p->resp.status == 410) {
		set_http_error(p, error);
		return FALSE;
	}
	curl_easy_getinfo(p->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
	if (p->resp.status != 200 || length < 0 || !p->resp.accept_ranges ||
	    g_ascii_strcasecmp(p->resp.accept_ranges, "bytes") != 0) {
		*fall_back = true;
		info->head_refused = p->resp.status != 200;
		return FALSE;
	}
	info->size = (uint64_t)length;
	probe_take_validator(p, info);
	return TRUE;
}

gboolean origin_probe(const struct origin_config *cfg, const char *url, struct origin_info *info,
		      GError **error)
{
	struct probe p = {.cfg = cfg, .url = url};
	bool fall_back = false;
	gboolean ok;

	memset(info, 0, sizeof(*info));
	p.easy = curl_easy_init();
	if (!p.easy) {
		g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_UNREACHABLE, "curl_easy_init failed");
		return FALSE;
	}
	ok = probe_by_head(&p, info, &fall_back, error);
	if (!ok && fall_back)
		ok = probe_by_range(&p, info, error);
	http_response_clear(&p.resp);
	curl_easy_cleanup(p.easy);
	if (!ok)
		origin_info_clear(info);
	return ok;
}
