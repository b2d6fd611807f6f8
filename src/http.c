/*
 * http: easy-handle configuration and response-header capture. The header callback sees
 * every response of a redirect chain; a status line starts a new response, so only the
 * final one's headers survive.
 */
#include "config.h"

#include "aheadfs/http.h"

#include <string.h>

#include "aheadfs/s3.h"

void http_response_clear(struct http_response *resp)
{
	g_clear_pointer(&resp->content_range, g_free);
	g_clear_pointer(&resp->etag, g_free);
	g_clear_pointer(&resp->last_modified, g_free);
	g_clear_pointer(&resp->accept_ranges, g_free);
	resp->status = 0;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nlen = strlen(name);

	if (len <= nlen || line[nlen] != ':' || g_ascii_strncasecmp(line, name, nlen) != 0)
		return NULL;
	return g_strstrip(g_strndup(line + nlen + 1, len - nlen - 1));
}

static size_t http_header_cb(char *line, size_t size, size_t n, void *data)
{
	struct http_response *resp = data;
	size_t len = size * n;
	char *v;

	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		const char *sp = memchr(line, ' ', len);

		http_response_clear(resp);
		resp->status = sp ? strtol(sp + 1, NULL, 10) : 0;
	} else if ((v = header_value(line, len, "Content-Range"))) {
		g_free(resp->content_range);
		resp->content_range = v;
	} else if ((v = header_value(line, len, "ETag"))) {
		g_free(resp->etag);
		resp->etag = v;
	} else if ((v = header_value(line, len, "Last-Modified"))) {
		g_free(resp->last_modified);
		resp->last_modified = v;
	} else if ((v = header_value(line, len, "Accept-Ranges"))) {
		g_free(resp->accept_ranges);
		resp->accept_ranges = v;
	}
	return len;
}

void http_configure(CURL *easy, const struct origin_config *cfg, struct http_response *resp,
		    char *errbuf)
{
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 8L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, (long)cfg->timeout_s);
	/* A transfer that moves nothing for `timeout` seconds is dead; a slow one is not. */
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, (long)cfg->timeout_s);
	curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 512L * 1024);
	if (cfg->cafile)
		curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->cafile);
	if (cfg->insecure) {
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (cfg->s3) {
		/*
		 * libcurl computes the signature; username and password are the key pair.
		 * Redirects keep neither to another host (CURLOPT_UNRESTRICTED_AUTH is off).
		 */
		curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, cfg->s3->sigv4);
		curl_easy_setopt(easy, CURLOPT_USERNAME, cfg->s3->creds.access_key_id);
		curl_easy_setopt(easy, CURLOPT_PASSWORD, cfg->s3->creds.secret_access_key);
	}
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
	errbuf[0] = '\0';
}

struct curl_slist *http_request_headers(const struct origin_config *cfg, const char *if_range)
{
	struct curl_slist *list = NULL;

	for (char **h = cfg->headers; h && *h; h++)
		list = curl_slist_append(list, *h);
	if (cfg->s3) {
		/*
		 * libcurl 7.88 does not send x-amz-content-sha256, which S3 and RGW require
		 * (403 without it); given here, libcurl signs it. A GET has no payload to hash.
		 */
		list = curl_slist_append(list, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
		if (cfg->s3->creds.session_token) {
			g_autofree char *line = g_strdup_printf("x-amz-security-token: %s",
								cfg->s3->creds.session_token);

			list = curl_slist_append(list, line);
			explicit_bzero(line, strlen(line));
		}
	}
	if (if_range && *if_range) {
		g_autofree char *line = g_strdup_printf("If-Range: %s", if_range);

		list = curl_slist_append(list, line);
	}
	return list;
}

gboolean http_etag_is_weak(const char *etag)
{
	return etag && g_str_has_prefix(etag, "W/");
}
