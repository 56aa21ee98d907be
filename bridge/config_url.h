/*
 * config_url.h — comma-separated lists of the configuration (roles,
 * amqp_url) and the one-line error of config.c; see config_url.c.
 *
 * Rules: pure functions (no I/O, no globals); see config_url.c.
 */
#ifndef SC_CONFIG_URL_H
#define SC_CONFIG_URL_H

#include <stddef.h>

/* The one-line error: printf into err, control characters shown as '?'. */
void config_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The next item of a comma-separated list, spaces around it trimmed: sets
 * *item and *len and moves *cursor past the comma (NULL after the last
 * item).  Returns 0 once the list is exhausted.
 */
int config_list_next(const char **cursor, const char **item, size_t *len);

/*
 * Check every item of *amqp_url with amqp_parse_url (empty items too: each
 * must be a URL) and replace *amqp_url by its trimmed items joined by bare
 * commas.  0 on success; -1 with a one-line err.
 */
int config_amqp_url_normalise(char **amqp_url, char *err, size_t errlen);

/* log_redact each comma-separated URL of v into out. */
void config_redact_list(const char *v, char *out, size_t outlen);

#endif
