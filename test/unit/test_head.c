/*
 * test_head.c — unit tests for http_head_read() in bridge/http_head.c and
 * route_head_cost() in bridge/route.c: the request size limits of
 * docs/http.md "Request size limits" (request-target at most http_conn_memory - 1,024 bytes, else 414;
 * head cost at most http_conn_memory - 512, else 431), exact at both
 * boundaries.  Plain program: exit 0 = pass; every failed check prints one
 * line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "http_head.h"
#include "route.h"

#include "unit.h"

#define MEM 16384

static char buf[4 * MEM];

/* "GET /<target of len bytes> HTTP/1.1\r\n" + extra (already formatted) into buf */
static size_t
request(const char *method, size_t target_len, const char *extra)
{
	size_t n = (size_t) sprintf(buf, "%s /", method);

	memset(buf + n, 'a', target_len - 1);
	n += target_len - 1;
	n += (size_t) sprintf(buf + n, " HTTP/1.1\r\n%s", extra);
	return n;
}

/* http_head_read() of buf[0..len) at conn_memory mem; *is_head gets its is_head */
static enum http_head_status
check_head(size_t len, size_t mem, int *is_head)
{
	struct http_head h;
	enum http_head_status st;

	memset(&h, 0xa5, sizeof(h)); /* not zeroed: the reader must set every field */
	st = http_head_read(buf, len, mem, &h);
	*is_head = h.is_head;
	return st;
}

static void
expect(const char *what, size_t len, enum http_head_status want)
{
	int is_head = -1;
	enum http_head_status got = check_head(len, MEM, &is_head);

	CHECK(got == want, "%s: %d, want %d", what, (int) got, (int) want);
	CHECK(is_head == 0 || is_head == 1, "%s: is_head not set", what);
}

static void
test_target(void)
{
	size_t max = route_uri_max(MEM), n;

	CHECK(max == MEM - 1024, "route_uri_max %zu", max);
	n = request("GET", max, "Host: x\r\n\r\n");
	expect("target of exactly route_uri_max bytes", n, HTTP_HEAD_OK);
	n = request("GET", max + 1, "Host: x\r\n\r\n");
	expect("target one byte over", n, HTTP_HEAD_URI_TOO_LONG);
	n = request("GET", max + 1, "");
	expect("target over, line not ended yet", n - strlen(" HTTP/1.1\r\n"), HTTP_HEAD_URI_TOO_LONG);
	n = request("GET", 100, "");
	expect("short line not ended yet", n - 2, HTTP_HEAD_MORE);
	expect("line ended, headers not yet", n, HTTP_HEAD_MORE);
	memset(buf, 'a', MEM);
	expect("no space and no line end: all of it is the target", MEM - 1, HTTP_HEAD_URI_TOO_LONG);
	memcpy(buf, "GET / ", 6); /* a short target, then a line that does not end */
	expect("no line end in http_conn_memory - 1 bytes", MEM - 1, HTTP_HEAD_MORE);
	expect("no line end in http_conn_memory bytes", MEM, HTTP_HEAD_URI_TOO_LONG);
	n = (size_t) sprintf(buf, "GET / HTTP/1.1\nHost: x\n\n");
	expect("bare LF line ends", n, HTTP_HEAD_OK);
}

static void
test_budget(void)
{
	size_t budget = route_head_budget(MEM);
	size_t base, n, pad;
	int is_head = 0;
	char extra[MEM];

	CHECK(budget == MEM - 512, "route_head_budget %zu", budget);
	CHECK(route_head_cost(100, 3, 20) == 100 + 3 * ROUTE_RECORD_BYTES + 20, "route_head_cost");
	/* one header "X: <pad>": records = 1; cost = bytes + 64 */
	base = request("GET", 10, "X: \r\n\r\n");
	pad = budget - ROUTE_RECORD_BYTES - base;
	snprintf(extra, sizeof(extra), "X: %0*d\r\n\r\n", (int) pad, 0);
	n = request("GET", 10, extra);
	expect("head cost exactly the budget", n, HTTP_HEAD_OK);
	snprintf(extra, sizeof(extra), "X: %0*d\r\n\r\n", (int) pad + 1, 0);
	n = request("GET", 10, extra);
	expect("head cost one byte over", n, HTTP_HEAD_TOO_LARGE);
	snprintf(extra, sizeof(extra), "X: %0*d\r\n\r\n", (int) pad + 5, 0);
	n = request("GET", 10, extra);
	expect("over the budget before the header line ends (it counts as a record)", n - 4, HTTP_HEAD_TOO_LARGE);
	expect("under it before the header line ends", n - 9, HTTP_HEAD_MORE);
	/* query pieces are records ("/?a&b&c" has 3), so is each header field */
	pad = 2000; /* a header that makes conn_memory larger than ROUTE_URI_RESERVE */
	n = (size_t) sprintf(buf, "HEAD /?a&b&c HTTP/1.1\r\nX: %0*d\r\n\r\n", (int) pad, 0);
	base = n + 4 * ROUTE_RECORD_BYTES + ROUTE_HEAD_RESERVE; /* the conn_memory it needs */
	CHECK(check_head(n, base, &is_head) == HTTP_HEAD_OK && is_head == 1,
		  "3 query records and a header fit exactly; HEAD seen");
	CHECK(check_head(n, base - 1, &is_head) == HTTP_HEAD_TOO_LARGE, "3 query records and a header, one byte short");
	/* a Cookie header: 1 record + one per cookie (';' or ','), plus its value's copy */
	n = (size_t) sprintf(buf, "GET / HTTP/1.1\r\nX: %0*d\r\nCookie: a=1; b=2\r\n\r\n", (int) pad, 0);
	base = n + 4 * ROUTE_RECORD_BYTES + strlen(" a=1; b=2") + ROUTE_COOKIE_EXTRA + ROUTE_HEAD_RESERVE;
	CHECK(check_head(n, base, &is_head) == HTTP_HEAD_OK && is_head == 0, "cookies fit exactly");
	CHECK(check_head(n, base - 1, &is_head) == HTTP_HEAD_TOO_LARGE, "cookies, one byte short");
}

/* The request line's pieces and the head's length, as the live routes read them */
static void
test_line(void)
{
	struct http_head h;
	size_t n = (size_t) sprintf(buf, "GET /a?b HTTP/1.1\r\nHost: x\r\n\r\nGET /next");

	CHECK(http_head_read(buf, n, MEM, &h) == HTTP_HEAD_OK && http_head_is(h.method, "GET") &&
			  http_head_is(h.target, "/a?b") && http_head_is(h.version, "HTTP/1.1") &&
			  h.len == strlen("GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n") && http_head_is(h.field[HH_HOST], "x") && h.plain,
		  "method, target, version, length, Host");
	n = (size_t) sprintf(buf, "GET /a\r HTTP/1.1\r\n\r\n");
	CHECK(http_head_read(buf, n, MEM, &h) == HTTP_HEAD_OK && http_head_is(h.target, "/a\r"),
		  "the target is the bytes between the spaces");
	n = (size_t) sprintf(buf, "GET /x\r\n\r\n");
	CHECK(http_head_read(buf, n, MEM, &h) == HTTP_HEAD_OK && http_head_is(h.target, "/x") && !h.version.p,
		  "HTTP/0.9: no version, the target without its CR");
	n = (size_t) sprintf(buf, "HEAD /x HTTP/1.1\r\nX: a\tb\r\n folded\r\n\r\n");
	CHECK(http_head_read(buf, n, MEM, &h) == HTTP_HEAD_OK && h.is_head && !h.plain, "HEAD; a folded line");
}

int
main(void)
{
	test_line();
	test_target();
	test_budget();
	return unit_done("test_head");
}
