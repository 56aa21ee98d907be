/*
 * test_reload.c — config_reload() / config_merge() (SIGHUP, docs/bridge.md
 * "Reload"): reloadable settings take the file's new value and are listed;
 * the others keep the running value and are listed as needing a restart
 * (secret values never shown); a bad file changes nothing; the environment
 * and flags keep winning over the file; a setting removed from the file goes
 * back to its default; the lists stay one bounded line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "config.h"
#include "unit.h"

static char tmpdir[] = "/tmp/sc-test-reload.XXXXXX";
static char conf[300];
static char err[512];
static struct sc_reload_result res;

static void
write_conf(const char *text)
{
	FILE *f = fopen(conf, "w");

	fputs(text, f);
	fclose(f);
}

/* argv of the running bridge: "-c conf" plus up to two flags */
static char *run_argv[8];
static int run_argc;

static void
set_argv(const char *flag1, const char *flag2)
{
	run_argc = 0;
	run_argv[run_argc++] = "sharecount-bridge";
	run_argv[run_argc++] = "-c";
	run_argv[run_argc++] = conf;
	if (flag1)
		run_argv[run_argc++] = (char *) flag1;
	if (flag2)
		run_argv[run_argc++] = (char *) flag2;
	run_argv[run_argc] = NULL;
}

/* start: load conf as the running configuration */
static void
start(struct sc_config *cfg, const char *text)
{
	write_conf(text);
	if (config_load(cfg, run_argc, run_argv, err, sizeof(err)) != 0)
	{
		failures++;
		printf("FAIL: start: %s\n", err);
	}
}

/* SIGHUP after the file became text */
static int
hup(struct sc_config *cfg, const char *text)
{
	write_conf(text);
	memset(&res, 0x55, sizeof(res)); /* config_reload must fill it */
	err[0] = '\0';
	return config_reload(cfg, run_argc, run_argv, &res, err, sizeof(err));
}

static void
test_apply_and_refuse(void)
{
	struct sc_config cfg;

	set_argv(NULL, NULL);
	start(&cfg, "pg_conninfo = dbname=a password=old\nlog_level = info\n");
	CHECK(hup(&cfg,
			  "pg_conninfo = dbname=b password=hunter2\nlog_level = debug\n"
			  "max_delivery_attempts = 3\npoll_interval_ms = 100\nprefetch = 7\n"
			  "reconnect_max_ms = 2000\nconfirm_timeout_ms = 3000\napply_linger_ms = 9\n"
			  "exchange = other\n") == 0);
	/* reloadable: applied and listed with old -> new */
	CHECK(strcmp(cfg.log_level, "debug") == 0);
	CHECK(cfg.max_delivery_attempts == 3 && cfg.poll_interval_ms == 100);
	CHECK(cfg.reconnect_max_ms == 2000 && cfg.confirm_timeout_ms == 3000 && cfg.apply_linger_ms == 9);
	CHECK(SC_LIVE(&cfg, poll_interval_ms) == 100);
	CHECK(res.nchanged == 6);
	CHECK(strstr(res.changed, "log_level \"info\" -> \"debug\"") != NULL);
	CHECK(strstr(res.changed, "max_delivery_attempts 5 -> 3") != NULL);
	CHECK(strstr(res.changed, "poll_interval_ms 500 -> 100") != NULL);
	/* not reloadable: running value kept, listed; secrets by name only */
	CHECK(strcmp(cfg.pg_conninfo, "dbname=a password=old") == 0);
	CHECK(strcmp(cfg.pg_read_conninfo, "dbname=a password=old") == 0);
	CHECK(cfg.prefetch == 1000 && strcmp(cfg.exchange, "sharecount") == 0);
	CHECK(res.nrefused == 4); /* pg_conninfo, pg_read_conninfo (follows it), prefetch, exchange */
	CHECK(strstr(res.refused, "pg_conninfo") != NULL && strstr(res.refused, "pg_read_conninfo") != NULL);
	CHECK(strstr(res.refused, "prefetch (1000 -> 7)") != NULL);
	CHECK(strstr(res.refused, "exchange (\"sharecount\" -> \"other\")") != NULL);
	CHECK(strstr(res.refused, "hunter2") == NULL && strstr(res.refused, "old") == NULL);
	CHECK(strstr(res.changed, "hunter2") == NULL);

	/* the same file again: nothing changes, but the refused ones are refused again */
	CHECK(hup(&cfg,
			  "pg_conninfo = dbname=a password=old\nlog_level = debug\n"
			  "max_delivery_attempts = 3\npoll_interval_ms = 100\nreconnect_max_ms = 2000\n"
			  "confirm_timeout_ms = 3000\napply_linger_ms = 9\n") == 0);
	CHECK(res.nchanged == 0 && res.changed[0] == '\0');
	CHECK(res.nrefused == 0 && res.refused[0] == '\0');

	/* a setting removed from the file goes back to its default */
	CHECK(hup(&cfg, "pg_conninfo = dbname=a password=old\n") == 0);
	CHECK(strcmp(cfg.log_level, "info") == 0 && cfg.max_delivery_attempts == 5);
	CHECK(cfg.poll_interval_ms == 500 && res.nchanged == 6 && res.nrefused == 0);
	config_free(&cfg);
}

static void
test_bad_file(void)
{
	struct sc_config cfg;
	static const char *bad[] = {
		"log_level = debug\nmax_delivery_attempts = 0\n", /* out of range */
		"log_level = debug\nlog_level = loud\n",		  /* invalid value */
		"log_level = debug\nno_such_setting = 1\n",		  /* unknown key */
		"log_level = debug\njust some words\n",			  /* not key = value */
		"log_level = debug\npg_conninfo = nonsense\n",	  /* libpq cannot parse it */
	};

	set_argv(NULL, NULL);
	start(&cfg, "log_level = warn\npoll_interval_ms = 300\n");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		if (hup(&cfg, bad[i]) != -1 || err[0] == '\0' || strchr(err, '\n'))
		{
			failures++;
			printf("FAIL: bad file %zu: not one clear error: \"%s\"\n", i, err);
		}
		/* nothing applied, not even the valid log_level before the error */
		CHECK(strcmp(cfg.log_level, "warn") == 0 && cfg.poll_interval_ms == 300);
	}
	CHECK(strstr(err, "invalid pg_conninfo") != NULL);
	/* a file that became unreadable */
	unlink(conf);
	memset(&res, 0, sizeof(res));
	CHECK(config_reload(&cfg, run_argc, run_argv, &res, err, sizeof(err)) == -1);
	CHECK(strstr(err, "cannot read config file") != NULL);
	CHECK(strcmp(cfg.log_level, "warn") == 0);
	config_free(&cfg);
}

/* SHARECOUNT_* and flags win over the file after a reload, as at start */
static void
test_precedence(void)
{
	struct sc_config cfg;

	setenv("SHARECOUNT_LOG_LEVEL", "error", 1);
	set_argv("--poll_interval_ms=200", "--max-delivery-attempts=9");
	start(&cfg, "log_level = debug\npoll_interval_ms = 300\nreconnect_max_ms = 1000\n");
	CHECK(strcmp(cfg.log_level, "error") == 0 && cfg.poll_interval_ms == 200);
	CHECK(hup(&cfg,
			  "log_level = info\npoll_interval_ms = 50\nmax_delivery_attempts = 2\n"
			  "reconnect_max_ms = 3000\n") == 0);
	CHECK(strcmp(cfg.log_level, "error") == 0);
	CHECK(cfg.poll_interval_ms == 200 && cfg.max_delivery_attempts == 9);
	CHECK(cfg.reconnect_max_ms == 3000);
	CHECK(res.nchanged == 1 && strcmp(res.changed, "reconnect_max_ms 1000 -> 3000") == 0);
	CHECK(res.nrefused == 0);
	/* a bad value in the environment is not masked by a good file */
	setenv("SHARECOUNT_LOG_LEVEL", "loud", 1);
	CHECK(hup(&cfg, "reconnect_max_ms = 4000\n") == -1 && strstr(err, "log_level") != NULL);
	CHECK(cfg.reconnect_max_ms == 3000);
	unsetenv("SHARECOUNT_LOG_LEVEL");
	config_free(&cfg);
}

/* config_merge's lists: one line, bounded, control characters shown as '?' */
static void
test_lists(void)
{
	struct sc_config cfg, fresh;
	char *big = malloc(3 * SC_RELOAD_MSG);

	set_argv(NULL, NULL);
	start(&cfg, "");
	start(&fresh, "");
	memset(big, 'x', 3 * SC_RELOAD_MSG - 1);
	big[3 * SC_RELOAD_MSG - 1] = '\0';
	free(fresh.queue);
	fresh.queue = strdup("a\nb");
	free(fresh.exchange);
	fresh.exchange = big; /* each value is cut to half the list; three fill it */
	free(fresh.dead_letter_exchange);
	fresh.dead_letter_exchange = strdup(big);
	free(fresh.dead_letter_queue);
	fresh.dead_letter_queue = strdup(big);
	fresh.prefetch = 1;
	config_merge(&cfg, &fresh, &res);
	CHECK(res.nrefused == 5 && res.nchanged == 0);
	CHECK(strchr(res.refused, '\n') == NULL);
	CHECK(strlen(res.refused) == SC_RELOAD_MSG - 1);
	CHECK(strcmp(res.refused + SC_RELOAD_MSG - 4, "...") == 0);
	CHECK(strcmp(cfg.queue, "sharecount.jobs") == 0 && cfg.prefetch == 1000);
	config_free(&fresh);
	start(&fresh, "");
	free(fresh.queue);
	fresh.queue = strdup("a\nb");
	config_merge(&cfg, &fresh, &res);
	CHECK(strcmp(res.refused, "queue (\"sharecount.jobs\" -> \"a?b\")") == 0);
	config_free(&fresh);
	config_free(&cfg);
}

int
main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(conf, sizeof(conf), "%s/bridge.conf", tmpdir);
	unsetenv("SHARECOUNT_CONFIG");
	unsetenv("SHARECOUNT_LOG_LEVEL");
	unsetenv("SHARECOUNT_POLL_INTERVAL_MS");
	unsetenv("SHARECOUNT_MAX_DELIVERY_ATTEMPTS");
	unsetenv("SHARECOUNT_RECONNECT_MAX_MS");
	unsetenv("SHARECOUNT_PG_CONNINFO");

	test_apply_and_refuse();
	test_bad_file();
	test_precedence();
	test_lists();

	unlink(conf);
	rmdir(tmpdir);
	return unit_done("test_reload");
}
