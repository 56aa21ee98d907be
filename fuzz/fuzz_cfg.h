/*
 * fuzz_cfg.h — shared by fuzz_config.c and fuzz_amqp_url.c: run config_load()
 * (bridge/config.c) on a config file held in memory, a set of SHARECOUNT_*
 * environment variables and an argv, then check what it produced
 * (docs/fuzzing.md).
 *
 * Rules: this header defines LLVMFuzzerInitialize (fz_cfg_init).  The
 * config file is a memfd (/proc/self/fd/N), rewritten for every input; the
 * harness never lets an input name another file (-c/--config values are
 * replaced by the memfd's path), so nothing outside the process is read or
 * written.  Every SHARECOUNT_* variable is removed at start and the
 * ones an input sets are removed after it.  stdout (--help, --version) goes to
 * /dev/null; config_print() writes into a memory stream that is checked.
 *
 * Invariants: rc is -1, 0 or 1; an error is one non-empty line; a loaded
 * config has roles, every string set, an amqp_url whose comma-separated items
 * are each non-empty, trimmed and accepted by amqp_parse_url (when a broker
 * role is on); config_print never shows a password that appears literally
 * in pg_conninfo, pg_read_conninfo or amqp_url; config_reload() from the same
 * sources succeeds and keeps log_level.
 */
#ifndef SC_FUZZ_CFG_H
#define SC_FUZZ_CFG_H

#define _GNU_SOURCE
#include <ctype.h>
#include <sys/mman.h>
#include <unistd.h>

#include <amqp.h>
#include <libpq-fe.h>

#include "bridge.h"
#include "config.h"
#include "fuzz.h"

#define FZ_MAX_ARGS 24 /* argv entries a harness builds at most */

extern char **environ;

static int fz_conf_fd = -1;
static char fz_conf_path[64];

static void
fz_cfg_init(void)
{
	int again = 1;

	FZ_CHECK(freopen("/dev/null", "w", stdout) != NULL);
	fz_conf_fd = memfd_create("bridge.conf", 0);
	FZ_CHECK(fz_conf_fd >= 0);
	snprintf(fz_conf_path, sizeof(fz_conf_path), "/proc/self/fd/%d", fz_conf_fd);
	while (again) /* unsetenv shifts environ: rescan after each */
	{
		again = 0;
		for (char **e = environ; *e; e++)
			if (strncmp(*e, "SHARECOUNT_", 11) == 0)
			{
				char name[256];
				size_t n = strcspn(*e, "=");

				snprintf(name, sizeof(name), "%.*s", (int) n, *e);
				unsetenv(name);
				again = 1;
				break;
			}
	}
}

/* libFuzzer calls this once, before the first input. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fz_cfg_init();
	return 0;
}

static void
fz_cfg_write_file(const uint8_t *p, size_t n)
{
	FZ_CHECK(ftruncate(fz_conf_fd, 0) == 0);
	FZ_CHECK(n == 0 || pwrite(fz_conf_fd, p, n, 0) == (ssize_t) n);
}

/* Occurrences of needle in hay[0..len). */
static int
fz_count(const char *hay, size_t len, const char *needle)
{
	size_t nl = strlen(needle);
	int k = 0;

	for (size_t i = 0; nl && i + nl <= len; i++)
		k += memcmp(hay + i, needle, nl) == 0;
	return k;
}

/* The value printed by config_print for key (inside its line's `key = "..."` quotes). */
static const char *
fz_line(const char *out, const char *key, size_t *len)
{
	size_t kl = strlen(key);

	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, kl) == 0 && strncmp(l + kl, " = \"", 4) == 0)
		{
			size_t n = strcspn(l, "\n");

			FZ_CHECK(n >= kl + 5 && l[n - 1] == '"');
			*len = n - kl - 5;
			return l + kl + 4;
		}
	*len = 0;
	return "";
}

/* A password found literally in `raw` must lose at least one occurrence in its printed line. */
static void
fz_check_hidden(const char *out, const char *key, const char *raw, const char *password)
{
	size_t len;
	const char *line = fz_line(out, key, &len);
	int in_raw;

	if (!password || strlen(password) < 3)
		return;
	/* a password of asterisks cannot be told from the mask config_print writes */
	if (strspn(password, "*") == strlen(password))
		return;
	in_raw = fz_count(raw, strlen(raw), password);
	if (in_raw > 0 && fz_count(line, len, password) >= in_raw)
	{
		fprintf(stderr, "password \"%s\" of %s shown: %.*s\n", password, key, (int) len, line);
		FZ_CHECK(!"config_print shows a password");
	}
}

static void
fz_check_conninfo(const char *out, const char *key, const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);

	FZ_CHECK(opts != NULL); /* validate() accepted it */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0)
			fz_check_hidden(out, key, conninfo, o->val);
	PQconninfoFree(opts);
}

/* Every item of a loaded amqp_url: non-empty, trimmed, parsed by rabbitmq-c, password hidden. */
static void
fz_check_amqp_url(const char *out, const struct sc_config *cfg)
{
	const char *p = cfg->amqp_url;

	for (;;)
	{
		size_t n = strcspn(p, ",");
		char *copy = strndup(p, n);
		struct amqp_connection_info info;

		int userinfo;

		FZ_CHECK(copy != NULL);
		FZ_CHECK(n > 0 && !isspace((unsigned char) p[0]) && !isspace((unsigned char) p[n - 1]));
		/* an explicit password: "user:password@", looked for before amqp_parse_url decodes %40 in place */
		{
			const char *at = strchr(copy, '@'), *auth = strstr(copy, "://");

			userinfo = at && auth && auth < at && memchr(auth + 3, ':', (size_t) (at - auth - 3)) != NULL;
		}
		amqp_default_connection_info(&info);
		FZ_CHECK(amqp_parse_url(copy, &info) == AMQP_STATUS_OK);
		if (userinfo) /* else info.password is the default "guest", not the text's */
			fz_check_hidden(out, "amqp_url", cfg->amqp_url, info.password);
		free(copy);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
}

static void
fz_check_loaded(struct sc_config *cfg, int argc, char **argv)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *real = stdout;
	char err[512];
	char *level;
	struct sc_reload_result res;

	FZ_CHECK(cfg->role_mask != 0 && (cfg->role_mask & ~7u) == 0);
	FZ_CHECK(cfg->pg_conninfo && cfg->pg_read_conninfo && cfg->amqp_url && cfg->queue && cfg->exchange &&
			 cfg->http_listen && cfg->log_level && cfg->roles);
	stdout = open_memstream(&out, &outlen);
	FZ_CHECK(stdout != NULL);
	config_print(cfg);
	fclose(stdout);
	stdout = real;
	FZ_CHECK(out != NULL);
	fz_check_conninfo(out, "pg_conninfo", cfg->pg_conninfo);
	fz_check_conninfo(out, "pg_read_conninfo", cfg->pg_read_conninfo);
	if (cfg->role_mask & (SC_ROLE_PUBLISHER | SC_ROLE_CONSUMER))
		fz_check_amqp_url(out, cfg);
	free(out);

	level = strdup(cfg->log_level);
	FZ_CHECK(level != NULL);
	err[0] = '\0';
	if (config_reload(cfg, argc, argv, &res, err, sizeof(err)) != 0)
	{
		fprintf(stderr, "reload from the same sources failed: %s\n", err);
		FZ_CHECK(!"config_reload failed where config_load succeeded");
	}
	FZ_CHECK(strcmp(level, cfg->log_level) == 0);
	/* the same sources again: nothing differs (docs/bridge.md "Reload") */
	FZ_CHECK(res.nchanged == 0 && res.nrefused == 0 && !res.changed[0] && !res.refused[0]);
	free(level);
}

/* config_load(argv) with the memfd as the file; checks; frees everything. */
static void
fz_cfg_run(int argc, char **argv)
{
	struct sc_config cfg;
	char err[512];
	int rc;

	memset(err, 'x', sizeof(err));
	rc = config_load(&cfg, argc, argv, err, sizeof(err));
	FZ_CHECK(rc == -1 || rc == 0 || rc == 1);
	if (rc == -1)
	{
		FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		FZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	}
	else if (rc == 0)
		fz_check_loaded(&cfg, argc, argv);
	config_free(&cfg);
}

#endif
