/*
 * http: the libcurl details shared by the probe and the transfer thread: how an easy
 * handle is configured from the mount options, and how response headers are captured.
 */
#ifndef AHEADFS_HTTP_H
#define AHEADFS_HTTP_H

#include <curl/curl.h>
#include <glib.h>

#include "aheadfs/origin.h"

/* The headers of the final response (after redirects) that aheadfs cares about. */
struct http_response {
	long status;
	char *content_range;
	char *etag;
	char *last_modified;
	char *accept_ranges;
};

void http_response_clear(struct http_response *resp);

/*
 * Apply the mount's connection options (timeouts, TLS, redirects, SigV4 signing) to
 * `easy` and point its header callback at `resp`. Does not set URL, range or request
 * headers.
 */
void http_configure(CURL *easy, const struct origin_config *cfg, struct http_response *resp,
		    char *errbuf);

/*
 * Request headers: the user's, the ones SigV4 signing needs (x-amz-content-sha256,
 * x-amz-security-token), and, when `if_range` is not NULL, an If-Range.
 */
struct curl_slist *http_request_headers(const struct origin_config *cfg, const char *if_range);

/* True when an ETag is a weak one (W/"..."), which If-Range must not use. */
gboolean http_etag_is_weak(const char *etag);

#endif
