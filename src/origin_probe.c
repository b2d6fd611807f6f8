/*
 * origin_probe: learn size, range support and validator of a remote image at mount time.
 *
 * HEAD first (cheap, and it names the size even for servers that announce ranges). When
 * HEAD is refused (a presigned S3 GET URL answers 403) or does not announce byte ranges,
 * a one-byte range GET decides: 206 with a Content-Range proves ranges work and names the
 * size. A 200 to that GET means the server ignores Range: aheadfs cannot work with it,
 * and says so instead of downloading the whole image for every read.
 *
 * A presigned URL (its signature in the query) skips HEAD: the signature covers the
 * method, so HEAD would only earn a 403. The body of an error answer (a few KiB at most)
 * is kept for the message: S3 says there why it refused (SignatureDoesNotMatch, an
 * expired presigned URL). Messages show URLs with their signing parameters redacted.
 */
#include "aheadfs/origin.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "aheadfs/http.h"
#include "aheadfs/log.h"
#include "aheadfs/s3.h"

#define ERROR_BODY_MAX 4096

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

struct probe {
	const struct origin_config *cfg;
	const char *url;
	char *shown_url; /* url with signing parameters redacted, for messages */
	CURL *easy;
	struct http_response resp;
	GString *error_body; /* of an error answer, up to ERROR_BODY_MAX bytes */
	char errbuf[CURL_ERROR_SIZE];
	CURLcode result;
	unsigned attempts; /* of the last probe_ask() */
};

/*
 * The body of the one-byte probe: one byte of a 206, or the start of an error answer;
 * anything else is not read, whatever its size.
 */
static size_t probe_body_cb(char *data, size_t size, size_t n, void *opaque)
{
	struct probe *p = opaque;
	long status = 0;

	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 400) {
		if (p->error_body->len + size * n > ERROR_BODY_MAX)
			return 0;
		g_string_append_len(p->error_body, data, (gssize)(size * n));
		return size * n;
	}
	if (status != 206 || size * n > 1)
		return 0;
	return size * n;
}

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
		curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
	}
	http_response_clear(&p->resp);
	g_string_truncate(p->error_body, 0);
	p->result = curl_easy_perform(p->easy);
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &p->resp.status);
	curl_slist_free_all(headers);
}

/*
 * probe_run, asked again while the server says "later" (a 503 SlowDown from S3, a 502
 * from a proxy whose backend restarts) and retries are left, so that a mount does not
 * fail on what the read path would ride out. Transport failures are not retried here: at
 * mount time a refused connection or a timeout is far more often a wrong URL or a down
 * server, which the user should hear of now.
 */
static void probe_ask(struct probe *p, bool head)
{
	for (p->attempts = 1;; p->attempts++) {
		gint64 wait_us;

		probe_run(p, head);
		/* CURLE_WRITE_ERROR: an error body too long to keep; the status stands. */
		if ((p->result != CURLE_OK && p->result != CURLE_WRITE_ERROR) ||
		    !origin_status_transient(p->resp.status) || p->attempts > p->cfg->retries)
			return;
		wait_us = origin_backoff_us(p->attempts);
		log_warning("%s: HTTP %ld to %s; asking again in %" G_GINT64_FORMAT
			    " ms (retry %u of %u)",
			    p->shown_url, p->resp.status, head ? "HEAD" : "a one-byte GET",
			    wait_us / 1000, p->attempts, p->cfg->retries);
		g_usleep((gulong)wait_us);
	}
}

static void set_http_error(struct probe *p, GError **error)
{
	const char *text = p->resp.status == 404   ? " Not Found"
			   : p->resp.status == 403 ? " Forbidden"
			   : p->resp.status == 401 ? " Unauthorized"
			   : p->resp.status == 410 ? " Gone"
						   : "";
	g_autofree char *why = s3_error_explain(p->resp.status, p->error_body->str, p->url);

	g_autofree char *tries = p->attempts > 1 ? g_strdup_printf(" (%u attempts)", p->attempts)
						 : g_strdup("");

	g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_HTTP, "%s: HTTP %ld%s%s%s%s", p->shown_url,
		    p->resp.status, text, why ? ": " : "", why ? why : "", tries);
}

static bool probe_transport_failed(struct probe *p, GError **error)
{
	/* CURLE_WRITE_ERROR is our own abort of an unwanted body: the status tells more. */
	if (p->result == CURLE_OK || p->result == CURLE_WRITE_ERROR)
		return false;
	g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_UNREACHABLE, "%s: %s", p->shown_url,
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

	probe_ask(p, false);
	if (probe_transport_failed(p, error))
		return FALSE;
	if (p->resp.status == 200) {
		g_set_error(error, ORIGIN_ERROR, ORIGIN_ERROR_NO_RANGES,
			    "%s: the server does not support range requests (it answered a "
			    "Range request with the whole file)",
			    p->shown_url);
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
				    p->shown_url, p->resp.content_range ? p->resp.content_range : "none");
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
	probe_ask(p, true);
	if (probe_transport_failed(p, error))
		return FALSE;
	/* Gone, or still "later" after the retries: a GET would fare no better. */
	if (p->resp.status == 404 || p->resp.status == 410 ||
	    origin_status_transient(p->resp.status)) {
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
	p.shown_url = s3_url_redact(url);
	p.error_body = g_string_new(NULL);
	if (s3_url_is_presigned(url)) {
		fall_back = true;
		info->head_refused = true;
		ok = FALSE;
	} else {
		ok = probe_by_head(&p, info, &fall_back, error);
	}
	if (!ok && fall_back)
		ok = probe_by_range(&p, info, error);
	http_response_clear(&p.resp);
	g_string_free(p.error_body, TRUE);
	g_free(p.shown_url);
	curl_easy_cleanup(p.easy);
	if (!ok)
		origin_info_clear(info);
	return ok;
}
