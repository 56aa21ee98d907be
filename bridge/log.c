/*
 * log.c — leveled logging to stderr (see log.h).  The level is a global read
 * without locking: a torn read of an int cannot happen on the platforms we
 * build for, and a stale level for one line is harmless.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Set at start and on SIGHUP by the main thread, read by every thread: relaxed atomics. */
static int	log_level = LOG_LVL_INFO;
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_set_level(enum sc_log_level lvl) { __atomic_store_n(&log_level, (int) lvl, __ATOMIC_RELAXED); }
enum sc_log_level log_get_level(void) { return (enum sc_log_level) __atomic_load_n(&log_level, __ATOMIC_RELAXED); }

int
log_parse_level(const char *name)
{
	if (!strcasecmp(name, "error")) return LOG_LVL_ERROR;
	if (!strcasecmp(name, "warn") || !strcasecmp(name, "warning")) return LOG_LVL_WARN;
	if (!strcasecmp(name, "info")) return LOG_LVL_INFO;
	if (!strcasecmp(name, "debug")) return LOG_LVL_DEBUG;
	return -1;
}

void
log_msg(enum sc_log_level lvl, const char *fmt, ...)
{
	char		line[2048];
	size_t		n;
	struct timespec ts;
	struct tm	tm;
	va_list		ap;

	if (lvl > log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000, level_names[lvl]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	n = strlen(line);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void
log_redact(const char *in, char *buf, size_t buflen)
{
	const char *scheme = strstr(in, "://");
	size_t		o = 0;

	if (buflen == 0)
		return;
	buf[0] = '\0';
	if (scheme)
	{
		/* URL form: hide what is between the first ':' after the scheme and '@' */
		const char *userinfo = scheme + 3;
		const char *at = strchr(userinfo, '@');
		const char *colon = at ? memchr(userinfo, ':', at - userinfo) : NULL;

		if (colon)
		{
			snprintf(buf, buflen, "%.*s:***%s", (int) (colon - in), in, at);
			return;
		}
		snprintf(buf, buflen, "%s", in);
		return;
	}
	/* conninfo form: key=value pairs; blank out password's value */
	while (*in && o + 1 < buflen)
	{
		if (!strncmp(in, "password", 8))
		{
			const char *p = in + 8;

			while (*p == ' ')
				p++;
			if (*p == '=')
			{
				p++;
				while (*p == ' ')
					p++;
				o += snprintf(buf + o, buflen - o, "password=***");
				if (*p == '\'')
				{
					p++;
					while (*p && *p != '\'')
						p += (*p == '\\' && p[1]) ? 2 : 1;
					if (*p)
						p++;
				}
				else
					while (*p && *p != ' ')
						p++;
				in = p;
				if (o >= buflen)
				{
					buf[buflen - 1] = '\0';
					return;
				}
				continue;
			}
		}
		buf[o++] = *in++;
	}
	buf[o < buflen ? o : buflen - 1] = '\0';
}
