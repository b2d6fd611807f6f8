/*
 * s3: S3-compatible object stores (AWS S3, Ceph RGW, MinIO, ...).
 *
 * aheadfs reads objects with the same range GETs as from any web server; S3 adds only
 * where the object lives and how a request proves who sends it:
 *
 *   s3://BUCKET/KEY ──s3_url_resolve──▶ https://BUCKET.s3.REGION.amazonaws.com/KEY
 *                                       ENDPOINT/BUCKET/KEY        (path style)
 *                                       scheme://BUCKET.HOST/KEY   (virtual-host style)
 *
 * Every request of a mount that uses credentials is signed with AWS Signature V4 by
 * libcurl (see http.c). A presigned URL carries its signature in the query and is used
 * as a plain https URL, unsigned.
 *
 * Credentials come from a file (mode 0600, owned by the user or root) in the format of
 * AWS's shared credentials file, [default] section:
 *
 *   [default]
 *   aws_access_key_id = AKIA...
 *   aws_secret_access_key = ...
 *   aws_session_token = ...        (optional)
 *
 * or from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. No error
 * message of this module quotes a line of that file or a value of those variables.
 */
#ifndef AHEADFS_S3_H
#define AHEADFS_S3_H

#include <glib.h>
#include <stdbool.h>

#define S3_DEFAULT_REGION "us-east-1"

/* Owned strings; s3_credentials_clear overwrites them before freeing. */
struct s3_credentials {
	char *access_key_id;
	char *secret_access_key;
	char *session_token; /* NULL without temporary credentials */
};

/* What signing needs, for the whole mount. Owned by the options; read-only once built. */
struct s3_signing {
	char *region;
	char *sigv4; /* libcurl's CURLOPT_AWS_SIGV4: "aws:amz:REGION:s3" */
	struct s3_credentials creds;
};

/* Where s3:// URLs go. */
struct s3_endpoint {
	const char *region;   /* signing region, and AWS's endpoint when no endpoint */
	const char *endpoint; /* "http(s)://host[:port]", or NULL for AWS */
	bool path_style;      /* ENDPOINT/BUCKET/KEY rather than BUCKET.HOST/KEY */
};

/*
 * The HTTP(S) URL of s3://BUCKET/KEY. KEY is percent-decoded (a key with a space is
 * written a%20b, one with '%' as %25), then encoded as SigV4 expects: everything but
 * A-Z a-z 0-9 - . _ ~ and '/' as %XX. Path style
 * is used also where virtual-host style cannot work: an endpoint that is an IP address or
 * localhost, a bucket name that is not a DNS label (or has dots, over https).
 * Returns a new string, or NULL with an error naming what is wrong.
 */
char *s3_url_resolve(const char *s3_url, const struct s3_endpoint *ep, GError **error);

/* True for "s3://..." (case-insensitive scheme). */
bool s3_url_is_s3(const char *url);

/* True when the URL carries a query-string signature (X-Amz-Signature or Signature=). */
bool s3_url_is_presigned(const char *url);

/*
 * The URL without the query parameters that sign it (X-Amz-Algorithm, -Credential,
 * -Date, -Expires, -SignedHeaders, -Signature, -Security-Token; AWSAccessKeyId,
 * Signature, Expires): one object, however often it is presigned again. Other parameters
 * (versionId) are kept. A new string.
 */
char *s3_url_unsigned(const char *url);

/*
 * For messages: the URL with the values of X-Amz-Signature, -Credential, -Security-Token
 * (and SigV2's Signature, AWSAccessKeyId) replaced by "REDACTED"; date and expiry stay.
 */
char *s3_url_redact(const char *url);

/*
 * When a presigned URL expires, as seconds since the epoch (X-Amz-Date + X-Amz-Expires,
 * or the legacy Expires=), or 0 when the URL does not say.
 */
gint64 s3_url_expiry(const char *url);

/*
 * Read credentials from `path`: refused when group or others may read or write it, or
 * when it is owned by someone other than the caller or root. Takes the [default]
 * section (or keys before any section). On error `out` is left empty.
 */
gboolean s3_credentials_load_file(const char *path, struct s3_credentials *out, GError **error);

/*
 * Read AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, then overwrite
 * the secret values in the environment block and unset them, so that neither
 * /proc/PID/environ nor `ps e` shows them. FALSE with an error when the two keys are not
 * both set.
 */
gboolean s3_credentials_from_env(struct s3_credentials *out, GError **error);

void s3_credentials_clear(struct s3_credentials *creds);

/* Build the signing state (takes over `creds`, which is left empty). */
struct s3_signing *s3_signing_new(const char *region, struct s3_credentials *creds);
void s3_signing_free(struct s3_signing *s);

/*
 * A one-line explanation of an S3 error answer, from its XML body (<Code>, <Message>)
 * and the request URL, or NULL when there is nothing to add. "presigned URL expired" is
 * said when the body says the request expired, or the URL's expiry has passed.
 * Printable ASCII only, at most a few hundred bytes.
 */
char *s3_error_explain(long status, const char *body, const char *url);

#endif
