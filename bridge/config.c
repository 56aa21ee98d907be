/*
 * config.c — the bridge's settings (docs/bridge.md "Configuration"): one
 * table of settings (name, type, default, bounds, reloadable) drives
 * defaults, the file, the environment, the command line, validation and
 * --check-config output.
 *
 * Precedence, lowest first: built-in default, the file (-c FILE, default
 * /etc/sharecount/bridge.conf; a missing *default* file is not an error, a
 * missing explicit one is), SHARECOUNT_<KEY> environment variables, then
 * --key=value / --key value flags (`_` and `-` both accepted in key names).
 *
 * Rules: strings in struct sc_config are malloc'ed and owned by it
 * (config_free releases them).  Every error is reported as ONE line in the
 * caller's buffer; nothing is printed from here except --help, --version and
 * config_print().  Unknown SHARECOUNT_* environment variables are ignored
 * (other tools may share the prefix); unknown keys in the file or on the
 * command line are errors.  The lists (roles, amqp_url: check, normalisation,
 * redaction) and the one-line error live in config_url.c.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "bridge.h"
#include "config.h"
#include "config_table.h"
#include "config_url.h"
#include "log.h"

#define DEFAULT_CONFIG_FILE "/etc/sharecount/bridge.conf"

/* A setting: string (S) or int (I); the R forms are reloadable on SIGHUP (config_table.h). */
#define S(field, def, secret, help) \
	{ \
#field, T_STR, offsetof(struct sc_config, field), def, 0, 0, 0, secret, help \
	}
#define SR(field, def, help) \
	{ \
#field, T_STR, offsetof(struct sc_config, field), def, 0, 0, 1, 0, help \
	}
#define I(field, def, lo, hi, help) \
	{ \
#field, T_INT, offsetof(struct sc_config, field), def, lo, hi, 0, 0, help \
	}
#define IR(field, def, lo, hi, help) \
	{ \
#field, T_INT, offsetof(struct sc_config, field), def, lo, hi, 1, 0, help \
	}

static const struct setting settings[] = {
	/* PostgreSQL */
	S(pg_conninfo, "", 1, "libpq conninfo or URI (empty: libpq environment defaults)"),
	S(pg_read_conninfo, NULL, 1, "conninfo for the http role's reads (default: pg_conninfo)"),
	I(read_max_lag_ms, "1000", 10, 3600000, "replica (pg_read_conninfo) lag past which reads go to the primary"),
	I(read_check_interval_ms, "250", 10, 60000, "how often the http role checks the replica's lag"),
	/* RabbitMQ */
	S(amqp_url, "amqp://guest:guest@localhost:5672", 1,
	  "amqp[s]://user:pass@host:port/vhost, comma-separated list tried in turn"),
	S(amqp_cacert, "", 0, "CA file for amqps:// peers"),
	S(exchange, "sharecount", 0, "topic exchange jobs are published to"),
	S(queue, "sharecount.jobs", 0, "queue the consumer reads"),
	S(dead_letter_exchange, "sharecount.dlx", 0, "fanout exchange for rejected messages"),
	S(dead_letter_queue, "sharecount.dead", 0, "queue bound to the dead-letter exchange"),
	S(queue_type, "classic", 0, "classic | quorum"),
	/* the consumer role */
	I(prefetch, "1000", 1, 65535, "consumer basic.qos prefetch count"),
	I(apply_batch, "500", 1, 10000, "max deliveries applied in one transaction"),
	IR(apply_linger_ms, "2", 0, 10000, "how long a partial batch waits (from its first delivery) for more deliveries"),
	/* count-change events (docs/live.md) */
	S(updates_exchange, "sharecount.updates", 0, "topic exchange of count-change events (routing key = contentType)"),
	I(publish_events, "1", 0, 1,
	  "1: the consumer publishes a share_count_changed event per changed key after each commit; 0: none"),
	/* the publisher role */
	I(publish_batch, "500", 1, 10000, "outbox rows claimed and published at once"),
	I(publish_pipeline, "2", 1, SC_MAX_PIPELINE,
	  "claim transactions in flight at once, each on its own PostgreSQL connection"),
	IR(confirm_timeout_ms, "10000", 100, 600000, "give up waiting for publisher confirms after this"),
	IR(poll_interval_ms, "500", 10, 600000, "fallback outbox poll when no wake-up arrives"),
	/* failures and connections */
	IR(max_delivery_attempts, "5", 1, 1000,
	   "failed applies of one message on its own, while the database is otherwise ready, before it is dead-lettered"),
	I(heartbeat_s, "30", 0, 3600, "AMQP heartbeat (0 disables)"),
	IR(reconnect_max_ms, "10000", 100, 600000, "cap of the exponential reconnect backoff"),
	/* the http role */
	S(http_listen, "127.0.0.1:8080", 0, "host:port of the HTTP API (empty disables it)"),
	I(http_pool_size, "4", 1, 256,
	  "PostgreSQL connections of the http role's workers (each libmicrohttpd thread has one more)"),
	I(http_max_connections, "256", 1, 65535, "concurrent HTTP connections"),
	I(http_timeout_ms, "10000", 100, 600000, "HTTP connection idle/request timeout"),
	I(http_db_timeout_ms, "2000", 10, 600000, "answer 503 when the database takes longer"),
	I(http_conn_memory, "16384", 4096, 1048576,
	  "bytes per HTTP connection; the request line and headers must fit (65536 for 1,000 UUIDs in one /counts URL)"),
	S(http_allowed_origins, "", 0,
	  "Origins (scheme://host[:port], comma-separated, or *) allowed on /, /share-links/stream and /share-links/ws "
	  "besides the page's own; empty: same-origin and clients without Origin only"),
	I(http_cache_entries, "100000", 0, 10000000, "keys the http role's count cache holds (0 disables the cache)"),
	I(http_cache_max_age_ms, "1000", 1, 600000, "a cached count is served for less than this after a database read"),
	/* the process */
	S(roles, "publisher,consumer,http", 0, "comma-separated: publisher, consumer, http"),
	SR(log_level, "info", "error | warn | info | debug"),
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Find a setting by name, treating '-' as '_' and ignoring case. */
static const struct setting *
find_setting(const char *name, size_t len)
{
	for (size_t i = 0; i < NSETTINGS; i++)
	{
		const char *n = settings[i].name;
		size_t j;

		if (strlen(n) != len)
			continue;
		for (j = 0; j < len; j++)
		{
			char c = name[j] == '-' ? '_' : (char) tolower((unsigned char) name[j]);

			if (c != n[j])
				break;
		}
		if (j == len)
			return &settings[i];
	}
	return NULL;
}

/* Set one setting from text; where says where the value came from. */
static int
set_value(struct sc_config *cfg, const struct setting *s, const char *value, const char *where, char *err,
		  size_t errlen)
{
	if (s->type == T_STR)
	{
		char **f = str_field(cfg, s);
		char *copy = strdup(value);

		if (!copy)
		{
			config_set_err(err, errlen, "out of memory");
			return -1;
		}
		free(*f);
		*f = copy;
		return 0;
	}
	else
	{
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		while (*end && isspace((unsigned char) *end))
			end++;
		if (errno || end == value || *end || !*value)
		{
			config_set_err(err, errlen, "%s: invalid integer for %s: \"%s\"", where, s->name, value);
			return -1;
		}
		if (v < s->min || v > s->max)
		{
			config_set_err(err, errlen, "%s: %s = %ld is out of range [%ld, %ld]", where, s->name, v, s->min, s->max);
			return -1;
		}
		*int_field(cfg, s) = (int) v;
		return 0;
	}
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

/*
 * Read `key = value` lines.  '#' starts a comment only at the beginning of a
 * line or after whitespace (a password may contain '#'); values may be wrapped
 * in single or double quotes to keep leading/trailing spaces or a " #".
 */
static int
load_file(struct sc_config *cfg, const char *path, int must_exist, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	int lineno = 0;

	if (!f)
	{
		if (!must_exist && errno == ENOENT)
			return 0;
		config_set_err(err, errlen, "cannot read config file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f))
	{
		char *p, *eq, *key, *val;
		char where[PATH_MAX + 32];
		const struct setting *s;

		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (!strchr(line, '\n') && !feof(f))
		{
			config_set_err(err, errlen, "%s: line too long", where);
			fclose(f);
			return -1;
		}
		p = trim(line);
		if (*p == '\0' || *p == '#' || *p == ';')
			continue;
		eq = strchr(p, '=');
		if (!eq)
		{
			config_set_err(err, errlen, "%s: expected \"key = value\"", where);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		key = trim(p);
		val = trim(eq + 1);
		if (*val == '"' || *val == '\'')
		{
			char q = *val;
			char *close = strchr(val + 1, q);

			if (!close || (*trim(close + 1) != '\0' && *trim(close + 1) != '#'))
			{
				config_set_err(err, errlen, "%s: unterminated quoted value for %s", where, key);
				fclose(f);
				return -1;
			}
			*close = '\0';
			val++;
		}
		else
		{
			/* strip a trailing " # comment" */
			for (char *c = val; *c; c++)
				if (*c == '#' && c > val && isspace((unsigned char) c[-1]))
				{
					*c = '\0';
					val = trim(val);
					break;
				}
		}
		s = find_setting(key, strlen(key));
		if (!s)
		{
			config_set_err(err, errlen, "%s: unknown setting \"%s\"", where, key);
			fclose(f);
			return -1;
		}
		if (set_value(cfg, s, val, where, err, errlen) < 0)
		{
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static int
load_env(struct sc_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < NSETTINGS; i++)
	{
		char name[96];
		const char *v;
		size_t j;

		snprintf(name, sizeof(name), "SHARECOUNT_");
		for (j = 0; settings[i].name[j] && j + 12 < sizeof(name); j++)
			name[11 + j] = (char) toupper((unsigned char) settings[i].name[j]);
		name[11 + j] = '\0';
		v = getenv(name);
		if (v && set_value(cfg, &settings[i], v, name, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static void
print_help(void)
{
	printf("sharecount-bridge %s — publishes the sharecount outbox to RabbitMQ, applies jobs, serves counts\n\n"
		   "Usage: sharecount-bridge [-c FILE] [--key=value ...] [--check-config]\n\n"
		   "  -c, --config FILE   config file (default " DEFAULT_CONFIG_FILE ")\n"
		   "  --check-config      validate, print the effective configuration, exit 0 (2 if invalid)\n"
		   "  --help, --version\n\n"
		   "Every setting is also SHARECOUNT_<KEY> in the environment; flags override the\n"
		   "environment, which overrides the file.  SIGHUP re-reads them all and applies\n"
		   "those marked \"reloaded on SIGHUP\"; the others need a restart.  Settings:\n",
		   SHARECOUNT_VERSION);
	for (size_t i = 0; i < NSETTINGS; i++)
		printf("  --%-22s %s (default: %s%s)\n", settings[i].name, settings[i].help,
			   settings[i].def ? (settings[i].def[0] ? settings[i].def : "\"\"") : "see above",
			   settings[i].reloadable ? "; reloaded on SIGHUP" : "");
}

/* A conninfo libpq cannot parse is a config error, reported at start. */
static int
check_conninfo(const char *key, const char *conninfo, char *err, size_t errlen)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
	char *nl;

	if (opts)
	{
		PQconninfoFree(opts);
		return 0;
	}
	nl = errmsg ? strchr(errmsg, '\n') : NULL;
	if (nl)
		*nl = '\0';
	config_set_err(err, errlen, "invalid %s: %s", key, errmsg ? errmsg : "out of memory");
	PQfreemem(errmsg);
	return -1;
}

static int
validate(struct sc_config *cfg, char *err, size_t errlen)
{
	const char *p;
	const char *item;
	size_t n;

	if (strcmp(cfg->queue_type, "classic") != 0 && strcmp(cfg->queue_type, "quorum") != 0)
	{
		config_set_err(err, errlen, "invalid queue_type \"%s\": expected classic or quorum", cfg->queue_type);
		return -1;
	}
	if (!cfg->updates_exchange[0] || !strcmp(cfg->updates_exchange, cfg->exchange) ||
		!strcmp(cfg->updates_exchange, cfg->dead_letter_exchange))
	{
		config_set_err(err, errlen,
					   "invalid updates_exchange \"%s\": it must be named, and differ from exchange and "
					   "dead_letter_exchange",
					   cfg->updates_exchange);
		return -1;
	}
	if (log_parse_level(cfg->log_level) < 0)
	{
		config_set_err(err, errlen, "invalid log_level \"%s\": expected error, warn, info or debug", cfg->log_level);
		return -1;
	}
	cfg->role_mask = 0;
	p = cfg->roles;
	while (p && *p && config_list_next(&p, &item, &n)) /* a trailing comma ends the list */
	{
		if (n == 9 && !strncmp(item, "publisher", 9))
			cfg->role_mask |= SC_ROLE_PUBLISHER;
		else if (n == 8 && !strncmp(item, "consumer", 8))
			cfg->role_mask |= SC_ROLE_CONSUMER;
		else if (n == 4 && !strncmp(item, "http", 4))
			cfg->role_mask |= SC_ROLE_HTTP;
		else
		{
			config_set_err(err, errlen,
						   "invalid roles \"%s\": expected a comma-separated list of publisher, consumer, http",
						   cfg->roles);
			return -1;
		}
	}
	if (cfg->role_mask == 0)
	{
		config_set_err(err, errlen, "invalid roles \"%s\": at least one of publisher, consumer, http is needed",
					   cfg->roles);
		return -1;
	}
	if ((cfg->role_mask & (SC_ROLE_PUBLISHER | SC_ROLE_CONSUMER)) &&
		config_amqp_url_normalise(&cfg->amqp_url, err, errlen) < 0)
		return -1;
	if (!cfg->pg_read_conninfo)
	{
		cfg->pg_read_conninfo = strdup(cfg->pg_conninfo);
		if (!cfg->pg_read_conninfo)
		{
			config_set_err(err, errlen, "out of memory");
			return -1;
		}
	}
	if (check_conninfo("pg_conninfo", cfg->pg_conninfo, err, errlen) < 0 ||
		check_conninfo("pg_read_conninfo", cfg->pg_read_conninfo, err, errlen) < 0)
		return -1;
	if ((cfg->role_mask & SC_ROLE_HTTP) && cfg->http_listen[0])
	{
		const char *colon = strrchr(cfg->http_listen, ':');
		char *end;
		long port;

		errno = 0;
		port = colon ? strtol(colon + 1, &end, 10) : 0;
		if (!colon || colon == cfg->http_listen || errno || *end || end == colon + 1 || port < 1 || port > 65535)
		{
			config_set_err(err, errlen, "invalid http_listen \"%s\": expected host:port", cfg->http_listen);
			return -1;
		}
	}
	return 0;
}

/*
 * First pass over argv: -c/--config (into *file), --help, --version,
 * --check-config; every other --key is only checked to be a setting (its value
 * is applied by apply_flags, after the file and the environment).  1 when
 * --help/--version answered, -1 on a bad argument, else 0.
 */
static int
scan_args(struct sc_config *cfg, int argc, char **argv, const char **file, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		const char *eq;

		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
		{
			print_help();
			return 1;
		}
		if (!strcmp(a, "--version") || !strcmp(a, "-V"))
		{
			printf("sharecount-bridge %s\n", SHARECOUNT_VERSION);
			return 1;
		}
		if (!strcmp(a, "--check-config") || !strcmp(a, "--check_config"))
			cfg->check_only = 1;
		else if (!strcmp(a, "-c") || !strcmp(a, "--config"))
		{
			if (i + 1 >= argc)
				return config_set_err(err, errlen, "%s needs a file name", a), -1;
			*file = argv[++i];
		}
		else if (!strncmp(a, "--config=", 9))
			*file = a + 9;
		else if (!strncmp(a, "--", 2))
		{
			eq = strchr(a + 2, '=');
			if (!find_setting(a + 2, eq ? (size_t) (eq - a - 2) : strlen(a + 2)))
				return config_set_err(err, errlen, "unknown option \"%s\" (see --help)", a), -1;
			if (!eq && ++i >= argc)
				return config_set_err(err, errlen, "option %s needs a value", a), -1;
		}
		else
			return config_set_err(err, errlen, "unexpected argument \"%s\" (see --help)", a), -1;
	}
	return 0;
}

/* Second pass: --key=value / --key value (scan_args checked them), over the file and environment. */
static int
apply_flags(struct sc_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];
		const char *eq;
		const struct setting *s;

		if (!strcmp(a, "-c") || !strcmp(a, "--config"))
		{
			i++;
			continue;
		}
		if (!strncmp(a, "--config=", 9) || !strcmp(a, "--check-config") || !strcmp(a, "--check_config"))
			continue;
		eq = strchr(a + 2, '=');
		s = find_setting(a + 2, eq ? (size_t) (eq - a - 2) : strlen(a + 2));
		if (set_value(cfg, s, eq ? eq + 1 : argv[++i], a, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int
config_load(struct sc_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	const char *file = NULL;
	int explicit_file, rc;

	memset(cfg, 0, sizeof(*cfg));
	err[0] = '\0';

	/* defaults */
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].def && set_value(cfg, &settings[i], settings[i].def, "default", err, errlen) < 0)
			return -1;
	if ((rc = scan_args(cfg, argc, argv, &file, err, errlen)) != 0)
		return rc;
	if (!file)
		file = getenv("SHARECOUNT_CONFIG");
	explicit_file = file != NULL;
	if (!file)
		file = DEFAULT_CONFIG_FILE;
	cfg->config_file = strdup(file);
	if (!cfg->config_file)
	{
		config_set_err(err, errlen, "out of memory");
		return -1;
	}
	if (load_file(cfg, file, explicit_file, err, errlen) < 0 || load_env(cfg, err, errlen) < 0 ||
		apply_flags(cfg, argc, argv, err, errlen) < 0)
		return -1;
	return validate(cfg, err, errlen);
}

void
config_free(struct sc_config *cfg)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].type == T_STR)
		{
			char **f = str_field(cfg, &settings[i]);

			free(*f);
			*f = NULL;
		}
	free(cfg->config_file);
	cfg->config_file = NULL;
}

void
config_print(const struct sc_config *cfg)
{
	printf("# effective configuration (config file: %s)\n", cfg->config_file ? cfg->config_file : "-");
	for (size_t i = 0; i < NSETTINGS; i++)
	{
		const struct setting *s = &settings[i];

		if (s->type == T_INT)
			printf("%s = %d\n", s->name, *int_field((struct sc_config *) cfg, s));
		else
		{
			const char *v = *str_field((struct sc_config *) cfg, s);
			char red[4096];

			if (!v)
				v = "";
			if (s->secret && strcmp(s->name, "amqp_url") == 0)
				config_redact_list(v, red, sizeof(red)); /* a list of URLs */
			else if (s->secret)
				log_redact(v, red, sizeof(red)); /* one conninfo or URI */
			else
				snprintf(red, sizeof(red), "%s", v);
			for (char *c = red; *c; c++) /* one line per setting */
				if ((unsigned char) *c < 0x20 || *c == 0x7f)
					*c = '?';
			printf("%s = \"%s\"\n", s->name, red);
		}
	}
}

/* The table, for config_reload.c (config_table.h). */
const struct setting *
config_settings(size_t *n)
{
	*n = NSETTINGS;
	return settings;
}
