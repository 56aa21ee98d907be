/*
 * fuzz_route.c — libFuzzer harness for the http role's request parsing,
 * bridge/route.c (route_parse, route_decode, route_utf8_valid,
 * route_parse_listen), the query strings of the trends routes
 * (bridge/route_trends.c: route_trends_arg, route_trends_finish,
 * route_parse_time, route_format_time) and the text[] literal the decoded
 * ids travel in to PostgreSQL (dbpool_text_array_literal,
 * bridge/dbpool_decode.c) (docs/fuzzing.md).
 *
 * Input: one flag byte (bits 0-1: method GET/HEAD/POST/DELETE; bit 2: an
 * `ids` parameter is present; bits 3-5: how many `ids` parameters the query
 * had), the raw path up to a NUL, the raw ids value up to a NUL (when
 * present), then an http_listen value (the rest).  A POST routed to
 * /share-links/counts gets the ids value (or "") as its JSON body
 * (route_parse_body), and the result is checked like a GET's.  A GET routed
 * to a count, history or top gets the ids value as its query string
 * ('&'-separated key=value pairs) for route_trends_arg/finish.
 *
 * Invariants checked beyond the sanitizers: statuses are 0/400/404/405/503;
 * error messages are printable ASCII (no request bytes); a routed request has
 * decoded fields within their byte limits, NUL-free, valid UTF-8, ids unique
 * and at most 1,000; route_utf8_valid agrees with jansson's UTF-8 check;
 * decoding what we percent-encode gives the bytes back; the text[] literal
 * reads back as the ids; a routed trends query has its values in range
 * (since <= until within 1970-9999 and 10,000 buckets, window 1 minute to
 * 90 days, limit 1-100) and SQL parameters that parse back to them; any
 * time route_parse_time accepts formats and parses back to itself.
 *
 * Rules: no state between inputs.  route_parse_listen resolves host names
 * (getaddrinfo), so it only gets values whose host is empty, "*" or a
 * numeric address: no DNS traffic from a fuzzer.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dbpool.h"
#include "fuzz.h"
#include "route.h"

static void
check_message(const struct route *r)
{
	FZ_CHECK(r->message[0] != '\0');
	for (const char *p = r->message; *p; p++)
		FZ_CHECK(*p >= 0x20 && *p < 0x7f);
}

/* A decoded field: NUL-free (strlen is its length), 1..max bytes, valid UTF-8. */
static void
check_field(const char *s, size_t max)
{
	size_t n;

	FZ_CHECK(s != NULL);
	n = strlen(s);
	FZ_CHECK(n >= 1 && n <= max);
	FZ_CHECK(route_utf8_valid((const unsigned char *) s, n));
}

/* Read back dbpool_text_array_literal's output: every element quoted, \" and \\ escaped. */
static void
check_literal(char *const *items, size_t n)
{
	char *lit = dbpool_text_array_literal(items, n);
	const char *p;

	FZ_CHECK(lit != NULL && lit[0] == '{');
	p = lit + 1;
	for (size_t i = 0; i < n; i++)
	{
		const char *s = items[i];

		if (i)
			FZ_CHECK(*p++ == ',');
		FZ_CHECK(*p++ == '"');
		while (*p != '"')
		{
			FZ_CHECK(*p != '\0');
			if (*p == '\\')
				p++;
			FZ_CHECK(*p == *s);
			p++, s++;
		}
		FZ_CHECK(*s == '\0');
		p++;
	}
	FZ_CHECK(p[0] == '}' && p[1] == '\0');
	free(lit);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
check_route(int st, const struct route *r)
{
	FZ_CHECK(st == r->status);
	FZ_CHECK(st == 0 || st == 400 || st == 404 || st == 405 || st == 503);
	if (st != 0)
	{
		check_message(r);
		return;
	}
	FZ_CHECK(r->kind != ROUTE_NONE);
	if (r->kind != ROUTE_HEALTHZ && r->kind != ROUTE_READYZ && r->kind != ROUTE_METRICS)
		check_field(r->content_type, ROUTE_MAX_TYPE_BYTES);
	if (r->kind == ROUTE_COUNT || r->kind == ROUTE_BREAKDOWN || r->kind == ROUTE_HISTORY)
		check_field(r->content_id, ROUTE_MAX_ID_BYTES);
	if (r->kind != ROUTE_COUNTS)
		return;
	FZ_CHECK(r->nids >= 1 && r->nids <= ROUTE_MAX_IDS);
	for (size_t i = 0; i < r->nids; i++)
		check_field(r->ids[i], ROUTE_MAX_ID_BYTES);
	{
		/* unique: sorted copies differ from their neighbours */
		char *sorted[ROUTE_MAX_IDS];

		memcpy(sorted, r->ids, r->nids * sizeof(char *));
		qsort(sorted, r->nids, sizeof(char *), cmp_str);
		for (size_t i = 1; i < r->nids; i++)
			FZ_CHECK(strcmp(sorted[i - 1], sorted[i]) != 0);
	}
	check_literal(r->ids, r->nids);
}

/* route_decode on raw bytes (NULs included), checked against re-encoding. */
static void
check_decode(const uint8_t *raw, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *in = fz_copy(raw, len);
	const char *why = NULL;
	size_t n = 0;
	char *out = route_decode(in ? in : "", len, &n, &why);
	json_t *js = json_stringn((const char *) raw, len);

	/* route_utf8_valid agrees with jansson on any bytes */
	FZ_CHECK(route_utf8_valid(raw, len) == (js != NULL));
	json_decref(js);
	if (!out)
		FZ_CHECK(why != NULL && why[0] != '\0');
	else
	{
		char *enc = malloc(3 * n + 1), *back;
		size_t m = 0;

		FZ_CHECK(n <= len && strlen(out) == n);
		FZ_CHECK(route_utf8_valid((const unsigned char *) out, n));
		FZ_CHECK(enc != NULL);
		for (size_t i = 0; i < n; i++)
		{
			enc[3 * i] = '%';
			enc[3 * i + 1] = hex[(unsigned char) out[i] >> 4];
			enc[3 * i + 2] = hex[(unsigned char) out[i] & 15];
		}
		back = route_decode(enc, 3 * n, &m, &why);
		FZ_CHECK(back != NULL && m == n && memcmp(back, out, n) == 0);
		free(back);
		free(enc);
		free(out);
	}
	free(in);
}

/*
 * Whether listen's host part (before the last ':', or inside [...]) is empty,
 * "*" or a numeric address: anything else makes getaddrinfo ask DNS, which
 * takes 150 ms to fail here and sends traffic.
 */
static int
numeric_host(const char *listen)
{
	char host[128];
	const char *end = listen[0] == '[' ? strchr(listen, ']') : strrchr(listen, ':');
	const char *start = listen[0] == '[' ? listen + 1 : listen;
	unsigned char addr[sizeof(struct in6_addr)];

	if (!end || end < start || (size_t) (end - start) >= sizeof(host))
		return 0;
	memcpy(host, start, (size_t) (end - start));
	host[end - start] = '\0';
	return host[0] == '\0' || strcmp(host, "*") == 0 || inet_pton(AF_INET, host, addr) == 1 ||
		inet_pton(AF_INET6, host, addr) == 1;
}

static void
check_listen(const char *listen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	char err[256];

	if (!numeric_host(listen))
		return;
	memset(err, 0, sizeof(err));
	if (route_parse_listen(listen, &ss, &sslen, err, sizeof(err)) == 0)
		FZ_CHECK(sslen > 0 && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6));
	else
		FZ_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
}

#define FZ_NOW_MS 1796207400000LL /* 2026-12-02T10:30:00Z, the trends queries' "now" */

/* A time parsed from the fuzzer's bytes survives format + parse (within 1970-9999). */
static void
check_time(const char *s)
{
	char out[ROUTE_TIME_LEN];
	int64_t ms, back;

	if (route_parse_time(s, &ms) != 0 || ms < 0 || ms >= 253402300800000LL)
		return;
	route_format_time(ms, out);
	FZ_CHECK(strlen(out) == ROUTE_TIME_LEN - 1 && out[ROUTE_TIME_LEN - 2] == 'Z');
	FZ_CHECK(route_parse_time(out, &back) == 0 && back == ms);
}

/*
 * The query of a routed COUNT, HISTORY or TOP (query: '&'-separated
 * key=value pairs) and its invariants; the status (check_route checks the rest).
 */
static int
check_trends(struct route *r, const char *query)
{
	char *copy = strdup(query), *save = NULL, *piece;
	const struct route_trends *t = &r->trends;
	int st = 0;
	int64_t ms;

	FZ_CHECK(copy != NULL);
	for (piece = strtok_r(copy, "&", &save); piece && st == 0; piece = strtok_r(NULL, "&", &save))
	{
		char *eq = strchr(piece, '=');

		if (eq)
			*eq = '\0';
		st = route_trends_arg(r, piece, eq ? eq + 1 : NULL);
		FZ_CHECK(st == r->status);
	}
	free(copy);
	if (st == 0)
		st = route_trends_finish(r, FZ_NOW_MS);
	FZ_CHECK(st == 0 || st == 400);
	if (st != 0)
		return st;
	if (r->kind == ROUTE_BREAKDOWN)
		FZ_CHECK(t->dim == ROUTE_DIM_CHANNEL || t->dim == ROUTE_DIM_CAMPAIGN);
	if (r->kind == ROUTE_HISTORY)
	{
		int64_t per = t->bucket == ROUTE_BUCKET_DAY ? 86400000LL : 3600000LL;

		FZ_CHECK(0 <= t->since_ms && t->since_ms <= t->until_ms && t->until_ms < 253402300800000LL);
		FZ_CHECK(t->until_ms / per - t->since_ms / per + 1 <= ROUTE_MAX_HISTORY_BUCKETS);
		FZ_CHECK(route_parse_time(t->arg[0], &ms) == 0 && ms == t->since_ms);
		FZ_CHECK(route_parse_time(t->arg[1], &ms) == 0 && ms == t->until_ms);
	}
	if (r->kind == ROUTE_TOP)
	{
		FZ_CHECK(t->window_min >= 1 && t->window_min <= ROUTE_MAX_WINDOW_MIN);
		FZ_CHECK(t->limit >= 1 && t->limit <= ROUTE_TOP_MAX_LIMIT);
		FZ_CHECK(atoll(t->arg[0]) == t->window_min && atoi(t->arg[1]) == t->limit);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE"};
	struct fz_in in = {data, size};
	uint8_t flags = fz_byte(&in);
	const uint8_t *path_start = in.p;
	char *path = fz_take(&in);
	size_t path_len = (size_t) (in.p - path_start) - (in.p > path_start && in.p[-1] == 0);
	char *ids = (flags & 4) ? fz_take(&in) : NULL;
	char *listen = fz_take(&in);
	struct route r;
	int st;

	st = route_parse(methods[flags & 3], path, ids, ids ? (flags >> 3) & 7 : 0, &r);
	if (st == 0 && r.from_body)
		st = route_parse_body(&r, ids ? ids : "", ids ? strlen(ids) : 0);
	if (st == 0 && (r.kind == ROUTE_COUNT || r.kind == ROUTE_HISTORY || r.kind == ROUTE_TOP))
		st = check_trends(&r, ids ? ids : "");
	check_route(st, &r);
	route_free(&r);
	route_free(&r); /* safe twice: route_free resets what it frees */

	check_time(path);
	if (ids)
		check_time(ids);
	check_decode(path_start, path_len);
	if (ids)
		check_decode((const uint8_t *) ids, strlen(ids));
	check_listen(listen);
	free(path);
	free(ids);
	free(listen);
	return 0;
}
