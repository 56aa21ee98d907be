/*
 * log.c — leveled logging to stderr (see log.h).  The level is a global read
 * without locking: a torn read of an int cannot happen on the platforms we
 * build for, and a stale level for one line is harmless.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Set at start and on SIGHUP by the main thread, read by every thread: relaxed atomics. */
static int log_level = LOG_LVL_INFO;
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
/* The calling thread's role (log_set_role), a string literal; NULL: none. */
static _Thread_local const char *log_role;

void
log_set_level(enum sc_log_level lvl)
{
	__atomic_store_n(&log_level, (int) lvl, __ATOMIC_RELAXED);
}
enum sc_log_level
log_get_level(void)
{
	return (enum sc_log_level) __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void
log_set_role(const char *role)
{
	log_role = role;
}

int
log_parse_level(const char *name)
{
	if (!strcasecmp(name, "error"))
		return LOG_LVL_ERROR;
	if (!strcasecmp(name, "warn") || !strcasecmp(name, "warning"))
		return LOG_LVL_WARN;
	if (!strcasecmp(name, "info"))
		return LOG_LVL_INFO;
	if (!strcasecmp(name, "debug"))
		return LOG_LVL_DEBUG;
	return -1;
}

void
log_msg(enum sc_log_level lvl, const char *fmt, ...)
{
	char line[2048];
	size_t n, role_len = 0;
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (lvl > log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000, level_names[lvl]);
	if (log_role)
		role_len = (size_t) snprintf(line + n, sizeof(line) - n, "%s: ", log_role);
	va_start(ap, fmt);
	vsnprintf(line + n + role_len, sizeof(line) - n - role_len, fmt, ap);
	va_end(ap);
	/* a message that names its role itself: drop ours */
	if (role_len && strncmp(line + n, line + n + role_len, role_len) == 0)
		memmove(line + n, line + n + role_len, strlen(line + n + role_len) + 1);
	n = strlen(line);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

/* Whether in[0..len) percent-decodes to "password" (a libpq URI query key). */
static int
is_password_key(const char *in, size_t len)
{
	static const char want[] = "password";
	size_t i = 0, k = 0;

	while (i < len && k < sizeof(want) - 1)
	{
		int c = (unsigned char) in[i];

		if (c == '%' && i + 2 < len && isxdigit((unsigned char) in[i + 1]) && isxdigit((unsigned char) in[i + 2]))
		{
			char hex[3] = {in[i + 1], in[i + 2], '\0'};

			c = (int) strtol(hex, NULL, 16);
			i += 2;
		}
		if (c != want[k++])
			return 0;
		i++;
	}
	return i == len && k == sizeof(want) - 1;
}

/*
 * URL form: hide what is between the first ':' after the scheme and '@'
 * (amqp://user:secret@host, postgresql://user:secret@host) and the value of
 * a `password` query parameter (postgresql://host/db?password=secret).
 */
static void
redact_url(const char *in, const char *userinfo, char *buf, size_t buflen)
{
	/* user:password@ ends before the path, as libpq and rabbitmq-c read it */
	const char *at = memchr(userinfo, '@', strcspn(userinfo, "/"));
	const char *colon = at ? memchr(userinfo, ':', at - userinfo) : NULL;
	const char *p = in;
	size_t o = 0;

	while (*p && o + 1 < buflen)
	{
		if (p == colon)
		{
			o += snprintf(buf + o, buflen - o, ":***");
			p = at;
			continue;
		}
		if ((!at || p > at) && (*p == '?' || *p == '&'))
		{
			size_t klen = strcspn(p + 1, "=&#");

			if (p[1 + klen] == '=' && is_password_key(p + 1, klen))
			{
				o += snprintf(buf + o, buflen - o, "%c%.*s=***", *p, (int) klen, p + 1);
				p += 2 + klen;
				p += strcspn(p, "&#");
				continue;
			}
		}
		buf[o++] = *p++;
	}
	buf[o < buflen ? o : buflen - 1] = '\0';
}

/*
 * Length of the "scheme://" that starts s, 0 if s is not a URL: a conninfo
 * whose values contain "://" (password=a://b) is still a conninfo.
 */
static size_t
url_prefix(const char *s)
{
	size_t n = 0;

	if (!isalpha((unsigned char) s[0]))
		return 0;
	while (isalnum((unsigned char) s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')
		n++;
	return strncmp(s + n, "://", 3) == 0 ? n + 3 : 0;
}

void
log_redact(const char *in, char *buf, size_t buflen)
{
	size_t scheme = url_prefix(in);
	size_t o = 0;

	if (buflen == 0)
		return;
	buf[0] = '\0';
	if (scheme)
	{
		redact_url(in, in + scheme, buf, buflen);
		return;
	}
	/*
	 * conninfo form: key=value pairs (libpq allows spaces around '=', quotes
	 * and backslash escapes in quoted and bare values); blank out password's
	 * value.
	 */
	while (*in && o + 1 < buflen)
	{
		if (!strncmp(in, "password", 8))
		{
			const char *p = in + 8;

			while (isspace((unsigned char) *p))
				p++;
			if (*p == '=')
			{
				p++;
				while (isspace((unsigned char) *p))
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
					while (*p && !isspace((unsigned char) *p))
						p += (*p == '\\' && p[1]) ? 2 : 1;
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
