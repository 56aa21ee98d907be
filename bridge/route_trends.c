/*
 * route_trends.c — the query strings of the breakdown, history and top
 * routes (docs/http.md "Channels and trends"): `by` on a single count,
 * `since`, `until`, `bucket` on /share-links/history, `window`, `limit` on
 * /share-links/top; ISO 8601 times in and out.  See route.h.
 *
 * Rules: pure functions, no globals, no I/O, no allocation that outlives a
 * call (a decoded value is freed before returning); everything parsed lands
 * in r->trends, whose SQL parameters are fixed buffers (struct route is
 * copied by value).  Error messages never include the request's bytes.
 * Times are Unix milliseconds, UTC, from 1970 to 9999; calendar arithmetic
 * is proleptic Gregorian (days_from_civil, civil_from_days).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

#define MS_PER_MIN 60000LL
#define MS_PER_HOUR 3600000LL
#define MS_PER_DAY 86400000LL
/* 10000-01-01T00:00:00Z in Unix ms: times must be before it (four-digit years) */
#define TIME_END_MS 253402300800000LL
/* longest window number: 6 digits (90 days is 129600 minutes) */
#define WINDOW_MAX_DIGITS 6
/* longest limit number: 3 digits (at most 100) */
#define LIMIT_MAX_DIGITS 3
/* fraction of a second: at most 9 digits (nanoseconds), milliseconds kept */
#define FRACTION_MAX_DIGITS 9

/*
 * One query parameter: its name, the route taking it, and either its parser
 * or its words (the value must be one of them: words[i] sets the int at
 * `field` of struct route_trends to base + i); the 400 message for a bad
 * format.
 */
struct param
{
	const char *name;
	enum route_kind kind;
	int (*parse)(struct route *r, const char *value); /* 0 ok; -1 bad format; else failed already */
	const char *format;
	const char *const *words; /* NULL-ended */
	size_t field;
	int base;
};

static const char *const dim_words[] = {"channel", "campaign", NULL};
static const char *const bucket_words[] = {"hour", "day", NULL};

static int parse_since(struct route *r, const char *v);
static int parse_until(struct route *r, const char *v);
static int parse_window(struct route *r, const char *v);
static int parse_limit(struct route *r, const char *v);

/* The parameters, by their bit in r->trends.seen. */
enum
{
	P_BY,
	P_SINCE,
	P_UNTIL,
	P_BUCKET,
	P_WINDOW,
	P_LIMIT
};

static const struct param params[] = {
	[P_BY] = {"by", ROUTE_COUNT, NULL, "by must be channel or campaign", dim_words, offsetof(struct route_trends, dim),
			  ROUTE_DIM_CHANNEL},
	[P_SINCE] = {"since", ROUTE_HISTORY, parse_since,
				 "since must be an ISO 8601 time with a time zone, such as 2026-12-02T10:00:00Z, or a date", NULL, 0,
				 0},
	[P_UNTIL] = {"until", ROUTE_HISTORY, parse_until,
				 "until must be an ISO 8601 time with a time zone, such as 2026-12-02T10:00:00Z, or a date", NULL, 0,
				 0},
	[P_BUCKET] = {"bucket", ROUTE_HISTORY, NULL, "bucket must be hour or day", bucket_words,
				  offsetof(struct route_trends, bucket), ROUTE_BUCKET_HOUR},
	[P_WINDOW] = {"window", ROUTE_TOP, parse_window,
				  "window must be a whole number of minutes, hours or days, such as 90m, 24h or 7d", NULL, 0, 0},
	[P_LIMIT] = {"limit", ROUTE_TOP, parse_limit, "limit must be a whole number from 1 to " SC_STR(ROUTE_TOP_MAX_LIMIT),
				 NULL, 0, 0},
};
#define NPARAMS (sizeof(params) / sizeof(params[0]))

/* ------------------------------------------------------------- calendar -- */

static int
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return days[m - 1] + (m == 2 && leap(y));
}

/* Days since 1970-01-01 of a Gregorian date (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	int64_t yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The date of a day count since 1970-01-01 (the inverse of days_from_civil). */
static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yoe + era * 400 + (*m <= 2));
}

/* ---------------------------------------------------------------- times -- */

/* Exactly n decimal digits at *p into *out, advancing *p; 0, or -1. */
static int
take_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++)
	{
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* The character c at *p, advancing *p; 0, or -1. */
static int
take_char(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

/* ".f…" or ",f…" at *p: the milliseconds (more digits dropped); 0, or -1. */
static int
take_fraction(const char **p, int *ms)
{
	int n = 0;

	*ms = 0;
	if (**p != '.' && **p != ',')
		return 0;
	for ((*p)++; **p >= '0' && **p <= '9'; (*p)++, n++)
		if (n < 3)
			*ms = *ms * 10 + (**p - '0');
	if (n == 0 || n > FRACTION_MAX_DIGITS)
		return -1;
	for (; n < 3; n++)
		*ms *= 10;
	return 0;
}

/* The zone at *p: Z, or +hh[[:]mm] / -hh[[:]mm] (' ' read as '+'); minutes east of UTC; 0, or -1. */
static int
take_zone(const char **p, int *minutes)
{
	int sign, oh, om = 0;

	*minutes = 0;
	if (**p == 'Z' || **p == 'z')
	{
		(*p)++;
		return 0;
	}
	if (**p != '+' && **p != '-' && **p != ' ')
		return -1;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if (take_digits(p, 2, &oh) < 0)
		return -1;
	if (**p == ':')
		(*p)++;
	if (**p != '\0' && take_digits(p, 2, &om) < 0)
		return -1;
	if (oh > 23 || om > 59)
		return -1;
	*minutes = sign * (oh * 60 + om);
	return 0;
}

int
route_parse_time(const char *s, int64_t *ms)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, zone = 0;

	if (take_digits(&p, 4, &y) < 0 || take_char(&p, '-') < 0 || take_digits(&p, 2, &mo) < 0 || take_char(&p, '-') < 0 ||
		take_digits(&p, 2, &d) < 0)
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo))
		return -1;
	if (*p != '\0')
	{
		if (*p != 'T' && *p != 't' && *p != ' ')
			return -1;
		p++;
		if (take_digits(&p, 2, &h) < 0 || take_char(&p, ':') < 0 || take_digits(&p, 2, &mi) < 0)
			return -1;
		if (*p == ':' && (p++, take_digits(&p, 2, &sec) < 0 || take_fraction(&p, &frac) < 0))
			return -1;
		if (h > 23 || mi > 59 || sec > 59 || take_zone(&p, &zone) < 0 || *p != '\0')
			return -1;
	}
	*ms = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - zone * 60) * 1000LL + frac;
	return 0;
}

void
route_format_time(int64_t ms, char out[ROUTE_TIME_LEN])
{
	int64_t days = ms >= 0 ? ms / MS_PER_DAY : -((-ms + MS_PER_DAY - 1) / MS_PER_DAY);
	int64_t rest = ms - days * MS_PER_DAY;
	int y, m, d;
	char buf[64]; /* room for any int the compiler cannot bound */

	civil_from_days(days, &y, &m, &d);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y % 10000, m, d, (int) (rest / MS_PER_HOUR),
			 (int) (rest / MS_PER_MIN % 60), (int) (rest / 1000 % 60), (int) (rest % 1000));
	memcpy(out, buf, ROUTE_TIME_LEN - 1); /* always 24 bytes for years 0001-9999 */
	out[ROUTE_TIME_LEN - 1] = '\0';
}

/* ------------------------------------------------------------ parameters -- */

/* since or until: a time from 1970 to 9999. */
static int
parse_bound(struct route *r, const char *name, const char *v, int64_t *ms)
{
	if (route_parse_time(v, ms) < 0)
		return -1;
	if (*ms < 0 || *ms >= TIME_END_MS)
		return route_fail(r, 400, "%s must be from 1970 to 9999", name);
	return 0;
}

static int
parse_since(struct route *r, const char *v)
{
	return parse_bound(r, "since", v, &r->trends.since_ms);
}

static int
parse_until(struct route *r, const char *v)
{
	return parse_bound(r, "until", v, &r->trends.until_ms);
}

/* A number of 1..max_digits decimal digits, then the rest at *end; -1 if none. */
static int64_t
leading_number(const char *v, int max_digits, const char **end)
{
	int64_t n = 0;
	int k = 0;

	for (; v[k] >= '0' && v[k] <= '9'; k++)
		if (k < max_digits)
			n = n * 10 + (v[k] - '0');
	*end = v + k;
	return k == 0 || k > max_digits ? -1 : n;
}

static int
parse_window(struct route *r, const char *v)
{
	const char *unit;
	int64_t n = leading_number(v, WINDOW_MAX_DIGITS, &unit);
	int64_t per = unit[0] == 'm' ? 1 : unit[0] == 'h' ? 60 : unit[0] == 'd' ? 24 * 60 : 0;

	if (n < 1 || per == 0 || unit[1] != '\0')
		return -1;
	if (n * per > ROUTE_MAX_WINDOW_MIN)
		return route_fail(r, 400, "window is longer than 90 days");
	r->trends.window_min = n * per;
	r->trends.window_unit = unit[0];
	return 0;
}

static int
parse_limit(struct route *r, const char *v)
{
	const char *end;
	int64_t n = leading_number(v, LIMIT_MAX_DIGITS, &end);

	if (n < 1 || n > ROUTE_TOP_MAX_LIMIT || *end != '\0')
		return -1;
	r->trends.limit = (int) n;
	return 0;
}

/* A parameter whose value is one of its words. */
static int
parse_word(struct route *r, const struct param *p, const char *v)
{
	for (int i = 0; p->words[i]; i++)
		if (strcmp(v, p->words[i]) == 0)
		{
			*(int *) ((char *) &r->trends + p->field) = p->base + i;
			return 0;
		}
	return -1;
}

int
route_trends_arg(struct route *r, const char *key, const char *value)
{
	const char *raw = value ? value : "";
	size_t i, len = strlen(raw);
	char *v;
	int rc;

	if (r->kind != ROUTE_COUNT && r->kind != ROUTE_HISTORY && r->kind != ROUTE_TOP)
		return 0;
	for (i = 0; i < NPARAMS; i++)
		if (params[i].kind == r->kind && strcmp(key, params[i].name) == 0)
			break;
	if (i == NPARAMS)
	{
		if (r->kind == ROUTE_COUNT)
			return 0; /* a count ignores other parameters, as it always has */
		return route_fail(r, 400, "unknown query parameter: %s",
						  r->kind == ROUTE_HISTORY ? "/share-links/history takes since, until and bucket" :
													 "/share-links/top takes window and limit");
	}
	if (r->trends.seen & (1u << i))
		return route_fail(r, 400, "%s must be given once", params[i].name);
	r->trends.seen |= 1u << i;
	if (len > ROUTE_MAX_QUERY_VALUE)
		return route_fail(r, 400, "%s is longer than %d bytes", params[i].name, ROUTE_MAX_QUERY_VALUE);
	if (len == 0)
		return route_fail(r, 400, "%s", params[i].format);
	v = route_decode_field(r, params[i].name, raw, len, ROUTE_MAX_QUERY_VALUE);
	if (!v)
		return r->status;
	rc = params[i].parse ? params[i].parse(r, v) : parse_word(r, &params[i], v);
	free(v);
	if (rc < 0)
		return route_fail(r, 400, "%s", params[i].format);
	return r->status;
}

/* HISTORY: defaults, since <= until, the bucket count; the SQL parameters since, until, bucket. */
static int
finish_history(struct route *r, int64_t now_ms)
{
	struct route_trends *t = &r->trends;
	int day = t->bucket == ROUTE_BUCKET_DAY;
	int64_t per = day ? MS_PER_DAY : MS_PER_HOUR;

	if (!(t->seen & (1u << P_UNTIL)))
		t->until_ms = now_ms;
	if (!(t->seen & (1u << P_SINCE)))
	{
		t->since_ms = t->until_ms - (day ? ROUTE_HISTORY_DEFAULT_DAYS_MS : ROUTE_HISTORY_DEFAULT_HOURS_MS);
		if (t->since_ms < 0)
			t->since_ms = 0;
	}
	if (t->since_ms > t->until_ms)
		return route_fail(r, 400, "since is after until");
	if (t->until_ms / per - t->since_ms / per + 1 > ROUTE_MAX_HISTORY_BUCKETS)
		return route_fail(r, 400, "since to until spans more than %d %s", ROUTE_MAX_HISTORY_BUCKETS,
						  day ? "days" : "hours");
	route_format_time(t->since_ms, t->arg[0]);
	route_format_time(t->until_ms, t->arg[1]);
	snprintf(t->arg[2], sizeof(t->arg[2]), "%s", day ? "day" : "hour");
	return 0;
}

int
route_trends_finish(struct route *r, int64_t now_ms)
{
	struct route_trends *t = &r->trends;

	if (r->status != 0)
		return r->status;
	switch (r->kind)
	{
		case ROUTE_COUNT:
			if (t->dim == ROUTE_DIM_NONE)
				return 0;
			r->kind = ROUTE_BREAKDOWN;
			snprintf(t->arg[0], sizeof(t->arg[0]), "%s", t->dim == ROUTE_DIM_CHANNEL ? "channel" : "campaign");
			return 0;
		case ROUTE_HISTORY:
			return finish_history(r, now_ms);
		case ROUTE_TOP:
			if (t->window_min == 0)
			{
				t->window_min = ROUTE_TOP_DEFAULT_WINDOW_MIN;
				t->window_unit = 'h';
			}
			if (t->limit == 0)
				t->limit = ROUTE_TOP_DEFAULT_LIMIT;
			snprintf(t->arg[0], sizeof(t->arg[0]), "%lld minutes", (long long) t->window_min);
			snprintf(t->arg[1], sizeof(t->arg[1]), "%d", t->limit);
			return 0;
		default:
			return 0;
	}
}

void
route_trends_args(const struct route *r, const char *args[ROUTE_TRENDS_NARGS])
{
	for (int i = 0; i < ROUTE_TRENDS_NARGS; i++)
		args[i] = r->trends.arg[i];
}
