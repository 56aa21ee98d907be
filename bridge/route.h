/*
 * route.h — pure request parsing for the http role (docs/http.md): which endpoint a
 * method + raw path asks for, percent-decoding of path segments and of the
 * ids list, and every input check (empty, too long, bad %-escape, bad UTF-8,
 * NUL, too many ids, extra segments), the JSON body of a POST of ids, the
 * limits of a request's head (its reader is http_head.c), and the
 * http_listen address syntax; the query
 * strings of the trends routes (`by`, since/until/bucket, window/limit) are
 * route_trends.c's.  No I/O, no server: unit-tested in
 * test/unit/test_route.c and test/unit/test_route_trends.c.
 *
 * Rules: the path given to route_parse() is the raw request path (not yet
 * percent-decoded, no query string); the ids value is the raw query value
 * (libmicrohttpd has already turned '+' into ' ', nothing else).  On success
 * the struct owns malloc'ed copies of the decoded strings; route_free()
 * releases them (safe on a zeroed or failed struct).
 */
#ifndef SC_ROUTE_H
#define SC_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sc_limits.h"

/* the key limits live in sc_limits.h */
#define ROUTE_MAX_TYPE_BYTES SC_MAX_CONTENT_TYPE_BYTES
#define ROUTE_MAX_ID_BYTES SC_MAX_CONTENT_ID_BYTES
#define ROUTE_MAX_IDS SC_MAX_COUNTS_IDS
/*
 * Largest POST /share-links/counts body (docs/http.md "POST
 * /share-links/counts").  The largest valid compact body is 1,000 ids of 256
 * control bytes, each written as a 6-byte \u escape, plus quotes and commas:
 * 1,000 x (256 x 6 + 2) + 999 + 10 = 1,539,009 bytes; 2 MiB leaves room for
 * whitespace.  Over it: 413.
 */
#define ROUTE_MAX_BODY_BYTES (2 * 1024 * 1024)

/*
 * Request size limits (docs/http.md "Request size limits").  libmicrohttpd
 * 0.9.75 keeps a request's line and headers in the connection's
 * http_conn_memory, one record per header field, query parameter and cookie,
 * and builds the answer's header in what is left; when something does not
 * fit it answers with a fixed HTML page or closes the connection.  The
 * bridge checks a request's head before libmicrohttpd does (http_head_read()
 * of http_head.c on the bytes, route_head_cost on what libmicrohttpd parsed)
 * and answers 414/431 in JSON itself.
 */
/* request-target (path and query) at most http_conn_memory minus this, else 414 */
#define ROUTE_URI_RESERVE 1024
/* a head's cost at most http_conn_memory minus this, else 431: room for the answer's header */
#define ROUTE_HEAD_RESERVE 512
/* pool bytes of one record (sizeof(struct MHD_HTTP_Header), 56, rounded up to 16) */
#define ROUTE_RECORD_BYTES 64
/* pool bytes added per Cookie header (libmicrohttpd copies its value, rounded up to 16) */
#define ROUTE_COOKIE_EXTRA 16

enum route_kind
{
	ROUTE_NONE = 0,
	ROUTE_COUNT,  /* GET /share-links/count/:contentType/:contentId */
	ROUTE_COUNTS, /* GET /share-links/counts/:contentType?ids=a,b, or POST with the ids in a JSON body */
	ROUTE_HEALTHZ,
	ROUTE_READYZ,
	ROUTE_METRICS,
	ROUTE_BREAKDOWN, /* GET /share-links/count/:contentType/:contentId?by=channel|campaign (route_trends.c) */
	ROUTE_HISTORY,	 /* GET /share-links/history/:contentType/:contentId?since=&until=&bucket= */
	ROUTE_TOP		 /* GET /share-links/top/:contentType?window=&limit= */
};

/*
 * The query of the trends routes (docs/http.md "GET /share-links/history"
 * …), parsed by route_trends.c: the values, and the SQL text parameters
 * built from them (fixed buffers: struct route is copied by value).
 */
#define ROUTE_TRENDS_NARGS 3   /* SQL text parameters after the type (and id) */
#define ROUTE_TRENDS_ARGLEN 32 /* one of them: an ISO 8601 time is 24 bytes */

enum route_dim
{
	ROUTE_DIM_NONE = 0,
	ROUTE_DIM_CHANNEL,
	ROUTE_DIM_CAMPAIGN
};

enum route_bucket
{
	ROUTE_BUCKET_HOUR = 0,
	ROUTE_BUCKET_DAY
};

struct route_trends
{
	unsigned seen;	  /* bit per query parameter given (each at most once) */
	int dim;		  /* BREAKDOWN: enum route_dim (an int: route_trends.c sets it from a table) */
	int bucket;		  /* HISTORY: enum route_bucket */
	int64_t since_ms; /* HISTORY: Unix time in ms, UTC */
	int64_t until_ms;
	int64_t window_min; /* TOP: the window in minutes */
	char window_unit;	/* TOP: 'm', 'h' or 'd', as asked */
	int limit;			/* TOP */
	char arg[ROUTE_TRENDS_NARGS][ROUTE_TRENDS_ARGLEN];
};

struct route
{
	int status; /* 0 = routed; else the HTTP error status (400/404/405) */
	enum route_kind kind;
	int from_body;		/* POST /counts: ids come from route_parse_body() */
	const char *allow;	/* for a 405: the Allow header (ROUTE_ALLOW...) */
	char message[160];	/* error message for status != 0 (no user input in it) */
	char *content_type; /* decoded; COUNT, COUNTS */
	char *content_id;	/* decoded; COUNT */
	char **ids;			/* decoded, duplicates removed, first-seen order; COUNTS */
	size_t nids;
	struct route_trends trends; /* BREAKDOWN, HISTORY, TOP (route_trends.c) */
};

/* The methods every route accepts (for the Allow header of a 405)... */
#define ROUTE_ALLOW "GET, HEAD"
/* ...and /share-links/counts/:contentType, which also takes a POST. */
#define ROUTE_ALLOW_COUNTS "GET, HEAD, POST"

/*
 * Route one request.  ids_raw is the raw value of the `ids` query parameter
 * (NULL when absent); ids_count is how many `ids` parameters the query had.
 * Returns r->status (0 on success).
 */
int route_parse(const char *method, const char *path, const char *ids_raw, int ids_count, struct route *r);
void route_free(struct route *r);

/*
 * The ids of a POST /share-links/counts request (r routed with from_body set):
 * body[0..len) must be a JSON object whose "ids" is an array of 1-1,000
 * strings, each obeying the rules of an id in the GET's ids list (other keys
 * are ignored).  Fills r->ids/nids (repeats dropped) and returns 0, or
 * returns r->status (400) with r->message set.
 */
int route_parse_body(struct route *r, const char *body, size_t len);

/*
 * 1 if a Content-Type header value (may be NULL) names application/json,
 * with or without parameters (case-insensitive), else 0.
 */
int route_json_content_type(const char *value);

/*
 * Percent-decode in[0..len) into a new malloc'ed NUL-terminated string.
 * Returns NULL and sets *why to a message when the input has a bad %-escape,
 * decodes to a NUL byte or to invalid UTF-8.  *outlen gets the decoded length.
 */
char *route_decode(const char *in, size_t len, size_t *outlen, const char **why);

/*
 * Fail a route: r->status = status, r->message formatted (never with the
 * request's bytes); returns status.
 */
int route_fail(struct route *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Decode one path segment, id or query value raw[0..len) named `name` in the
 * messages: not empty, a good percent-encoding, UTF-8, no NUL, at most max
 * bytes decoded.  A malloc'ed string, or NULL with r failed (400).
 */
char *route_decode_field(struct route *r, const char *name, const char *raw, size_t len, size_t max);

/* 1 if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int route_utf8_valid(const unsigned char *s, size_t len);

/* Longest request-target and largest head cost for a given http_conn_memory. */
size_t route_uri_max(size_t conn_memory);
size_t route_head_budget(size_t conn_memory);

/*
 * The cost of a head in libmicrohttpd's pool: its bytes (request line and
 * header lines with their line ends, and the empty line), ROUTE_RECORD_BYTES
 * per header field, query parameter and cookie, and the copy of each Cookie
 * header's value.
 */
size_t route_head_cost(size_t head_bytes, size_t records, size_t cookie_bytes);

/* The reason phrase for the error statuses we produce ("Bad Request"...). */
const char *route_reason(int status);

/*
 * Parse http_listen: "host:port", "[ipv6]:port", ":port" or "*:port" (all
 * IPv4 addresses).  Host names are resolved (first address wins).  0 on
 * success; -1 with a one-line message in err.
 */
int route_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen);

/* ---- route_trends.c: the query of the breakdown, history and top routes ---- */

/* Longest query value of these routes (raw, before percent-decoding); longer: 400. */
#define ROUTE_MAX_QUERY_VALUE 64
/* Most buckets one history answer may span (hour: ~416 days, day: ~27 years); more: 400. */
#define ROUTE_MAX_HISTORY_BUCKETS 10000
/* Longest top window: 90 days (the default sharecount.history_retention), in minutes. */
#define ROUTE_MAX_WINDOW_MIN (90 * 24 * 60)
/* Default and largest top limit. */
#define ROUTE_TOP_DEFAULT_LIMIT 10
#define ROUTE_TOP_MAX_LIMIT 100
/* Default top window: 24 hours. */
#define ROUTE_TOP_DEFAULT_WINDOW_MIN (24 * 60)
/* Default history span before until: 24 hours (hour buckets), 30 days (day buckets). */
#define ROUTE_HISTORY_DEFAULT_HOURS_MS (24 * 3600 * 1000LL)
#define ROUTE_HISTORY_DEFAULT_DAYS_MS (30 * 24 * 3600 * 1000LL)
/* Bytes of an ISO 8601 UTC time with milliseconds, "2026-12-02T10:00:00.000Z", and its NUL. */
#define ROUTE_TIME_LEN 25

/*
 * After route_parse() routed a COUNT, HISTORY or TOP request: take one query
 * parameter (raw key and value as in the URL; value NULL when there was no
 * '=').  A count takes `by` and ignores anything else; history takes since,
 * until, bucket; top takes window, limit; any other parameter of those two,
 * and a parameter given twice, is a 400.  Returns r->status (0 or 400).
 */
int route_trends_arg(struct route *r, const char *key, const char *value);
/*
 * After the last parameter: defaults (now_ms: Unix time in ms), the checks
 * across parameters (since <= until, at most ROUTE_MAX_HISTORY_BUCKETS), a
 * count with `by` becomes ROUTE_BREAKDOWN, and the SQL parameters are built.
 * Returns r->status (0 or 400).
 */
int route_trends_finish(struct route *r, int64_t now_ms);
/* The SQL text parameters after the type (and id) of a BREAKDOWN, HISTORY or TOP route. */
void route_trends_args(const struct route *r, const char *args[ROUTE_TRENDS_NARGS]);

/*
 * An ISO 8601 time: YYYY-MM-DD (midnight UTC), or YYYY-MM-DDThh:mm[:ss[.f…]]
 * with Z or an offset (+hh:mm, +hhmm, +hh; a space where the '+' goes is
 * read as '+', since a raw '+' in a query means a space).  Into Unix ms
 * (fractions past ms dropped); 0, or -1 if malformed.
 */
int route_parse_time(const char *s, int64_t *ms);
/* Unix ms into "YYYY-MM-DDThh:mm:ss.mmmZ" (years 0001-9999). */
void route_format_time(int64_t ms, char out[ROUTE_TIME_LEN]);

#endif
