/*
 * Unit tests for s3: s3:// URL translation, presigned URL handling, the credentials file
 * (format, mode check, missing keys, messages that never quote a secret), credentials
 * from the environment, and the explanations of S3 error answers.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "aheadfs/s3.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static char *resolve(const char *url, const char *region, const char *endpoint, bool path,
		     char **err)
{
	struct s3_endpoint ep = {.region = region, .endpoint = endpoint, .path_style = path};
	g_autoptr(GError) error = NULL;
	char *out = s3_url_resolve(url, &ep, &error);

	*err = error ? g_strdup(error->message) : NULL;
	return out;
}

struct resolve_case {
	const char *url, *region, *endpoint;
	bool path_style;
	const char *want; /* the URL, or a part of the error message */
	bool fails;
};

static const struct resolve_case resolve_cases[] = {
    /* AWS, virtual-host style, the region's endpoint. */
    {"s3://images/vm/disk.raw", NULL, NULL, false,
     "https://images.s3.us-east-1.amazonaws.com/vm/disk.raw", false},
    {"s3://images/disk.raw", "eu-west-3", NULL, false,
     "https://images.s3.eu-west-3.amazonaws.com/disk.raw", false},
    {"s3://images/disk.raw", "eu-west-3", NULL, true,
     "https://s3.eu-west-3.amazonaws.com/images/disk.raw", false},
    /* A bucket with dots cannot be a TLS host name: path style. */
    {"s3://my.images/disk.raw", NULL, NULL, false,
     "https://s3.us-east-1.amazonaws.com/my.images/disk.raw", false},
    {"s3://my.images/disk.raw", NULL, "http://store.lan:7480", false,
     "http://my.images.store.lan:7480/disk.raw", false},
    /* Not a DNS label (upper case, underscore): path style. */
    {"s3://Old_Bucket/disk.raw", NULL, "https://store.lan", false,
     "https://store.lan/Old_Bucket/disk.raw", false},
    /* IP address and localhost endpoints: always path style. */
    {"s3://images/disk.raw", NULL, "http://127.0.0.1:7480", false,
     "http://127.0.0.1:7480/images/disk.raw", false},
    {"s3://images/disk.raw", NULL, "http://[::1]:7480/", false, "http://[::1]:7480/images/disk.raw",
     false},
    {"s3://images/disk.raw", NULL, "http://localhost:9000", false,
     "http://localhost:9000/images/disk.raw", false},
    {"s3://images/disk.raw", NULL, "https://store.lan:8443/", false,
     "https://images.store.lan:8443/disk.raw", false},
    {"s3://images/disk.raw", NULL, "https://store.lan:8443", true,
     "https://store.lan:8443/images/disk.raw", false},
    /* A path prefix (a store behind a proxy). */
    {"s3://images/disk.raw", NULL, "https://proxy.lan/s3/", true,
     "https://proxy.lan/s3/images/disk.raw", false},
    /* Keys: percent-decoded, then encoded the SigV4 way ('/' and unreserved stay). */
    {"s3://images/a%20b+c~d_e.raw", NULL, NULL, true,
     "https://s3.us-east-1.amazonaws.com/images/a%20b%2Bc~d_e.raw", false},
    {"s3://images/dir/%C3%A9t%C3%A9=1&x.raw", NULL, NULL, true,
     "https://s3.us-east-1.amazonaws.com/images/dir/%C3%A9t%C3%A9%3D1%26x.raw", false},
    {"s3://images/100%25.raw", NULL, NULL, true,
     "https://s3.us-east-1.amazonaws.com/images/100%25.raw", false},
    {"S3://images/x", NULL, NULL, false, "https://images.s3.us-east-1.amazonaws.com/x", false},
    /* Errors. */
    {"s3://images", NULL, NULL, false, "names no object", true},
    {"s3://images/", NULL, NULL, false, "names no object", true},
    {"s3:///disk.raw", NULL, NULL, false, "bad bucket name", true},
    {"s3://ima*ges/disk.raw", NULL, NULL, false, "bad bucket name", true},
    {"s3://images/100%.raw", NULL, NULL, false, "badly percent-encoded key", true},
    {"s3://images/a%0Ab", NULL, NULL, false, "control character", true},
    {"s3://images/disk.raw", "us east", NULL, false, "region: \"us east\" is not", true},
    {"s3://images/disk.raw", NULL, "ftp://store.lan", false, "endpoint: \"ftp://", true},
    {"s3://images/disk.raw", NULL, "https://user:pw@store.lan", false, "without user", true},
    {"s3://images/disk.raw", NULL, "https://store.lan/?x=1", false, "without user", true},
    {"s3://images/disk.raw", NULL, "https://", false, "endpoint", true},
    {"https://images/disk.raw", NULL, NULL, false, "is not an s3:// URL", true},
};

static void test_resolve(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(resolve_cases); i++) {
		const struct resolve_case *c = &resolve_cases[i];
		g_autofree char *err = NULL;
		g_autofree char *got = resolve(c->url, c->region, c->endpoint, c->path_style, &err);

		g_test_message("%s (endpoint %s)", c->url, c->endpoint ? c->endpoint : "AWS");
		if (c->fails) {
			g_assert_null(got);
			g_assert_nonnull(err);
			g_assert_nonnull(strstr(err, c->want));
		} else {
			g_assert_null(err);
			g_assert_cmpstr(got, ==, c->want);
		}
	}
	g_assert_true(s3_url_is_s3("s3://b/k"));
	g_assert_true(s3_url_is_s3("S3://b/k"));
	g_assert_false(s3_url_is_s3("https://b/k"));
	g_assert_false(s3_url_is_s3(NULL));
}

#define PRESIGNED                                                                                  \
	"https://h/b/k.raw?versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256"                           \
	"&X-Amz-Credential=AKID%2F20240102%2Fus-east-1%2Fs3%2Faws4_request"                        \
	"&X-Amz-Date=20240102T030405Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host"                  \
	"&X-Amz-Security-Token=TOKEN&X-Amz-Signature=abcdef#frag"

static void test_presigned(void)
{
	g_autofree char *plain = s3_url_unsigned(PRESIGNED);
	g_autofree char *shown = s3_url_redact(PRESIGNED);
	g_autofree char *v2 =
	    s3_url_unsigned("http://h/b/k?AWSAccessKeyId=A&Expires=1700000000&Signature=x");
	g_autofree char *none = s3_url_unsigned("http://h/b/k");
	g_autofree char *only = s3_url_unsigned("http://h/b/k?X-Amz-Signature=1");

	g_assert_true(s3_url_is_presigned(PRESIGNED));
	g_assert_true(s3_url_is_presigned("http://h/b/k?Expires=1&Signature=x"));
	g_assert_false(s3_url_is_presigned("http://h/b/k?versionId=1"));
	g_assert_false(s3_url_is_presigned("http://h/b/X-Amz-Signature=1"));
	g_assert_false(s3_url_is_presigned("http://h/b/k#X-Amz-Signature=1"));

	g_assert_cmpstr(plain, ==, "https://h/b/k.raw?versionId=3#frag");
	g_assert_cmpstr(v2, ==, "http://h/b/k");
	g_assert_cmpstr(none, ==, "http://h/b/k");
	g_assert_cmpstr(only, ==, "http://h/b/k");
	g_assert_cmpstr(shown, ==,
			"https://h/b/k.raw?versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256"
			"&X-Amz-Credential=REDACTED&X-Amz-Date=20240102T030405Z&X-Amz-Expires=600"
			"&X-Amz-SignedHeaders=host&X-Amz-Security-Token=REDACTED"
			"&X-Amz-Signature=REDACTED#frag");

	/* 2024-01-02T03:04:05Z + 600 s. */
	g_assert_cmpint(s3_url_expiry(PRESIGNED), ==, 1704164645 + 600);
	g_assert_cmpint(
	    s3_url_expiry("http://h/b/k?AWSAccessKeyId=A&Expires=1700000000&Signature=x"), ==,
	    1700000000);
	g_assert_cmpint(s3_url_expiry("http://h/b/k?Expires=1700000000"), ==, 0);
	g_assert_cmpint(s3_url_expiry("http://h/b/k?X-Amz-Date=bad&X-Amz-Expires=1"), ==, 0);
	g_assert_cmpint(s3_url_expiry("http://h/b/k"), ==, 0);
}

/* Write `text` to a new file of mode `mode`; returns its path (free it). */
static char *write_file(const char *text, mode_t mode)
{
	g_autoptr(GError) error = NULL;
	char *path = NULL;
	int fd = g_file_open_tmp("aheadfs-creds-XXXXXX", &path, &error);

	g_assert_no_error(error);
	close(fd);
	g_assert_true(g_file_set_contents(path, text, -1, &error));
	g_assert_cmpint(g_chmod(path, mode), ==, 0);
	return path;
}

/* Load a credentials file; returns the error message (NULL on success). */
static char *load(const char *text, mode_t mode, struct s3_credentials *c)
{
	g_autofree char *path = write_file(text, mode);
	g_autoptr(GError) error = NULL;
	char *msg = NULL;

	if (!s3_credentials_load_file(path, c, &error)) {
		msg = g_strdup(error->message);
		g_assert_null(c->access_key_id);
		g_assert_null(c->secret_access_key);
		/* Whatever went wrong, the message never quotes the secret. */
		g_assert_null(strstr(msg, SECRET));
	}
	g_unlink(path);
	return msg;
}

static void test_credentials_file(void)
{
	struct s3_credentials c = {0};
	g_autofree char *err = NULL;

	err = load("# comment\n; another\n[other]\naws_access_key_id = NOTME\n"
		   "aws_secret_access_key = NOTME\n\n[default]\r\naws_access_key_id=AKIDEXAMPLE\r\n"
		   "  aws_secret_access_key =   " SECRET "  \nregion = eu-west-1\n"
		   "aws_session_token = FwoGZXIvYXdzEJr//TOKEN=\n",
		   0600, &c);
	g_assert_null(err);
	g_assert_cmpstr(c.access_key_id, ==, "AKIDEXAMPLE");
	g_assert_cmpstr(c.secret_access_key, ==, SECRET);
	g_assert_cmpstr(c.session_token, ==, "FwoGZXIvYXdzEJr//TOKEN=");
	s3_credentials_clear(&c);
	g_assert_null(c.secret_access_key);

	/* Keys before any section count as [default]. */
	err = load("aws_access_key_id = A\naws_secret_access_key = " SECRET "\n", 0400, &c);
	g_assert_null(err);
	g_assert_null(c.session_token);
	s3_credentials_clear(&c);
}

struct bad_file {
	const char *text;
	mode_t mode;
	const char *want;
};

static const struct bad_file bad_files[] = {
    {"[default]\naws_access_key_id = A\naws_secret_access_key = " SECRET "\n", 0644,
     "may be read or written by others (mode 0644): chmod 600 it"},
    {"[default]\naws_access_key_id = A\naws_secret_access_key = " SECRET "\n", 0620, "(mode 0620)"},
    {"[default]\naws_access_key_id = A\n", 0600, "no aws_secret_access_key in [default]"},
    {"[default]\naws_secret_access_key = " SECRET "\n", 0600, "no aws_access_key_id in [default]"},
    {"[prod]\naws_access_key_id = A\naws_secret_access_key = " SECRET "\n", 0600,
     "has no [default] section"},
    {"", 0600, "no aws_access_key_id"},
    {"[default]\naws_access_key_id = A\n" SECRET "\n", 0600, ":3: expected KEY = VALUE"},
    {"[default\naws_access_key_id = A\n", 0600, ":1: a section line must end with ']'"},
    {"[default]\naws_access_key_id = A\naws_secret_access_key = wJalr " SECRET "\n", 0600,
     ":3: the value of aws_secret_access_key is empty or has white space"},
    {"[default]\naws_access_key_id =\n", 0600, ":2: the value of aws_access_key_id is empty"},
};

static void test_credentials_file_errors(void)
{
	g_autoptr(GError) error = NULL;
	struct s3_credentials c = {0};

	for (gsize i = 0; i < G_N_ELEMENTS(bad_files); i++) {
		g_autofree char *err = load(bad_files[i].text, bad_files[i].mode, &c);

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, err ? err : "(no error)");
		g_assert_nonnull(err);
		g_assert_nonnull(strstr(err, bad_files[i].want));
	}
	g_assert_false(s3_credentials_load_file("/nonexistent/creds", &c, &error));
	g_assert_nonnull(strstr(error->message, "cannot open /nonexistent/creds"));
	g_clear_error(&error);
	g_assert_false(s3_credentials_load_file("/tmp", &c, &error));
	g_assert_nonnull(strstr(error->message, "not a regular file"));
}

static void test_credentials_env(void)
{
	g_autoptr(GError) error = NULL;
	struct s3_credentials c = {0};

	g_setenv("AWS_ACCESS_KEY_ID", "AKIDENV", TRUE);
	g_setenv("AWS_SECRET_ACCESS_KEY", SECRET, TRUE);
	g_setenv("AWS_SESSION_TOKEN", "TOKEN", TRUE);
	g_assert_true(s3_credentials_from_env(&c, &error));
	g_assert_cmpstr(c.access_key_id, ==, "AKIDENV");
	g_assert_cmpstr(c.secret_access_key, ==, SECRET);
	g_assert_cmpstr(c.session_token, ==, "TOKEN");
	/* Taken out of the environment. */
	g_assert_null(g_getenv("AWS_SECRET_ACCESS_KEY"));
	g_assert_null(g_getenv("AWS_SESSION_TOKEN"));
	s3_credentials_clear(&c);

	g_assert_false(s3_credentials_from_env(&c, &error));
	g_assert_nonnull(strstr(error->message, "no credentials: give -o credentials_file=FILE"));
	g_clear_error(&error);

	g_setenv("AWS_ACCESS_KEY_ID", "AKIDENV", TRUE);
	g_assert_false(s3_credentials_from_env(&c, &error));
	g_assert_cmpstr(error->message, ==, "AWS_SECRET_ACCESS_KEY is not set");
	g_assert_null(c.access_key_id);
	g_clear_error(&error);

	g_setenv("AWS_ACCESS_KEY_ID", "AKID ENV", TRUE);
	g_setenv("AWS_SECRET_ACCESS_KEY", SECRET, TRUE);
	g_assert_false(s3_credentials_from_env(&c, &error));
	g_assert_null(strstr(error->message, SECRET));
	g_assert_null(strstr(error->message, "AKID ENV"));
}

static void test_signing(void)
{
	struct s3_credentials c = {g_strdup("AK"), g_strdup(SECRET), NULL};
	struct s3_signing *s = s3_signing_new("eu-central-1", &c);

	g_assert_null(c.secret_access_key); /* taken over */
	g_assert_cmpstr(s->sigv4, ==, "aws:amz:eu-central-1:s3");
	g_assert_cmpstr(s->creds.secret_access_key, ==, SECRET);
	s3_signing_free(s);
	s = s3_signing_new(NULL, &c);
	g_assert_cmpstr(s->region, ==, S3_DEFAULT_REGION);
	s3_signing_free(s);
	s3_signing_free(NULL);
}

static void test_error_explain(void)
{
	const char *sig = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>"
			  "<Message>The request signature we calculated does not match"
			  "</Message><StringToSign>AWS4-HMAC-SHA256\n...</StringToSign></Error>";
	const char *expired = "<Error><Code>AccessDenied</Code><Message>Request has expired"
			      "</Message></Error>";
	g_autofree char *a = s3_error_explain(403, sig, "http://h/b/k");
	g_autofree char *b = s3_error_explain(403, expired, PRESIGNED);
	g_autofree char *c =
	    s3_error_explain(403, "<Error><Code>AccessDenied</Code></Error>", PRESIGNED);
	g_autofree char *d = s3_error_explain(
	    400,
	    "<Error><Code>ExpiredToken</Code><Message>The provided token has expired."
	    "</Message></Error>",
	    "http://h/b/k");
	g_autofree char *e =
	    s3_error_explain(404,
			     "<Error><Code>NoSuchKey</Code>\n<Message>"
			     "The specified\tkey does not exist.</Message></Error>",
			     "http://h/b/k");
	g_autofree char *f = s3_error_explain(403, "", "http://h/b/k");
	g_autofree char *g = s3_error_explain(403, NULL, "http://h/b/k");
	g_autofree char *h =
	    s3_error_explain(403, "<Error><Code>AccessDenied</Code></Error>",
			     "http://h/b/k?X-Amz-Signature=1&X-Amz-Date=29991231T000000Z"
			     "&X-Amz-Expires=60");
	g_autofree char *i =
	    s3_error_explain(403, "<Error><Code>InvalidAccessKeyId</Code></Error>", "http://h/b/k");

	g_assert_cmpstr(a, ==,
			"SignatureDoesNotMatch: the secret access key is wrong, or the "
			"region or clock is off");
	g_assert_cmpstr(b, ==,
			"presigned URL expired at 2024-01-02T03:14:05Z (AccessDenied: "
			"Request has expired)");
	/* radosgw says only AccessDenied: the URL's own expiry tells. */
	g_assert_cmpstr(c, ==, "presigned URL expired at 2024-01-02T03:14:05Z (AccessDenied)");
	g_assert_cmpstr(d, ==,
			"the session token has expired (ExpiredToken: The provided "
			"token has expired.)");
	g_assert_cmpstr(e, ==, "NoSuchKey: The specified key does not exist.");
	g_assert_null(f);
	g_assert_null(g);
	g_assert_cmpstr(h, ==, "AccessDenied");
	g_assert_true(g_str_has_prefix(i, "InvalidAccessKeyId: "));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_unsetenv("AWS_ACCESS_KEY_ID");
	g_unsetenv("AWS_SECRET_ACCESS_KEY");
	g_unsetenv("AWS_SESSION_TOKEN");
	g_test_add_func("/s3/resolve", test_resolve);
	g_test_add_func("/s3/presigned", test_presigned);
	g_test_add_func("/s3/credentials-file", test_credentials_file);
	g_test_add_func("/s3/credentials-file-errors", test_credentials_file_errors);
	g_test_add_func("/s3/credentials-env", test_credentials_env);
	g_test_add_func("/s3/signing", test_signing);
	g_test_add_func("/s3/error-explain", test_error_explain);
	return g_test_run();
}
