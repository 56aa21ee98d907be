/*
 * config.h — the bridge's settings (docs/bridge.md "Configuration").  config.c holds the one table of
 * settings (name, type, default, reloadable) in pgbouncer's style; this struct
 * is filled from it: defaults, then the file (-c, `key = value`), then
 * SHARECOUNT_<KEY> environment variables, then command-line flags.
 *
 * Rules: after config_load() returns, the struct is read-only for the role
 * threads (strings are owned by it; config_free() releases them).  Only the
 * main thread writes it afterwards, in config_reload() on SIGHUP: the ints
 * marked reloadable in config.c's table (docs/bridge.md "Reload") are stored
 * in place atomically, so a role reads them at each use, preferably with
 * SC_LIVE(), and never keeps a copy; strings the role threads read are never
 * reloadable.
 */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include <stddef.h>

#include "sc_limits.h"

/* Room for the lists in struct sc_reload_result (longer lists end in "..."). */
#define SC_RELOAD_MSG 2048

/*
 * A reloadable int setting as the role threads must read it: it may change
 * between two reads (SIGHUP), so read it once per use.
 */
#define SC_LIVE(cfg, field) __atomic_load_n(&(cfg)->field, __ATOMIC_RELAXED)

struct sc_config
{
	char *config_file;			/* -c; default /etc/sharecount/bridge.conf */
	char *pg_conninfo;			/* libpq conninfo or URI */
	char *pg_read_conninfo;		/* for the http role; defaults to pg_conninfo */
	int read_max_lag_ms;		/* replica lag past which reads go to the primary */
	int read_check_interval_ms; /* how often the replica's lag is checked */
	char *amqp_url;				/* amqp[s]://user:pass@host:port/vhost, comma-separated list allowed */
	char *amqp_cacert;			/* CA file for amqps:// */
	char *exchange;				/* "sharecount" */
	char *queue;				/* "sharecount.jobs" */
	char *dead_letter_exchange; /* "sharecount.dlx" */
	char *dead_letter_queue;	/* "sharecount.dead" */
	char *queue_type;			/* "classic" | "quorum" */
	int prefetch;				/* consumer basic.qos window */
	int apply_batch;			/* max deliveries applied in one transaction */
	int apply_linger_ms;		/* how long a partial batch waits for more deliveries */
	int publish_batch;			/* rows claimed from the outbox at once */
	int publish_pipeline;		/* claim transactions in flight at once (1 = sequential) */
	int confirm_timeout_ms;		/* give up on outstanding confirms after this; republish */
	int poll_interval_ms;		/* fallback outbox poll when no wake-up arrives */
	int max_delivery_attempts;	/* failed applies of one message alone before dead-lettering */
	int heartbeat_s;			/* AMQP heartbeat */
	int reconnect_max_ms;		/* cap of the exponential reconnect backoff */
	char *http_listen;			/* "host:port"; empty disables the http role */
	int http_pool_size;			/* PostgreSQL connections for the http role */
	int http_max_connections;	/* concurrent HTTP connections */
	int http_timeout_ms;		/* per-connection idle/request timeout */
	int http_db_timeout_ms;		/* give up on the database (503) after this */
	int http_conn_memory;		/* libmicrohttpd memory per connection (request line + headers) */
	char *http_allowed_origins; /* live routes: Origins allowed besides the page's own ("*": any) */
	int http_cache_entries;		/* keys the http role's count cache holds; 0 disables it */
	int http_cache_max_age_ms;	/* a cached count is served for less than this after a database read */
	char *updates_exchange;		/* "sharecount.updates": count-change events (docs/live.md) */
	int publish_events;			/* 1: the consumer publishes count-change events */
	char *roles;				/* "publisher,consumer,http" */
	unsigned role_mask;			/* SC_ROLE_* bits parsed from roles */
	char *log_level;			/* "info" */
	int check_only;				/* --check-config */
};

/*
 * Fill cfg from defaults, file, environment and argv.  Returns 0 on success;
 * 1 if --help or --version printed something and the process should exit 0;
 * -1 on a bad configuration with a one-line message in err (exit 2).
 */
int config_load(struct sc_config *cfg, int argc, char **argv, char *err, size_t errlen);
void config_free(struct sc_config *cfg);
/* What a reload did, for the log (docs/bridge.md "Reload"). */
struct sc_reload_result
{
	int nchanged;				 /* reloadable settings given a new value */
	char changed[SC_RELOAD_MSG]; /* "log_level info -> debug, ..." */
	int nrefused;				 /* other settings whose new value was ignored */
	char refused[SC_RELOAD_MSG]; /* "exchange (\"a\" -> \"b\"), pg_conninfo" */
};

/*
 * SIGHUP (main thread only): load the configuration again from the same
 * sources (file, SHARECOUNT_* environment, the original argv, in that order
 * of precedence) and merge it into cfg.  -1 with a one-line err if the new
 * configuration is bad: then cfg is unchanged.
 */
int config_reload(struct sc_config *cfg, int argc, char **argv, struct sc_reload_result *res, char *err, size_t errlen);
/*
 * The merge itself: every reloadable setting whose value differs in fresh is
 * moved into cfg and listed in res->changed; every other differing setting is
 * left alone and listed in res->refused (secret values are never shown).
 * fresh must be a validated configuration; it keeps what cfg gave up.
 */
void config_merge(struct sc_config *cfg, struct sc_config *fresh, struct sc_reload_result *res);
/* Print the effective configuration (passwords redacted) to stdout. */
void config_print(const struct sc_config *cfg);

#endif
