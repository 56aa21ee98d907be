/*
 * test_route_trends.c — unit tests for bridge/route_trends.c and the trends
 * paths of bridge/route.c (docs/http.md "Channels and trends"): routing of
 * /share-links/history and /share-links/top, `by` on a count, since/until
 * (ISO 8601 in every accepted form, and the rejected ones), bucket, window,
 * limit, defaults, the checks across parameters, and the SQL parameters
 * built.  Plain program: exit 0 = pass; every failed check prints one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "unit.h"

/* 2026-12-02T10:30:00.000Z, the "now" of these tests */
#define NOW_MS 1796207400000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

/*
 * Route GET path?query as http.c does: route_parse, each '&'-separated
 * parameter to route_trends_arg (no '=': value NULL), route_trends_finish.
 */
static int
parse(struct route *r, const char *path, const char *query)
{
	char buf[1024];
	char *save = NULL, *piece;

	if (route_parse("GET", path, NULL, 0, r) != 0)
		return r->status;
	snprintf(buf, sizeof(buf), "%s", query);
	for (piece = strtok_r(buf, "&", &save); piece; piece = strtok_r(NULL, "&", &save))
	{
		char *eq = strchr(piece, '=');

		if (eq)
			*eq = '\0';
		if (route_trends_arg(r, piece, eq ? eq + 1 : NULL) != 0)
			return r->status;
	}
	return route_trends_finish(r, NOW_MS);
}

static void
expect_400(const char *path, const char *query, const char *msg)
{
	struct route r;
	int st = parse(&r, path, query);

	CHECK(st == 400 && r.status == 400, "%s?%s: status %d, want 400 (%s)", path, query, st, r.message);
	CHECK(strstr(r.message, msg) != NULL, "%s?%s: message \"%s\" lacks \"%s\"", path, query, r.message, msg);
	route_free(&r);
}

/* A time parses to want_ms. */
static void
expect_time(const char *s, long long want_ms)
{
	int64_t ms = -1;

	CHECK(route_parse_time(s, &ms) == 0 && ms == want_ms, "time \"%s\": %lld, want %lld", s, (long long) ms, want_ms);
}

static void
expect_bad_time(const char *s)
{
	int64_t ms;

	CHECK(route_parse_time(s, &ms) < 0, "time \"%s\" accepted", s);
}

static void
test_times(void)
{
	char out[ROUTE_TIME_LEN];
	int64_t ms, t;

	expect_time("2026-12-02T10:30:00Z", NOW_MS);
	expect_time("2026-12-02T10:30:00.000Z", NOW_MS);
	expect_time("2026-12-02T10:30Z", NOW_MS);
	expect_time("2026-12-02t10:30:00z", NOW_MS);
	expect_time("2026-12-02 10:30:00Z", NOW_MS);
	expect_time("2026-12-02T10:30:00.1Z", NOW_MS + 100);
	expect_time("2026-12-02T10:30:00,25Z", NOW_MS + 250);
	expect_time("2026-12-02T10:30:00.123456789Z", NOW_MS + 123);
	expect_time("2026-12-02T11:30:00+01:00", NOW_MS);
	expect_time("2026-12-02T11:30:00 01:00", NOW_MS); /* a raw '+' arrives as a space */
	expect_time("2026-12-02T11:30:00+0100", NOW_MS);
	expect_time("2026-12-02T11:30:00+01", NOW_MS);
	expect_time("2026-12-02T05:00:00-05:30", NOW_MS);
	expect_time("2026-12-02", NOW_MS - 10 * HOUR_MS - 30 * 60000);
	expect_time("1970-01-01T00:00:00Z", 0);
	expect_time("2024-02-29", 1709164800000LL);
	expect_time("2000-02-29T23:59:59.999Z", 951868799999LL);
	expect_time("9999-12-31T23:59:59.999Z", 253402300799999LL);

	expect_bad_time("");
	expect_bad_time("2026-12-02T10:30:00");	  /* no zone */
	expect_bad_time("2026-12-02T10:30:00.Z"); /* empty fraction */
	expect_bad_time("2026-12-02T10:30:00.1234567890Z");
	expect_bad_time("2026-12-02T10:30:00Zx");
	expect_bad_time("2026-12-02T24:00:00Z");
	expect_bad_time("2026-12-02T10:60:00Z");
	expect_bad_time("2026-12-02T10:30:60Z");
	expect_bad_time("2026-12-02T10:30:00+24:00");
	expect_bad_time("2026-12-02T10:30:00+01:60");
	expect_bad_time("2026-12-02T10:30:00+1");
	expect_bad_time("2026-13-01");
	expect_bad_time("2026-00-01");
	expect_bad_time("2026-11-31");
	expect_bad_time("2023-02-29");
	expect_bad_time("1900-02-29");
	expect_bad_time("0000-01-01");
	expect_bad_time("26-12-02");
	expect_bad_time("2026-12-2");
	expect_bad_time("2026/12/02");
	expect_bad_time("2026-12-02T");
	expect_bad_time("2026-12-02T10");
	expect_bad_time("2026-12-02T10:3Z");
	expect_bad_time("yesterday");
	expect_bad_time("1764671400000");

	route_format_time(0, out);
	CHECK(strcmp(out, "1970-01-01T00:00:00.000Z") == 0, "format 0: %s", out);
	route_format_time(NOW_MS + 7, out);
	CHECK(strcmp(out, "2026-12-02T10:30:00.007Z") == 0, "format now+7: %s", out);
	route_format_time(253402300799999LL, out);
	CHECK(strcmp(out, "9999-12-31T23:59:59.999Z") == 0, "format the last ms: %s", out);
	/* format and parse are inverse over 1970..9999, every day crossing leap years */
	for (t = 0; t < 253402300800000LL; t += 86399999LL * 37 + 12345)
	{
		route_format_time(t, out);
		if (route_parse_time(out, &ms) != 0 || ms != t)
		{
			CHECK(0, "round trip of %lld: %s -> %lld", (long long) t, out, (long long) ms);
			break;
		}
	}
}

static void
test_paths(void)
{
	int st;
	struct route r;

	st = parse(&r, "/share-links/history/article/a%2Fb", "");
	CHECK(st == 0 && r.kind == ROUTE_HISTORY && strcmp(r.content_type, "article") == 0 &&
			  strcmp(r.content_id, "a/b") == 0,
		  "history path: %d %s", r.status, r.message);
	route_free(&r);
	st = parse(&r, "/share-links/top/article", "");
	CHECK(st == 0 && r.kind == ROUTE_TOP && strcmp(r.content_type, "article") == 0 && r.content_id == NULL,
		  "top path: %d %s", r.status, r.message);
	route_free(&r);
	st = route_parse("HEAD", "/share-links/top/article", NULL, 0, &r);
	CHECK(st == 0 && r.kind == ROUTE_TOP, "HEAD top");
	route_free(&r);
	expect_400("/share-links/history/article", "", "expected /share-links/history/:contentType/:contentId");
	expect_400("/share-links/history/article/1/x", "", "too many path segments");
	expect_400("/share-links/top/article/1", "", "too many path segments: expected /share-links/top/:contentType");
	expect_400("/share-links/top/", "", "contentType must not be empty");
	expect_400("/share-links/history/article/%zz", "", "contentId has an invalid percent-encoding");
	CHECK(route_parse("POST", "/share-links/top/article", NULL, 0, &r) == 405 && strcmp(r.allow, ROUTE_ALLOW) == 0,
		  "POST top");
	route_free(&r);
	CHECK(route_parse("DELETE", "/share-links/history/a/b", NULL, 0, &r) == 405, "DELETE history");
	route_free(&r);
	CHECK(route_parse("GET", "/share-links/tops/article", NULL, 0, &r) == 404, "tops");
	route_free(&r);
	CHECK(route_parse("GET", "/share-links/histor/a/b", NULL, 0, &r) == 404, "histor");
	route_free(&r);
}

static void
test_breakdown(void)
{
	int st;
	struct route r;
	const char *args[ROUTE_TRENDS_NARGS];

	st = parse(&r, "/share-links/count/article/1", "by=channel");
	CHECK(st == 0 && r.kind == ROUTE_BREAKDOWN && r.trends.dim == ROUTE_DIM_CHANNEL, "by=channel: %d %s", r.status,
		  r.message);
	route_trends_args(&r, args);
	CHECK(strcmp(args[0], "channel") == 0, "by=channel arg: %s", args[0]);
	route_free(&r);
	st = parse(&r, "/share-links/count/article/1", "x=1&by=campaign&_=123");
	CHECK(st == 0 && r.kind == ROUTE_BREAKDOWN && strcmp(r.trends.arg[0], "campaign") == 0,
		  "by=campaign among others: %d %s", r.status, r.message);
	route_free(&r);
	st = parse(&r, "/share-links/count/article/1", "by=%63hannel");
	CHECK(st == 0 && r.kind == ROUTE_BREAKDOWN, "by percent-encoded: %d %s", r.status, r.message);
	route_free(&r);
	/* no by: the plain count, other parameters ignored as before */
	st = parse(&r, "/share-links/count/article/1", "foo=1&window=x&limit=0");
	CHECK(st == 0 && r.kind == ROUTE_COUNT && r.trends.arg[0][0] == '\0', "count without by: %d %s", r.status,
		  r.message);
	route_free(&r);
	expect_400("/share-links/count/article/1", "by=Channel", "by must be channel or campaign");
	expect_400("/share-links/count/article/1", "by=", "by must be channel or campaign");
	expect_400("/share-links/count/article/1", "by", "by must be channel or campaign");
	expect_400("/share-links/count/article/1", "by=channel,campaign", "by must be channel or campaign");
	expect_400("/share-links/count/article/1", "by=channel&by=channel", "by must be given once");
	expect_400("/share-links/count/article/1", "by=%zz", "by has an invalid percent-encoding");
	expect_400("/share-links/count/article/1", "by=chan%00nel", "by must not contain NUL");
}

static void
test_history(void)
{
	int st;
	struct route r;
	char q[256];

	st = parse(&r, "/share-links/history/a/1", "");
	CHECK(st == 0, "history defaults: %s", r.message);
	CHECK(r.trends.until_ms == NOW_MS && r.trends.since_ms == NOW_MS - 24 * HOUR_MS &&
			  r.trends.bucket == ROUTE_BUCKET_HOUR,
		  "defaults: %lld %lld", (long long) r.trends.since_ms, (long long) r.trends.until_ms);
	CHECK(strcmp(r.trends.arg[0], "2026-12-01T10:30:00.000Z") == 0 &&
			  strcmp(r.trends.arg[1], "2026-12-02T10:30:00.000Z") == 0 && strcmp(r.trends.arg[2], "hour") == 0,
		  "args: %s %s %s", r.trends.arg[0], r.trends.arg[1], r.trends.arg[2]);
	route_free(&r);
	st = parse(&r, "/share-links/history/a/1", "bucket=day");
	CHECK(st == 0 && r.trends.since_ms == NOW_MS - 30 * DAY_MS && strcmp(r.trends.arg[2], "day") == 0,
		  "bucket=day default since: %s", r.message);
	route_free(&r);
	st = parse(&r, "/share-links/history/a/1", "until=2026-11-01T00:00:00Z");
	CHECK(st == 0 && strcmp(r.trends.arg[0], "2026-10-31T00:00:00.000Z") == 0, "since defaults to until - 24 h: %s %s",
		  r.message, r.trends.arg[0]);
	route_free(&r);
	st = parse(&r, "/share-links/history/a/1", "since=2026-12-02T09%3A00%3A00%2B01%3A00&until=2026-12-02T08:00Z");
	CHECK(st == 0 && strcmp(r.trends.arg[0], "2026-12-02T08:00:00.000Z") == 0 &&
			  strcmp(r.trends.arg[1], "2026-12-02T08:00:00.000Z") == 0,
		  "percent-encoded since with an offset: %s %s %s", r.message, r.trends.arg[0], r.trends.arg[1]);
	route_free(&r);
	expect_400("/share-links/history/a/1", "since=2026-12-02T09%3A00%3A00%2B01%3A00&until=2026-12-02",
			   "since is after until");
	st = parse(&r, "/share-links/history/a/1", "since=2026-12-02T10:00:00Z&until=2026-12-02T10:00:00Z");
	CHECK(st == 0, "since = until: %s", r.message);
	route_free(&r);
	st = parse(&r, "/share-links/history/a/1", "since=2026-12-01T08:00:00 01:00&bucket=hour");
	CHECK(st == 0 && r.trends.since_ms == NOW_MS - 27 * HOUR_MS - 30 * 60000, "raw + as a space: %s", r.message);
	route_free(&r);
	/* at most 10,000 buckets: hours over ~416 days, days over ~27 years */
	st = parse(&r, "/share-links/history/a/1", "since=2025-10-13T00:00:00Z&until=2026-12-03T15:00:00Z");
	CHECK(st == 0, "9,999 hours: %s", r.message);
	route_free(&r);
	expect_400("/share-links/history/a/1", "since=2025-10-13T00:00:00Z&until=2026-12-03T16:00:00Z",
			   "since to until spans more than 10000 hours");
	st = parse(&r, "/share-links/history/a/1", "since=2000-01-01&until=2026-12-02&bucket=day");
	CHECK(st == 0, "27 years of days: %s", r.message);
	route_free(&r);
	expect_400("/share-links/history/a/1", "since=1990-01-01&bucket=day", "since to until spans more than 10000 days");
	expect_400("/share-links/history/a/1", "since=1969-12-31T23:59:59Z", "since must be from 1970 to 9999");
	expect_400("/share-links/history/a/1", "until=1970-01-01T00:30:00%2B01:00", "until must be from 1970 to 9999");
	expect_400("/share-links/history/a/1", "since=2026-12-02T10:30:00", "since must be an ISO 8601 time");
	expect_400("/share-links/history/a/1", "until=tomorrow", "until must be an ISO 8601 time");
	expect_400("/share-links/history/a/1", "since=", "since must be an ISO 8601 time");
	expect_400("/share-links/history/a/1", "bucket=week", "bucket must be hour or day");
	expect_400("/share-links/history/a/1", "bucket=HOUR", "bucket must be hour or day");
	expect_400("/share-links/history/a/1", "bucket=hour&bucket=hour", "bucket must be given once");
	expect_400("/share-links/history/a/1", "since=2026-12-01&since=2026-12-01", "since must be given once");
	expect_400("/share-links/history/a/1", "window=24h", "unknown query parameter");
	expect_400("/share-links/history/a/1", "by=channel", "unknown query parameter");
	expect_400("/share-links/history/a/1", "_=1", "/share-links/history takes since, until and bucket");
	snprintf(q, sizeof(q), "since=%065d", 0);
	expect_400("/share-links/history/a/1", q, "since is longer than 64 bytes");
}

static void
test_top(void)
{
	int st;
	static const struct
	{
		const char *window;
		long long minutes;
	} good[] = {{"1m", 1},		 {"90m", 90},		{"24h", 1440},	{"7d", 10080},
				{"90d", 129600}, {"2160h", 129600}, {"007d", 10080}};
	static const char *const bad_windows[] = {"0h",	 "5",	 "h",		 "5x", "5hh", "5 h",
											  "-5h", "1.5h", "1234567m", "5H", "24h "};
	struct route r;
	char q[64];
	size_t i;

	st = parse(&r, "/share-links/top/article", "");
	CHECK(st == 0 && r.trends.window_min == 1440 && r.trends.limit == 10 &&
			  strcmp(r.trends.arg[0], "1440 minutes") == 0 && strcmp(r.trends.arg[1], "10") == 0,
		  "top defaults: %s %s %s", r.message, r.trends.arg[0], r.trends.arg[1]);
	route_free(&r);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
	{
		snprintf(q, sizeof(q), "window=%s&limit=100", good[i].window);
		st = parse(&r, "/share-links/top/article", q);
		CHECK(st == 0 && r.trends.window_min == good[i].minutes && r.trends.limit == 100, "window=%s: %s %lld",
			  good[i].window, r.message, (long long) r.trends.window_min);
		route_free(&r);
	}
	for (i = 0; i < sizeof(bad_windows) / sizeof(bad_windows[0]); i++)
	{
		snprintf(q, sizeof(q), "window=%s", bad_windows[i]);
		expect_400("/share-links/top/article", q, "window must be a whole number of minutes, hours or days");
	}
	expect_400("/share-links/top/article", "window=91d", "window is longer than 90 days");
	expect_400("/share-links/top/article", "window=129601m", "window is longer than 90 days");
	expect_400("/share-links/top/article", "window=", "window must be");
	expect_400("/share-links/top/article", "window=1h&window=1h", "window must be given once");
	st = parse(&r, "/share-links/top/article", "limit=1");
	CHECK(st == 0 && strcmp(r.trends.arg[1], "1") == 0, "limit=1: %s", r.message);
	route_free(&r);
	expect_400("/share-links/top/article", "limit=0", "limit must be a whole number from 1 to 100");
	expect_400("/share-links/top/article", "limit=101", "limit must be a whole number from 1 to 100");
	expect_400("/share-links/top/article", "limit=-1", "limit must be a whole number from 1 to 100");
	expect_400("/share-links/top/article", "limit=1e2", "limit must be a whole number from 1 to 100");
	expect_400("/share-links/top/article", "limit=", "limit must be a whole number from 1 to 100");
	expect_400("/share-links/top/article", "limit=10&limit=10", "limit must be given once");
	expect_400("/share-links/top/article", "since=2026-12-01", "/share-links/top takes window and limit");
	expect_400("/share-links/top/article", "Limit=10", "unknown query parameter");
}

int
main(void)
{
	test_times();
	test_paths();
	test_breakdown();
	test_history();
	test_top();
	return unit_done("test_route_trends");
}
