/*
 * test_config.c — config_load(): defaults, file, environment, flags, their
 * precedence, and every kind of bad configuration (one line, rc -1).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "config.h"
#include "unit.h"

static char tmpdir[] = "/tmp/sc-test-config.XXXXXX";

static const char *
write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* load with argv given as a NULL-terminated list; returns rc, err in buf */
static int
load(struct sc_config *cfg, char *err, const char *a0, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	const char *a;

	argv[argc++] = "sharecount-bridge";
	va_start(ap, a0);
	for (a = a0; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *) a;
	va_end(ap);
	argv[argc] = NULL;
	return config_load(cfg, argc, argv, err, 512);
}

static void
expect_error(const char *what, const char *needle, int rc, const char *err)
{
	if (rc != -1 || !strstr(err, needle) || strchr(err, '\n'))
	{
		failures++;
		printf("FAIL %s: rc=%d err=\"%s\" (wanted -1 and \"%s\")\n", what, rc, err, needle);
	}
}

/* The defaults (an explicit empty config file). */
static void
test_defaults(void)
{
	struct sc_config cfg;
	char err[512];
	int rc;

	rc = load(&cfg, err, "-c", write_file("empty.conf", ""), NULL);
	CHECK(rc == 0);
	CHECK(strcmp(cfg.pg_conninfo, "") == 0);
	CHECK(strcmp(cfg.pg_read_conninfo, "") == 0);
	CHECK(strcmp(cfg.amqp_url, "amqp://guest:guest@localhost:5672") == 0);
	CHECK(strcmp(cfg.exchange, "sharecount") == 0);
	CHECK(strcmp(cfg.queue, "sharecount.jobs") == 0);
	CHECK(strcmp(cfg.dead_letter_exchange, "sharecount.dlx") == 0);
	CHECK(strcmp(cfg.dead_letter_queue, "sharecount.dead") == 0);
	CHECK(strcmp(cfg.queue_type, "classic") == 0);
	CHECK(cfg.prefetch == 1000 && cfg.apply_batch == 500 && cfg.apply_linger_ms == 2);
	CHECK(cfg.publish_batch == 500 && cfg.confirm_timeout_ms == 10000 && cfg.poll_interval_ms == 500);
	CHECK(cfg.max_delivery_attempts == 5 && cfg.heartbeat_s == 30 && cfg.reconnect_max_ms == 10000);
	CHECK(strcmp(cfg.http_listen, "127.0.0.1:8080") == 0);
	CHECK(cfg.http_pool_size == 4 && cfg.http_max_connections == 256);
	CHECK(cfg.http_timeout_ms == 10000 && cfg.http_db_timeout_ms == 2000);
	CHECK(cfg.http_conn_memory == 16384);
	CHECK(cfg.role_mask == (SC_ROLE_PUBLISHER | SC_ROLE_CONSUMER | SC_ROLE_HTTP));
	CHECK(strcmp(cfg.log_level, "info") == 0);
	CHECK(cfg.check_only == 0);
	config_free(&cfg);
}

/* The file test_file() and test_precedence() load: comments, quotes, dashes in keys. */
static const char a_conf[] = "# a comment\n"
							 "  pg_conninfo = host=/tmp dbname=x password=s#cret   # trailing comment\n"
							 "queue = 'my queue '\n"
							 "prefetch=50\n"
							 "queue-type = quorum\n"
							 "roles = consumer , http\n"
							 "\n";

/* A file, comments, quotes; pg_read_conninfo follows pg_conninfo. */
static void
test_file(void)
{
	struct sc_config cfg;
	char err[512];
	int rc;

	rc = load(&cfg, err, "-c", write_file("a.conf", a_conf), "--check-config", NULL);
	CHECK(rc == 0);
	if (rc == 0)
	{
		CHECK(strcmp(cfg.pg_conninfo, "host=/tmp dbname=x password=s#cret") == 0);
		CHECK(strcmp(cfg.pg_read_conninfo, cfg.pg_conninfo) == 0);
		CHECK(strcmp(cfg.queue, "my queue ") == 0);
		CHECK(cfg.prefetch == 50);
		CHECK(strcmp(cfg.queue_type, "quorum") == 0);
		CHECK(cfg.role_mask == (SC_ROLE_CONSUMER | SC_ROLE_HTTP));
		CHECK(cfg.check_only == 1);
	}
	else
		printf("  err: %s\n", err);
	config_free(&cfg);
}

/* Precedence: flag > environment > file. */
static void
test_precedence(void)
{
	struct sc_config cfg;
	char err[512];
	char *f = strdup(write_file("a.conf", a_conf));
	int rc;

	setenv("SHARECOUNT_PREFETCH", "70", 1);
	setenv("SHARECOUNT_QUEUE", "from-env", 1);
	rc = load(&cfg, err, "-c", f, "--prefetch=90", NULL);
	CHECK(rc == 0 && cfg.prefetch == 90 && strcmp(cfg.queue, "from-env") == 0);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", f, NULL);
	CHECK(rc == 0 && cfg.prefetch == 70);
	config_free(&cfg);
	rc = load(&cfg, err, "--config", f, "--publish-batch", "7", "--poll_interval_ms=20", NULL);
	CHECK(rc == 0 && cfg.publish_batch == 7 && cfg.poll_interval_ms == 20 && cfg.prefetch == 70);
	config_free(&cfg);
	setenv("SHARECOUNT_PREFETCH", "lots", 1);
	rc = load(&cfg, err, "-c", f, NULL);
	expect_error("bad env int", "SHARECOUNT_PREFETCH", rc, err);
	config_free(&cfg);
	unsetenv("SHARECOUNT_PREFETCH");
	unsetenv("SHARECOUNT_QUEUE");
	free(f);
}

/* Connection settings that load: an explicit pg_read_conninfo, a list of URLs, an empty http_listen. */
static void
test_connections(void)
{
	struct sc_config cfg;
	char err[512];
	int rc;

	/* an explicit pg_read_conninfo stays */
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--pg-conninfo=dbname=a", "--pg_read_conninfo=dbname=b", NULL);
	CHECK(rc == 0 && strcmp(cfg.pg_read_conninfo, "dbname=b") == 0);
	config_free(&cfg);

	/* a list of URLs, amqps */
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--amqp_url=amqp://u:p@h1:5672/%2f, amqps://u:p@h2/v", NULL);
	CHECK(rc == 0);
	config_free(&cfg);

	/* http_listen empty is allowed (http role off), as is amqp_url only needed by broker roles */
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--http_listen=", "--roles=http", "--amqp_url=", NULL);
	CHECK(rc == 0);
	config_free(&cfg);
}

/* Errors in a file and in numbers: one line each, rc -1. */
static void
test_file_errors(void)
{
	struct sc_config cfg;
	char err[512];
	int rc;

	rc = load(&cfg, err, "-c", write_file("b.conf", "bogus = 1\n"), NULL);
	expect_error("unknown key", "unknown setting \"bogus\"", rc, err);
	CHECK(strstr(err, "b.conf:1") != NULL);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("b.conf", "prefetch = 1x\n"), NULL);
	expect_error("bad int", "invalid integer for prefetch", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("b.conf", "prefetch = 0\n"), NULL);
	expect_error("int range", "out of range", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--http-conn-memory=4095", NULL);
	expect_error("http_conn_memory below libmicrohttpd's useful minimum", "out of range", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--http-conn-memory=65536", NULL);
	CHECK(rc == 0 && cfg.http_conn_memory == 65536);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("b.conf", "just a line\n"), NULL);
	expect_error("no equals", "expected \"key = value\"", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("b.conf", "queue = 'open\n"), NULL);
	expect_error("open quote", "unterminated", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", "/nonexistent/bridge.conf", NULL);
	expect_error("missing explicit file", "cannot read config file", rc, err);
	config_free(&cfg);
}

/* Bad values of the enumerated and list settings (queue_type, roles): one line each, rc -1. */
static void
test_value_errors(void)
{
	struct sc_config cfg;
	char err[512];
	int rc;

	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--queue_type=stream", NULL);
	expect_error("queue_type", "invalid queue_type", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--roles=publisher,ftp", NULL);
	expect_error("roles", "invalid roles", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--roles=", NULL);
	expect_error("empty roles", "invalid roles", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--roles=publisher,,http", NULL);
	expect_error("empty role in the middle", "invalid roles", rc, err);
	config_free(&cfg);
	/* a trailing comma ends the roles list (as before the list helper) */
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--roles= publisher ,", NULL);
	CHECK(rc == 0);
	CHECK(rc != 0 || cfg.role_mask == SC_ROLE_PUBLISHER);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--log_level=loud", NULL);
	expect_error("log_level", "invalid log_level", rc, err);
	config_free(&cfg);
}

/* Bad connection settings (secrets never echoed) and bad command lines: one line each, rc -1. */
static void
test_url_and_flag_errors(void)
{
	struct sc_config cfg;
	char err[512];
	int rc;

	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--amqp_url=http://u:secret@x", NULL);
	expect_error("amqp_url scheme", "invalid amqp_url", rc, err);
	CHECK(strstr(err, "secret") == NULL);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--amqp_url=amqp://h:5672?x=1", NULL);
	expect_error("amqp_url query", "invalid amqp_url", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--amqp_url=amqp://a,", NULL);
	expect_error("amqp_url empty entry", "invalid amqp_url", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--pg_conninfo=nonsense", NULL);
	expect_error("pg_conninfo", "invalid pg_conninfo", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--http_listen=8080", NULL);
	expect_error("http_listen", "invalid http_listen", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--nope=1", NULL);
	expect_error("unknown flag", "unknown option \"--nope=1\"", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "-c", write_file("e.conf", ""), "--prefetch", NULL);
	expect_error("flag without value", "needs a value", rc, err);
	config_free(&cfg);
	rc = load(&cfg, err, "stray", NULL);
	expect_error("stray argument", "unexpected argument", rc, err);
	config_free(&cfg);
}

/* A reload copies only reloadable settings (more in test_reload.c). */
static void
test_reload_copies(void)
{
	struct sc_config cfg;
	char err[512];
	char *f = strdup(write_file("r.conf", "log_level = debug\nprefetch = 3\n"));
	char *argv[] = {"x", "-c", f, NULL};
	struct sc_reload_result res;
	int rc;

	rc = load(&cfg, err, "-c", write_file("r0.conf", ""), NULL);
	CHECK(rc == 0);
	CHECK(config_reload(&cfg, 3, argv, &res, err, sizeof(err)) == 0);
	CHECK(strcmp(cfg.log_level, "debug") == 0 && cfg.prefetch == 1000);
	config_free(&cfg);
	free(f);
}

int
main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	/* none of these may leak in from the environment running the tests */
	unsetenv("SHARECOUNT_CONFIG");
	unsetenv("SHARECOUNT_PREFETCH");
	unsetenv("SHARECOUNT_QUEUE");

	test_defaults();
	test_file();
	test_precedence();
	test_connections();
	test_file_errors();
	test_value_errors();
	test_url_and_flag_errors();
	test_reload_copies();
	return unit_done("test_config");
}
