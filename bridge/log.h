/*
 * log.h — leveled logging to stderr, one line per event (journald adds its
 * own timestamp; we print one anyway for plain terminals).  Thread-safe: each
 * line is formatted into a buffer and written with one write(2).
 *
 * Rules: a role thread names itself once, first thing, with log_set_role();
 * every line it logs then reads "<time> <LEVEL> <role>: <message>", so no
 * call types its role by hand.  Context below the role (which connection) is
 * a macro's argument, never typed either (amqp.h's SC_AMQP_LOG).  Never pass
 * a password or a full conninfo/URL: use log_redact().
 */
#ifndef SC_LOG_H
#define SC_LOG_H

#include <stddef.h>

enum sc_log_level
{
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG
};

void log_set_level(enum sc_log_level lvl);
enum sc_log_level log_get_level(void);
/* "error" | "warn" | "warning" | "info" | "debug" -> level; -1 if unknown */
int log_parse_level(const char *name);

/*
 * This thread's role ("publisher", "consumer", "http", "dlq"), printed as
 * "role: " before each of its messages; NULL (the default): no prefix.  role
 * must outlive the thread (a string literal).  A message that already starts
 * with "role: " is not prefixed twice.
 */
void log_set_role(const char *role);

void log_msg(enum sc_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do \
	{ \
		if (log_get_level() >= LOG_LVL_DEBUG) \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__); \
	} while (0)

/*
 * Copy a URL or libpq conninfo into buf with any password replaced by "***":
 * amqp://user:secret@host -> amqp://user:***@host; "password=x" -> "password=***".
 */
void log_redact(const char *in, char *buf, size_t buflen);

#endif
