/*
 * test_route.c — unit tests for bridge/route.c (request routing, percent-
 * decoding, UTF-8/NUL checks, ids lists, POST bodies of ids, http_listen
 * syntax) and for the
 * text[] literal builder of bridge/dbpool_decode.c.  Plain program: exit 0 = pass;
 * every failed check prints one line.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dbpool.h"
#include "route.h"
#include "unit.h"

/* Route a GET and expect an error status whose message contains `msg`. */
static void
expect_error(const char *method, const char *path, const char *ids, int nids, int status, const char *msg)
{
	struct route r;
	int st = route_parse(method, path, ids, nids, &r);

	CHECK(st == status && r.status == status, "%s %s ids=%s: status %d, want %d (%s)", method, path,
		  ids ? ids : "(none)", st, status, r.message);
	CHECK(strstr(r.message, msg) != NULL, "%s %s: message \"%s\" lacks \"%s\"", method, path, r.message, msg);
	route_free(&r);
}

static void
expect_count(const char *path, const char *type, const char *id)
{
	struct route r;
	int st = route_parse("GET", path, NULL, 0, &r);

	CHECK(st == 0 && r.kind == ROUTE_COUNT, "%s: status %d (%s), kind %d", path, st, r.message, r.kind);
	if (st == 0)
	{
		CHECK(strcmp(r.content_type, type) == 0, "%s: type \"%s\" want \"%s\"", path, r.content_type, type);
		CHECK(strcmp(r.content_id, id) == 0, "%s: id \"%s\" want \"%s\"", path, r.content_id, id);
	}
	route_free(&r);
}

static void
test_count_routes(void)
{
	struct route r;
	char path[2048];
	char big[1024];

	expect_count("/share-links/count/article/123", "article", "123");
	expect_count("/share-links/count/article/a%2Fb", "article", "a/b");
	expect_count("/share-links/count/article/a%2fb", "article", "a/b");
	expect_count("/share-links/count/article/he%20said%20%22hi%22", "article", "he said \"hi\"");
	expect_count("/share-links/count/article/a+b", "article", "a+b"); /* '+' is literal in a path */
	expect_count("/share-links/count/article/x,y", "article", "x,y");
	expect_count("/share-links/count/%C3%A9t%C3%A9/%E2%9C%93%F0%9F%98%80", "\xC3\xA9t\xC3\xA9",
				 "\xE2\x9C\x93\xF0\x9F\x98\x80");
	expect_count("/share-links/count/article/caf\xC3\xA9", "article", "caf\xC3\xA9"); /* raw UTF-8 */
	expect_count("/share-links/count/article/..", "article", "..");

	/* HEAD is served like GET */
	CHECK(route_parse("HEAD", "/share-links/count/a/b", NULL, 0, &r) == 0 && r.kind == ROUTE_COUNT, "HEAD count");
	route_free(&r);

	/* limits: 64 bytes of type, 256 of id, counted after decoding */
	memset(big, 'a', 64);
	big[64] = '\0';
	snprintf(path, sizeof(path), "/share-links/count/%s/1", big);
	expect_count(path, big, "1");
	snprintf(path, sizeof(path), "/share-links/count/%sa/1", big);
	expect_error("GET", path, NULL, 0, 400, "contentType is longer than 64 bytes");
	memset(big, 'b', 256);
	big[256] = '\0';
	snprintf(path, sizeof(path), "/share-links/count/t/%s", big);
	expect_count(path, "t", big);
	snprintf(path, sizeof(path), "/share-links/count/t/%sb", big);
	expect_error("GET", path, NULL, 0, 400, "contentId is longer than 256 bytes");
	/* 86 x "%C3%A9" = 172 bytes decoded from 516 raw: fine; 129 x = 258 bytes: too long */
	strcpy(path, "/share-links/count/t/");
	for (int i = 0; i < 129; i++)
		strcat(path, "%C3%A9");
	expect_error("GET", path, NULL, 0, 400, "contentId is longer than 256 bytes");

	/* every bad input */
	expect_error("GET", "/share-links/count/article/", NULL, 0, 400, "contentId must not be empty");
	expect_error("GET", "/share-links/count//123", NULL, 0, 400, "contentType must not be empty");
	expect_error("GET", "/share-links/count/article", NULL, 0, 400, "expected /share-links/count/");
	expect_error("GET", "/share-links/count/", NULL, 0, 400, "expected /share-links/count/");
	expect_error("GET", "/share-links/count", NULL, 0, 400, "expected /share-links/count/");
	expect_error("GET", "/share-links/count/article/1/2", NULL, 0, 400, "too many path segments");
	expect_error("GET", "/share-links/count/article/1/", NULL, 0, 400, "too many path segments");
	expect_error("GET", "/share-links/count/a/b/c/d/e/f", NULL, 0, 400, "too many path segments");
	expect_error("GET", "/share-links/count/article/%zz", NULL, 0, 400, "contentId has an invalid percent-encoding");
	expect_error("GET", "/share-links/count/article/%4", NULL, 0, 400, "invalid percent-encoding");
	expect_error("GET", "/share-links/count/article/%", NULL, 0, 400, "invalid percent-encoding");
	expect_error("GET", "/share-links/count/%G1/1", NULL, 0, 400, "contentType has an invalid percent-encoding");
	expect_error("GET", "/share-links/count/article/a%00b", NULL, 0, 400, "contentId must not contain NUL");
	expect_error("GET", "/share-links/count/article/%C3%28", NULL, 0, 400, "contentId is not valid UTF-8");
	expect_error("GET", "/share-links/count/article/%C0%AF", NULL, 0, 400, "not valid UTF-8");		 /* overlong '/' */
	expect_error("GET", "/share-links/count/article/%ED%A0%80", NULL, 0, 400, "not valid UTF-8");	 /* surrogate */
	expect_error("GET", "/share-links/count/article/%F4%90%80%80", NULL, 0, 400, "not valid UTF-8"); /* > U+10FFFF */
	expect_error("GET", "/share-links/count/article/%E2%9C", NULL, 0, 400, "not valid UTF-8");		 /* truncated */
	expect_error("GET", "/share-links/count/article/%FF", NULL, 0, 400, "not valid UTF-8");
	expect_error("GET", "/share-links/count/article/\xC3", NULL, 0, 400, "not valid UTF-8"); /* raw bad byte */
}

static void
test_other_routes(void)
{
	struct route r;

	CHECK(route_parse("GET", "/healthz", NULL, 0, &r) == 0 && r.kind == ROUTE_HEALTHZ, "healthz");
	CHECK(route_parse("GET", "/readyz", NULL, 0, &r) == 0 && r.kind == ROUTE_READYZ, "readyz");
	CHECK(route_parse("GET", "/metrics", NULL, 0, &r) == 0 && r.kind == ROUTE_METRICS, "metrics");
	CHECK(route_parse("HEAD", "/metrics", NULL, 0, &r) == 0 && r.kind == ROUTE_METRICS, "HEAD metrics");

	expect_error("GET", "/", NULL, 0, 404, "no such endpoint");
	expect_error("GET", "/nope", NULL, 0, 404, "no such endpoint");
	expect_error("GET", "/healthz/", NULL, 0, 404, "no such endpoint");
	expect_error("GET", "/share-links", NULL, 0, 404, "no such endpoint");
	expect_error("GET", "/share-links/other/a/b", NULL, 0, 404, "no such endpoint");
	expect_error("GET", "//share-links/count/a/b", NULL, 0, 404, "no such endpoint");
	expect_error("GET", "/share-links%2Fcount/a/b", NULL, 0, 404, "no such endpoint");
	expect_error("GET", "*", NULL, 0, 404, "no such endpoint");
	expect_error("GET", "", NULL, 0, 404, "no such endpoint");

	/* method: checked once the path is known (unknown path stays 404) */
	expect_error("POST", "/share-links/count/article/1", NULL, 0, 405, "only GET and HEAD");
	expect_error("DELETE", "/share-links/counts/article", "a", 1, 405, "only GET, HEAD and POST");
	expect_error("PUT", "/healthz", NULL, 0, 405, "only GET and HEAD");
	expect_error("OPTIONS", "/metrics", NULL, 0, 405, "only GET and HEAD");
	expect_error("get", "/readyz", NULL, 0, 405, "only GET and HEAD"); /* methods are case-sensitive */
	expect_error("POST", "/nope", NULL, 0, 404, "no such endpoint");
	CHECK(strcmp(ROUTE_ALLOW, "GET, HEAD") == 0, "Allow header");
	CHECK(strcmp(route_reason(400), "Bad Request") == 0 && strcmp(route_reason(404), "Not Found") == 0 &&
			  strcmp(route_reason(405), "Method Not Allowed") == 0 &&
			  strcmp(route_reason(503), "Service Unavailable") == 0,
		  "reason phrases");
}

static void
test_counts_routes(void)
{
	struct route r;
	char *ids;
	size_t i, o;

	CHECK(route_parse("GET", "/share-links/counts/article", "a,b%2Cc,%2F,a,caf%C3%A9, x", 1, &r) == 0, "counts: %s",
		  r.message);
	CHECK(r.kind == ROUTE_COUNTS && strcmp(r.content_type, "article") == 0, "counts kind/type");
	CHECK(r.nids == 5, "counts: %zu ids (duplicate 'a' dropped), want 5", r.nids);
	if (r.nids == 5)
	{
		CHECK(strcmp(r.ids[0], "a") == 0, "id 0 %s", r.ids[0]);
		CHECK(strcmp(r.ids[1], "b,c") == 0, "id 1 %s", r.ids[1]);
		CHECK(strcmp(r.ids[2], "/") == 0, "id 2 %s", r.ids[2]);
		CHECK(strcmp(r.ids[3], "caf\xC3\xA9") == 0, "id 3 %s", r.ids[3]);
		CHECK(strcmp(r.ids[4], " x") == 0, "id 4 '%s'", r.ids[4]);
	}
	route_free(&r);

	CHECK(route_parse("GET", "/share-links/counts/a%20b", "1", 1, &r) == 0 && strcmp(r.content_type, "a b") == 0 &&
			  r.nids == 1,
		  "counts single id");
	route_free(&r);

	expect_error("GET", "/share-links/counts/article", NULL, 0, 400, "ids query parameter is required");
	expect_error("GET", "/share-links/counts/article", "", 1, 400, "ids must list at least one id");
	expect_error("GET", "/share-links/counts/article", "a", 2, 400, "ids must be given once");
	expect_error("GET", "/share-links/counts/article", "a,,b", 1, 400, "each id in ids must not be empty");
	expect_error("GET", "/share-links/counts/article", "a,", 1, 400, "each id in ids must not be empty");
	expect_error("GET", "/share-links/counts/article", ",a", 1, 400, "each id in ids must not be empty");
	expect_error("GET", "/share-links/counts/article", "a,%zz", 1, 400,
				 "each id in ids has an invalid percent-encoding");
	expect_error("GET", "/share-links/counts/article", "a%00", 1, 400, "each id in ids must not contain NUL");
	expect_error("GET", "/share-links/counts/article", "%FE", 1, 400, "each id in ids is not valid UTF-8");
	expect_error("GET", "/share-links/counts/", "a", 1, 400, "contentType must not be empty");
	expect_error("GET", "/share-links/counts", "a", 1, 400, "expected /share-links/counts/");
	expect_error("GET", "/share-links/counts/article/x", "a", 1, 400, "too many path segments");
	expect_error("GET", "/share-links/counts/%zz", "a", 1, 400, "contentType has an invalid percent-encoding");

	/* 1,000 ids pass, 1,001 do not; repeats count toward the limit */
	ids = malloc(1001 * 8 + 1);
	for (i = 0, o = 0; i < 1001; i++)
		o += sprintf(ids + o, "%s%zu", i ? "," : "", i);
	CHECK(route_parse("GET", "/share-links/counts/t", ids, 1, &r) == 400 && strstr(r.message, "more than 1000 ids"),
		  "1001 ids: %s", r.message);
	route_free(&r);
	*strrchr(ids, ',') = '\0';
	CHECK(route_parse("GET", "/share-links/counts/t", ids, 1, &r) == 0 && r.nids == 1000, "1000 ids: %s", r.message);
	route_free(&r);
	for (i = 0, o = 0; i < 1001; i++)
		o += sprintf(ids + o, "%sx", i ? "," : "");
	CHECK(route_parse("GET", "/share-links/counts/t", ids, 1, &r) == 400, "1001 repeated ids");
	route_free(&r);
	free(ids);

	/* a 257-byte id in the list */
	ids = malloc(300);
	memset(ids, 'z', 257);
	ids[257] = '\0';
	expect_error("GET", "/share-links/counts/t", ids, 1, 400, "each id in ids is longer than 256 bytes");
	free(ids);
}

static void
test_decode_utf8(void)
{
	const char *why = NULL;
	size_t n = 0;
	char *s;

	s = route_decode("a%41%2f%2F", 10, &n, &why);
	CHECK(s && strcmp(s, "aA//") == 0 && n == 4, "decode mixed-case hex");
	free(s);
	s = route_decode("%", 1, &n, &why);
	CHECK(!s && strstr(why, "percent"), "lone %%");
	s = route_decode("ab%4", 4, &n, &why);
	CHECK(!s && strstr(why, "percent"), "short escape");
	/* the length bound is respected: "%41" cut after 2 bytes is invalid */
	s = route_decode("%41", 2, &n, &why);
	CHECK(!s, "escape cut by len");

	CHECK(route_utf8_valid((const unsigned char *) "", 0), "empty utf8");
	CHECK(route_utf8_valid((const unsigned char *) "\xF0\x9F\x98\x80", 4), "4-byte utf8");
	CHECK(route_utf8_valid((const unsigned char *) "\xF4\x8F\xBF\xBF", 4), "U+10FFFF");
	CHECK(route_utf8_valid((const unsigned char *) "\xEF\xBF\xBF", 3), "U+FFFF");
	CHECK(!route_utf8_valid((const unsigned char *) "\xE0\x80\xAF", 3), "3-byte overlong");
	CHECK(!route_utf8_valid((const unsigned char *) "\xF0\x80\x80\xAF", 4), "4-byte overlong");
	CHECK(!route_utf8_valid((const unsigned char *) "\xC1\xBF", 2), "C1 lead");
	CHECK(!route_utf8_valid((const unsigned char *) "\x80", 1), "lone continuation");
	CHECK(!route_utf8_valid((const unsigned char *) "\xF0\x9F\x98", 3), "truncated 4-byte");
	CHECK(!route_utf8_valid((const unsigned char *) "\xED\xBF\xBF", 3), "surrogate U+DFFF");
}

static void
test_listen(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256], buf[64];

	CHECK(route_parse_listen("127.0.0.1:8080", &ss, &len, err, sizeof(err)) == 0, "v4: %s", err);
	CHECK(ss.ss_family == AF_INET && ntohs(((struct sockaddr_in *) &ss)->sin_port) == 8080, "v4 port");
	CHECK(route_parse_listen("[::1]:8081", &ss, &len, err, sizeof(err)) == 0, "v6: %s", err);
	CHECK(ss.ss_family == AF_INET6 && ntohs(((struct sockaddr_in6 *) &ss)->sin6_port) == 8081, "v6 port");
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, buf, sizeof(buf));
	CHECK(strcmp(buf, "::1") == 0, "v6 addr %s", buf);
	CHECK(route_parse_listen(":9000", &ss, &len, err, sizeof(err)) == 0 && ss.ss_family == AF_INET &&
			  ((struct sockaddr_in *) &ss)->sin_addr.s_addr == htonl(INADDR_ANY),
		  "any v4: %s", err);
	CHECK(route_parse_listen("*:9000", &ss, &len, err, sizeof(err)) == 0, "*:port: %s", err);
	CHECK(route_parse_listen("[::]:9000", &ss, &len, err, sizeof(err)) == 0 && ss.ss_family == AF_INET6, "[::]");
	CHECK(route_parse_listen("127.0.0.1", &ss, &len, err, sizeof(err)) == -1 && strstr(err, "host:port"), "no port: %s",
		  err);
	CHECK(route_parse_listen("127.0.0.1:0", &ss, &len, err, sizeof(err)) == -1, "port 0");
	CHECK(route_parse_listen("127.0.0.1:65536", &ss, &len, err, sizeof(err)) == -1, "port too big");
	CHECK(route_parse_listen("127.0.0.1:80x", &ss, &len, err, sizeof(err)) == -1, "port junk");
	CHECK(route_parse_listen("::1:8080", &ss, &len, err, sizeof(err)) == -1, "bare v6");
	CHECK(route_parse_listen("[::1]8080", &ss, &len, err, sizeof(err)) == -1, "v6 without colon");
	CHECK(route_parse_listen("300.1.1.1:80", &ss, &len, err, sizeof(err)) == -1, "bad v4");
}

static void
test_array_literal(void)
{
	char *items[] = {"a", "b,c", "he said \"hi\"", "back\\slash", "{}", "NULL", " sp "};
	char *s = dbpool_text_array_literal(items, 7);

	CHECK(s && strcmp(s, "{\"a\",\"b,c\",\"he said \\\"hi\\\"\",\"back\\\\slash\",\"{}\",\"NULL\",\" sp \"}") == 0,
		  "array literal: %s", s ? s : "(null)");
	free(s);
	s = dbpool_text_array_literal(items, 0);
	CHECK(s && strcmp(s, "{}") == 0, "empty array literal");
	free(s);
}

/* Parse a POST body for /share-links/counts/t; expect status (0 = ok) and a message part. */
static void
expect_body(const char *body, int status, const char *msg)
{
	struct route r;
	int st;

	CHECK(route_parse("POST", "/share-links/counts/t", NULL, 0, &r) == 0 && r.from_body && r.kind == ROUTE_COUNTS &&
			  strcmp(r.content_type, "t") == 0,
		  "POST /counts routes");
	st = route_parse_body(&r, body, strlen(body));
	CHECK(st == status && r.status == status, "body %.60s: status %d, want %d (%s)", body, st, status, r.message);
	CHECK(strstr(r.message, msg) != NULL, "body %.60s: message \"%s\" lacks \"%s\"", body, r.message, msg);
	route_free(&r);
}

static void
test_post_body(void)
{
	struct route r;
	char *big;
	size_t i, o;

	CHECK(route_parse("POST", "/share-links/counts/t", "ignored", 1, &r) == 0 && r.nids == 0, "query ignored");
	big = "{\"x\":[1],\"ids\":[\"b\",\"a/%2F\",\"b\",\"caf\\u00e9\"]}";
	CHECK(route_parse_body(&r, big, strlen(big)) == 0 && r.nids == 3 && strcmp(r.ids[0], "b") == 0 &&
			  strcmp(r.ids[1], "a/%2F") == 0 && strcmp(r.ids[2], "caf\xc3\xa9") == 0,
		  "body ids: literal, deduplicated, in order (%s)", r.message);
	route_free(&r);
	expect_body("{\"ids\":[\"a\"]}", 0, "");
	expect_body("", 400, "not valid JSON");
	expect_body("{\"ids\":]", 400, "not valid JSON in UTF-8 (line 1, column");
	expect_body("{\"ids\":[\"\xff\"]}", 400, "not valid JSON");
	expect_body("[\"a\"]", 400, "must be a JSON object");
	expect_body("{\"id\":[\"a\"]}", 400, "ids is required");
	expect_body("{\"ids\":\"a,b\"}", 400, "must be an array of strings");
	expect_body("{\"ids\":null}", 400, "must be an array of strings");
	expect_body("{\"ids\":[]}", 400, "at least one id");
	expect_body("{\"ids\":[\"a\",1]}", 400, "must be a string");
	expect_body("{\"ids\":[\"a\",\"\"]}", 400, "must not be empty");
	expect_body("{\"ids\":[\"a\\u0000\"]}", 400, "must not contain NUL");
	expect_body("{\"ids\":[\"a\"]} x", 400, "not valid JSON");

	/* 1,000 ids of 256 bytes (written as \u escapes) pass; 257 bytes or 1,001 ids do not */
	big = malloc(ROUTE_MAX_BODY_BYTES);
	o = (size_t) sprintf(big, "{\"ids\":[");
	for (i = 0; i < ROUTE_MAX_IDS; i++)
	{
		o += (size_t) sprintf(big + o, "%s\"%04zx", i ? "," : "", i);
		for (int k = 0; k < ROUTE_MAX_ID_BYTES - 4; k++)
			o += (size_t) sprintf(big + o, "\\u0001");
		big[o++] = '"';
	}
	strcpy(big + o, "]}");
	CHECK(strlen(big) < ROUTE_MAX_BODY_BYTES, "largest body fits the limit");
	CHECK(route_parse("POST", "/share-links/counts/t", NULL, 0, &r) == 0 &&
			  route_parse_body(&r, big, strlen(big)) == 0 && r.nids == ROUTE_MAX_IDS &&
			  strlen(r.ids[999]) == ROUTE_MAX_ID_BYTES,
		  "1,000 ids of 256 bytes: %s", r.message);
	route_free(&r);
	o = (size_t) sprintf(big, "{\"ids\":[\"");
	memset(big + o, 'x', ROUTE_MAX_ID_BYTES + 1);
	strcpy(big + o + ROUTE_MAX_ID_BYTES + 1, "\"]}");
	expect_body(big, 400, "longer than 256 bytes");
	o = (size_t) sprintf(big, "{\"ids\":[");
	for (i = 0; i <= ROUTE_MAX_IDS; i++)
		o += (size_t) sprintf(big + o, "%s\"%zu\"", i ? "," : "", i);
	strcpy(big + o, "]}");
	expect_body(big, 400, "more than 1000 ids");
	free(big);

	/* only /share-links/counts takes a POST; Allow says so */
	expect_error("POST", "/healthz", NULL, 0, 405, "only GET and HEAD");
	CHECK(route_parse("PUT", "/share-links/counts/t", NULL, 0, &r) == 405 && strcmp(r.allow, ROUTE_ALLOW_COUNTS) == 0,
		  "PUT /counts: Allow %s", r.allow);
	route_free(&r);
	CHECK(route_parse("PUT", "/healthz", NULL, 0, &r) == 405 && strcmp(r.allow, ROUTE_ALLOW) == 0,
		  "PUT /healthz: Allow");
	route_free(&r);
	CHECK(strcmp(route_reason(413), "Payload Too Large") == 0 &&
			  strcmp(route_reason(415), "Unsupported Media Type") == 0,
		  "413/415 reasons");

	CHECK(route_json_content_type("application/json"), "application/json");
	CHECK(route_json_content_type(" Application/JSON ; charset=utf-8"), "case and parameters");
	CHECK(!route_json_content_type(NULL), "no Content-Type");
	CHECK(!route_json_content_type("application/x-www-form-urlencoded"), "form");
	CHECK(!route_json_content_type("application/jsonx"), "application/jsonx");
	CHECK(!route_json_content_type("text/json"), "text/json");
}

int
main(void)
{
	test_count_routes();
	test_other_routes();
	test_counts_routes();
	test_decode_utf8();
	test_listen();
	test_array_literal();
	test_post_body();
	return unit_done("test_route");
}
