/*
 * config_url.c — the list half of the bridge's configuration (see
 * config_url.h): comma-separated lists (roles, amqp_url), amqp_url's check
 * and normalisation, its redaction for config_print, and the one-line error
 * every config function reports through.  Split from config.c (file size).
 *
 * Rules: no globals; errors are ONE line in the caller's buffer (control
 * characters of a quoted value shown as '?'); strings returned are malloc'ed
 * and owned by the caller.  amqp_parse_url writes into its input, so it only
 * ever gets a copy.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "config_url.h"
#include "log.h"

/*
 * The one-line error.  Messages quote the offending value, which may come
 * from a flag or an environment variable holding a newline: control
 * characters are shown as '?' so the message stays one line.
 */
void
config_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (char *c = err; errlen && *c; c++)
		if ((unsigned char) *c < 0x20 || *c == 0x7f)
			*c = '?';
}

/*
 * Check one amqp_url entry the way the connection code will parse it, so a
 * typo fails at start (exit 2) instead of looping in reconnect.
 */
static int
check_amqp_url(const char *url, size_t len, char *err, size_t errlen)
{
	char *copy = strndup(url, len);
	struct amqp_connection_info info;
	int rc;
	char red[512];

	if (!copy)
	{
		config_set_err(err, errlen, "out of memory");
		return -1;
	}
	amqp_default_connection_info(&info);
	rc = amqp_parse_url(copy, &info);
	if (rc != AMQP_STATUS_OK || len == 0)
	{
		char *c2 = strndup(url, len);

		log_redact(c2 ? c2 : "", red, sizeof(red));
		config_set_err(err, errlen, "invalid amqp_url \"%s\": expected amqp[s]://user:pass@host[:port][/vhost]", red);
		free(c2);
		free(copy);
		return -1;
	}
	free(copy);
	return 0;
}

/*
 * The next item of a comma-separated list (roles, amqp_url), spaces around
 * it trimmed: sets *item and *len and moves *cursor past the comma (NULL after
 * the last item).  Returns 0 once the list is exhausted.
 */
int
config_list_next(const char **cursor, const char **item, size_t *len)
{
	const char *p = *cursor;
	const char *e;
	size_t n;

	if (p == NULL)
		return 0;
	e = strchr(p, ',');
	n = e ? (size_t) (e - p) : strlen(p);
	while (n && isspace((unsigned char) *p))
		p++, n--;
	while (n && isspace((unsigned char) p[n - 1]))
		n--;
	*item = p;
	*len = n;
	*cursor = e ? e + 1 : NULL;
	return 1;
}

/*
 * Check every item of amqp_url (empty ones too: each must be a URL) and
 * rewrite the list as its trimmed items joined by bare commas, so that the
 * connection code (amqp.c), which splits on ',' and trims only spaces and
 * tabs, sees exactly the URLs checked here: a list folded over several lines
 * in an environment variable kept a newline in front of its next URL, which
 * then never parsed (docs/bridge.md, Configuration).
 */
int
config_amqp_url_normalise(char **amqp_url, char *err, size_t errlen)
{
	const char *p = *amqp_url;
	const char *item;
	size_t n, o = 0;
	char *norm;

	if (!*p)
	{
		config_set_err(err, errlen, "amqp_url is empty");
		return -1;
	}
	norm = malloc(strlen(p) + 1);
	if (!norm)
	{
		config_set_err(err, errlen, "out of memory");
		return -1;
	}
	while (config_list_next(&p, &item, &n))
	{
		if (check_amqp_url(item, n, err, errlen) < 0)
		{
			free(norm);
			return -1;
		}
		if (o)
			norm[o++] = ',';
		memcpy(norm + o, item, n);
		o += n;
	}
	norm[o] = '\0';
	free(*amqp_url);
	*amqp_url = norm;
	return 0;
}

/* log_redact each comma-separated entry (amqp_url may list several URLs). */
void
config_redact_list(const char *v, char *out, size_t outlen)
{
	size_t o = 0;

	out[0] = '\0';
	if (!strstr(v, "://"))
	{
		log_redact(v, out, outlen);
		return;
	}
	for (;;)
	{
		const char *e = strchr(v, ',');
		size_t n = e ? (size_t) (e - v) : strlen(v);
		char *one = strndup(v, n);
		char red[1024];

		log_redact(one ? one : "", red, sizeof(red));
		free(one);
		o += snprintf(out + o, o < outlen ? outlen - o : 0, "%s%s", red, e ? "," : "");
		if (!e || o >= outlen)
			break;
		v = e + 1;
	}
}
