/*
 * config_reload.c — SIGHUP: read the configuration again and apply the
 * settings marked reloadable in config.c's table (docs/bridge.md "Reload").
 *
 * Semantics (PostgreSQL's and pgbouncer's): the new configuration is loaded
 * from the same sources as at start, so SHARECOUNT_* variables and
 * command-line flags still win over the file; a bad new configuration
 * changes nothing; a reloadable setting takes its new value; any other
 * setting keeps its running value and is reported as needing a restart.
 *
 * Rules: main thread only.  Role threads read the shared struct concurrently:
 * a reloadable int is stored with one atomic store (they read it with
 * SC_LIVE); a reloadable string (log_level) is read by the main thread alone,
 * so its pointer is swapped with the fresh copy, which the caller frees.
 * Nothing is logged here; the caller logs res (one line each), and no value
 * of a secret setting (conninfo, URLs) is ever put into res.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_table.h"

/*
 * Append ", item" (just "item" first) to a list of at most SC_RELOAD_MSG
 * bytes; a list that does not fit ends in "...".  Control characters (a
 * value from a flag or the environment may hold a newline) become '?', so
 * the log line stays one line.
 */
static void
list_add(char *list, const char *fmt, ...)
{
	size_t used = strlen(list);
	char item[SC_RELOAD_MSG];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(item, sizeof(item), fmt, ap);
	va_end(ap);
	for (char *c = item; *c; c++)
		if ((unsigned char) *c < 0x20 || *c == 0x7f)
			*c = '?';
	n = snprintf(list + used, SC_RELOAD_MSG - used, "%s%s", used ? ", " : "", item);
	if (n < 0 || used + (size_t) n >= SC_RELOAD_MSG)
		memcpy(list + SC_RELOAD_MSG - 4, "...", 4);
}

/* One setting of fresh that differs from cfg: apply it or refuse it. */
static void
merge_one(struct sc_config *cfg, struct sc_config *fresh, const struct setting *s, struct sc_reload_result *res)
{
	char was[SC_RELOAD_MSG / 2], now[SC_RELOAD_MSG / 2];

	if (s->type == T_INT)
	{
		snprintf(was, sizeof(was), "%d", *int_field(cfg, s));
		snprintf(now, sizeof(now), "%d", *int_field(fresh, s));
	}
	else
	{
		const char *a = *str_field(cfg, s), *b = *str_field(fresh, s);

		snprintf(was, sizeof(was), "\"%s\"", a ? a : "");
		snprintf(now, sizeof(now), "\"%s\"", b ? b : "");
	}
	if (!s->reloadable)
	{
		res->nrefused++;
		if (s->secret)
			list_add(res->refused, "%s", s->name);
		else
			list_add(res->refused, "%s (%s -> %s)", s->name, was, now);
		return;
	}
	res->nchanged++;
	list_add(res->changed, "%s %s -> %s", s->name, was, now);
	if (s->type == T_INT)
		__atomic_store_n(int_field(cfg, s), *int_field(fresh, s), __ATOMIC_RELAXED);
	else
	{
		char **a = str_field(cfg, s), **b = str_field(fresh, s), *t = *a;

		*a = *b;
		*b = t;
	}
}

void
config_merge(struct sc_config *cfg, struct sc_config *fresh, struct sc_reload_result *res)
{
	size_t n;
	const struct setting *settings = config_settings(&n);

	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < n; i++)
	{
		const struct setting *s = &settings[i];
		int same;

		if (s->type == T_INT)
			same = *int_field(cfg, s) == *int_field(fresh, s);
		else
		{
			const char *a = *str_field(cfg, s), *b = *str_field(fresh, s);

			same = strcmp(a ? a : "", b ? b : "") == 0;
		}
		if (!same)
			merge_one(cfg, fresh, s, res);
	}
}

int
config_reload(struct sc_config *cfg, int argc, char **argv, struct sc_reload_result *res, char *err, size_t errlen)
{
	struct sc_config fresh;
	int rc = config_load(&fresh, argc, argv, err, errlen);

	if (rc != 0)
	{
		if (rc > 0) /* --help/--version: main exited on them at start */
			snprintf(err, errlen, "unexpected --help or --version");
		config_free(&fresh);
		return -1;
	}
	config_merge(cfg, &fresh, res);
	config_free(&fresh);
	return 0;
}
