/* Unit tests: option parsing, defaults, sizes, and clear errors for bad values. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "aheadfs/manifest.h"
#include "aheadfs/options.h"

/* Parse a NULL-terminated argv; returns the error message or NULL on success. */
static char *parse(struct options *opts, const char *const *argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	g_autoptr(GError) error = NULL;
	char *msg = NULL;

	fuse_opt_add_arg(&args, "aheadfs");
	for (; *argv; argv++)
		fuse_opt_add_arg(&args, *argv);
	if (!options_parse(&args, opts, &error))
		msg = g_strdup(error->message);
	fuse_opt_free_args(&args);
	return msg;
}

static void test_defaults(void)
{
	const char *argv[] = {"http://h/images/vm.raw", "/mnt", NULL};
	struct options o;
	g_autofree char *err = parse(&o, argv);
	const struct manifest_entry *e;

	g_assert_null(err);
	g_assert_cmpuint(o.block_size, ==, 65536);
	g_assert_cmpuint(o.connections, ==, OPTIONS_DEFAULT_CONNECTIONS);
	g_assert_cmpuint(o.retries, ==, OPTIONS_DEFAULT_RETRIES);
	g_assert_cmpstr(o.mountpoint, ==, "/mnt");
	g_assert_cmpuint(o.images->len, ==, 1);
	e = &g_array_index(o.images, struct manifest_entry, 0);
	g_assert_cmpstr(e->name, ==, "vm.raw");
	g_assert_cmpstr(e->url, ==, "http://h/images/vm.raw");
	g_assert_nonnull(o.cache_dir);
	g_assert_true(o.prefetch);
	g_assert_false(o.direct_io);
	g_assert_cmpstr(o.model, ==, "hybrid");
	g_assert_true(g_str_has_prefix(o.state_dir, o.cache_dir));
	g_assert_cmpuint(o.bg_bandwidth, ==, 12500000);
	g_assert_cmpfloat(o.idle_cpu, ==, 0.25);
	g_assert_cmpfloat(o.model_cpu, ==, 0.10);
	g_assert_cmpuint(o.lstm_hidden, ==, 32);
	options_clear(&o);
}

static void test_learning_options(void)
{
	const char *argv[] = {"-o",
			      "prefetch=off,model=markov,model_memory=1M,critical_p=0.7,"
			      "predictive_p=0.3,critical_window=500,bg_bandwidth=0,"
			      "state_dir=/srv/state,idle_pressure=1,idle_cpu=0.5,model_cpu=0.2,"
			      "lstm_hidden=64,lstm_vocab=128,lstm_train_every=4",
			      "http://h/vm.raw", "/mnt", NULL};
	struct options o;
	g_autofree char *err = parse(&o, argv);

	g_assert_null(err);
	g_assert_false(o.prefetch);
	g_assert_cmpstr(o.model, ==, "markov");
	g_assert_cmpuint(o.model_memory, ==, 1 << 20);
	g_assert_cmpfloat(o.critical_p, ==, 0.7);
	g_assert_cmpfloat(o.predictive_p, ==, 0.3);
	g_assert_cmpuint(o.critical_window_ms, ==, 500);
	g_assert_cmpuint(o.bg_bandwidth, ==, 0);
	g_assert_cmpfloat(o.idle_pressure, ==, 1.0);
	g_assert_cmpfloat(o.idle_cpu, ==, 0.5);
	g_assert_cmpfloat(o.model_cpu, ==, 0.2);
	g_assert_cmpuint(o.lstm_hidden, ==, 64);
	g_assert_cmpuint(o.lstm_vocab, ==, 128);
	g_assert_cmpuint(o.lstm_train_every, ==, 4);
	g_assert_cmpstr(o.state_dir, ==, "/srv/state");
	options_clear(&o);
}

static void test_values(void)
{
	const char *argv[] = {"-o",
			      "block_size=1M,connections=16,timeout=5,retries=0,name=disk,"
			      "cache_dir=/var/tmp/c,insecure,direct_io",
			      "-o", "header=Authorization: Bearer x,header=X-A:b",
			      "https://h/x?sig=1", "/mnt", NULL};
	struct options o;
	g_autofree char *err = parse(&o, argv);

	g_assert_null(err);
	g_assert_cmpuint(o.block_size, ==, 1 << 20);
	g_assert_cmpuint(o.connections, ==, 16);
	g_assert_cmpuint(o.timeout_s, ==, 5);
	g_assert_cmpuint(o.retries, ==, 0);
	g_assert_true(o.insecure);
	g_assert_true(o.direct_io);
	g_assert_cmpstr(o.cache_dir, ==, "/var/tmp/c");
	g_assert_cmpstr(g_array_index(o.images, struct manifest_entry, 0).name, ==, "disk");
	g_assert_cmpuint(g_strv_length(o.headers), ==, 2);
	g_assert_cmpstr(o.headers[0], ==, "Authorization: Bearer x");
	options_clear(&o);
}

static void test_sizes(void)
{
	uint64_t v;

	g_assert_true(options_parse_size("65536", &v, NULL) && v == 65536);
	g_assert_true(options_parse_size("64K", &v, NULL) && v == 65536);
	g_assert_true(options_parse_size("4m", &v, NULL) && v == 4 << 20);
	g_assert_true(options_parse_size("2GiB", &v, NULL) && v == UINT64_C(2) << 30);
	g_assert_true(options_parse_size("1G", &v, NULL) && v == UINT64_C(1) << 30);
	g_assert_false(options_parse_size("", &v, NULL));
	g_assert_false(options_parse_size("K", &v, NULL));
	g_assert_false(options_parse_size("-1", &v, NULL));
	g_assert_false(options_parse_size("12Q", &v, NULL));
	g_assert_false(options_parse_size("99999999999999999999", &v, NULL));
	g_assert_false(options_parse_size("16777216T", &v, NULL));
}

struct bad_case {
	const char *argv[6];
	const char *message;
};

static const struct bad_case bad_cases[] = {
	{{"-o", "block_size=3000", "http://h/a", "/m"}, "block_size: 3000 is not a power of two"},
	{{"-o", "block_size=2K", "http://h/a", "/m"}, "not a power of two from 4K to 4M"},
	{{"-o", "block_size=8M", "http://h/a", "/m"}, "not a power of two from 4K to 4M"},
	{{"-o", "block_size=x", "http://h/a", "/m"}, "block_size: \"x\" is not a size"},
	{{"-o", "connections=0", "http://h/a", "/m"}, "connections: \"0\" is not a whole number"},
	{{"-o", "connections=9x", "http://h/a", "/m"}, "connections"},
	{{"-o", "timeout=", "http://h/a", "/m"}, "timeout"},
	{{"-o", "retries=101", "http://h/a", "/m"}, "retries"},
	{{"-o", "prefetch=maybe", "http://h/a", "/m"}, "prefetch: \"maybe\" is neither on nor off"},
	{{"-o", "model=lstm2", "http://h/a", "/m"}, "model: \"lstm2\" is not one of"},
	{{"-o", "model=hybird", "http://h/a", "/m"}, "none, sequential, markov, profile, lstm, hybrid"},
	{{"-o", "critical_p=1.5", "http://h/a", "/m"}, "critical_p: \"1.5\" is not a probability"},
	{{"-o", "predictive_p=x", "http://h/a", "/m"}, "predictive_p"},
	{{"-o", "idle_cpu=2", "http://h/a", "/m"}, "idle_cpu: \"2\" is not a probability"},
	{{"-o", "model_cpu=0", "http://h/a", "/m"}, "model_cpu: \"0\" is under 0.01 of a core"},
	{{"-o", "lstm_hidden=12", "http://h/a", "/m"}, "lstm_hidden: \"12\" is not a multiple of 8"},
	{{"-o", "lstm_hidden=512", "http://h/a", "/m"}, "lstm_hidden: \"512\" is not a whole number"},
	{{"-o", "lstm_vocab=4", "http://h/a", "/m"}, "lstm_vocab"},
	{{"-o", "lstm_train_every=0", "http://h/a", "/m"}, "lstm_train_every"},
	{{"-o", "model_memory=1K", "http://h/a", "/m"}, "model_memory: at least 64K"},
	{{"-o", "bg_bandwidth=fast", "http://h/a", "/m"}, "bg_bandwidth: \"fast\" is not a size"},
	{{"-o", "critical_window=-1", "http://h/a", "/m"}, "critical_window"},
	{{"-o", "state_dir=rel", "http://h/a", "/m"}, "state_dir: \"rel\" is not an absolute path"},
	{{"-o", "header=NoColon", "http://h/a", "/m"}, "header: \"NoColon\" is not NAME:VALUE"},
	{{"-o", "cache_dir=relative", "http://h/a", "/m"}, "not an absolute path"},
	{{"-o", "cafile=/nonexistent/ca.pem", "http://h/a", "/m"}, "cafile: cannot read"},
	{{"-o", "name=a/b", "http://h/a", "/m"}, "invalid image name"},
	{{"-o", "name=..", "http://h/a", "/m"}, "invalid image name"},
	{{"http://h/", "/m"}, "has no file name"},
	{{"ftp://h/a", "/m"}, "unsupported URL"},
	{{"http://h/a"}, "missing URL or mountpoint"},
	{{"http://h/a", "/m", "/extra"}, "too many arguments"},
	{{"-o", "manifest=/nonexistent/manifest", "/m"}, "/nonexistent/manifest"},
};

static void test_bad_values(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
		struct options o;
		g_autofree char *err = parse(&o, bad_cases[i].argv);

		if (!err || !strstr(err, bad_cases[i].message))
			g_error("case %" G_GSIZE_FORMAT ": got \"%s\", want \"%s\"", i,
				err ? err : "(success)", bad_cases[i].message);
		options_clear(&o);
	}
}

static void test_manifest(void)
{
	g_autofree char *dir = g_dir_make_tmp("aheadfs-unit-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "manifest", NULL);
	g_autoptr(GError) error = NULL;
	GArray *m = manifest_new();

	g_assert_true(g_file_set_contents(path,
					  "# images\n\nvm.raw http://h/vm.raw\n"
					  "  data\thttps://h/d?x=1  \n",
					  -1, NULL));
	g_assert_true(manifest_load(m, path, &error));
	g_assert_cmpuint(m->len, ==, 2);
	g_assert_cmpstr(g_array_index(m, struct manifest_entry, 1).name, ==, "data");
	g_assert_cmpstr(g_array_index(m, struct manifest_entry, 1).url, ==, "https://h/d?x=1");
	g_array_unref(m);

	m = manifest_new();
	g_assert_true(g_file_set_contents(path, "a http://h/1\na http://h/2\n", -1, NULL));
	g_assert_false(manifest_load(m, path, &error));
	g_assert_nonnull(strstr(error->message, "used twice"));
	g_clear_error(&error);
	g_assert_true(g_file_set_contents(path, "onlyname\n", -1, NULL));
	g_assert_false(manifest_load(m, path, &error));
	g_assert_nonnull(strstr(error->message, ":1: expected \"NAME URL\""));
	g_array_unref(m);
	g_unlink(path);
	g_rmdir(dir);
}

static void test_name_from_url(void)
{
	g_autofree char *a = manifest_name_from_url("http://h/x/disk%20one.raw?sig=abc#f", NULL);
	g_autofree char *b = manifest_name_from_url("https://h/dir/vm.qcow2/", NULL);

	g_assert_cmpstr(a, ==, "disk one.raw");
	g_assert_cmpstr(b, ==, "vm.qcow2");
	g_assert_null(manifest_name_from_url("http://h", NULL));
	g_assert_null(manifest_name_from_url("http://h/a%2Fb", NULL));
}

/* A credentials file of mode 0600 in a new directory; returns its path. */
static char *s3_creds_file(const char *text)
{
	g_autofree char *dir = g_dir_make_tmp("aheadfs-unit-XXXXXX", NULL);
	char *path = g_build_filename(dir, "creds", NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_assert_cmpint(g_chmod(path, 0600), ==, 0);
	return path;
}

static void s3_creds_remove(const char *path)
{
	g_autofree char *dir = g_path_get_dirname(path);

	g_unlink(path);
	g_rmdir(dir);
}

static void test_s3(void)
{
	g_autofree char *creds =
		s3_creds_file("[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n");
	g_autofree char *opt = g_strdup_printf(
		"region=eu-west-1,endpoint=http://127.0.0.1:7480,credentials_file=%s", creds);
	const char *argv[] = {"-o", opt, "s3://images/vm/disk%20one.raw", "/mnt", NULL};
	const char *aws[] = {"s3://images/disk.raw", "/mnt", NULL};
	const char *plain[] = {"https://h/disk.raw?X-Amz-Signature=x", "/mnt", NULL};
	struct options o;
	g_autofree char *err = parse(&o, argv);
	g_autofree char *err2 = NULL, *err3 = NULL;
	const struct manifest_entry *e;

	g_assert_null(err);
	e = &g_array_index(o.images, struct manifest_entry, 0);
	g_assert_cmpstr(e->name, ==, "disk one.raw");
	g_assert_cmpstr(e->url, ==, "http://127.0.0.1:7480/images/vm/disk%20one.raw");
	g_assert_nonnull(o.s3);
	g_assert_cmpstr(o.s3->sigv4, ==, "aws:amz:eu-west-1:s3");
	g_assert_cmpstr(o.s3->creds.access_key_id, ==, "AK");
	g_assert_cmpstr(o.s3->creds.secret_access_key, ==, "SK");
	options_clear(&o);

	/* AWS by default; credentials and region from the environment. */
	g_setenv("AWS_ACCESS_KEY_ID", "AKENV", TRUE);
	g_setenv("AWS_SECRET_ACCESS_KEY", "SKENV", TRUE);
	g_setenv("AWS_REGION", "ap-south-1", TRUE);
	err2 = parse(&o, aws);
	g_unsetenv("AWS_REGION");
	g_assert_null(err2);
	g_assert_cmpstr(g_array_index(o.images, struct manifest_entry, 0).url, ==,
			"https://images.s3.ap-south-1.amazonaws.com/disk.raw");
	g_assert_cmpstr(o.s3->creds.secret_access_key, ==, "SKENV");
	g_assert_null(g_getenv("AWS_SECRET_ACCESS_KEY"));
	options_clear(&o);

	/* A presigned URL is a plain URL: nothing to sign. */
	err3 = parse(&o, plain);
	g_assert_null(err3);
	g_assert_null(o.s3);
	options_clear(&o);
	s3_creds_remove(creds);
}

static void test_s3_errors(void)
{
	g_autofree char *creds =
		s3_creds_file("[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n");
	g_autofree char *incomplete = s3_creds_file("[default]\naws_access_key_id = AK\n");
	g_autofree char *with = g_strdup_printf("credentials_file=%s", creds);
	g_autofree char *partial = g_strdup_printf("credentials_file=%s", incomplete);
	g_autofree char *bad_region = g_strdup_printf("%s,region=us east", with);
	g_autofree char *bad_endpoint = g_strdup_printf("%s,endpoint=store:80", with);
	g_autofree char *named = g_strdup_printf("%s,name=x", with);
	const struct bad_case cases[] = {
		{{"s3://images/disk.raw", "/m"}, "no credentials: give -o credentials_file=FILE"},
		{{"-o", "credentials_file=/nonexistent/creds", "s3://b/k", "/m"},
		 "credentials_file: cannot open /nonexistent/creds"},
		{{"-o", partial, "s3://b/k", "/m"}, "no aws_secret_access_key in [default]"},
		{{"-o", "endpoint=http://127.0.0.1:1", "http://h/a", "/m"},
		 "endpoint: only for s3:// URLs"},
		{{"-o", "path_style", "http://h/a", "/m"}, "path_style: only for s3:// URLs"},
		{{"-o", "region=us-east-1", "http://h/a", "/m"}, "region: only for s3:// URLs"},
		{{"-o", bad_region, "s3://b/k", "/m"}, "region: \"us east\""},
		{{"-o", bad_endpoint, "s3://b/k", "/m"}, "endpoint: \"store:80\""},
		{{"-o", named, "s3://b", "/m"}, "names no object"},
		{{"-o", with, "s3://b/", "/m"}, "has no file name"},
		{{"-o", with, "https://h/k?X-Amz-Signature=secret", "/m"},
		 "https://h/k?X-Amz-Signature=REDACTED is presigned: it cannot be mounted with "
		 "credentials"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct options o;
		g_autofree char *err = parse(&o, cases[i].argv);

		if (!err || !strstr(err, cases[i].message))
			g_error("case %" G_GSIZE_FORMAT ": got \"%s\", want \"%s\"", i,
				err ? err : "(success)", cases[i].message);
		g_assert_null(strstr(err, "=SK"));
		options_clear(&o);
	}
	s3_creds_remove(creds);
	s3_creds_remove(incomplete);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_unsetenv("AWS_ACCESS_KEY_ID");
	g_unsetenv("AWS_SECRET_ACCESS_KEY");
	g_unsetenv("AWS_SESSION_TOKEN");
	g_unsetenv("AWS_REGION");
	g_unsetenv("AWS_DEFAULT_REGION");
	g_test_add_func("/options/defaults", test_defaults);
	g_test_add_func("/options/values", test_values);
	g_test_add_func("/options/learning", test_learning_options);
	g_test_add_func("/options/sizes", test_sizes);
	g_test_add_func("/options/bad-values", test_bad_values);
	g_test_add_func("/options/manifest", test_manifest);
	g_test_add_func("/options/name-from-url", test_name_from_url);
	g_test_add_func("/options/s3", test_s3);
	g_test_add_func("/options/s3-errors", test_s3_errors);
	return g_test_run();
}
