/*
 * test_http_stream.c — unit tests for http_stream_parse() of a head read by
 * http_head_read(), and live_out, in bridge/http_stream.c,
 * bridge/http_head.c and bridge/live_out.c (docs/live.md "Capacity"): which
 * first requests the bridge serves itself (a GET of a live stream or
 * WebSocket route, HTTP/1.x) and which stay libmicrohttpd's; the `ids`
 * parameters as libmicrohttpd gives them ('+' a space, the first value, the
 * count); the header fields read (first of each name, trimmed, names in any
 * case); heads with folded lines, control characters or NUL left alone; the output
 * buffer's allocation only while bytes are pending.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "http_stream.h"
#include "live_out.h"

#include "unit.h"

/* Conn memory for the heads below (docs/config.md http_conn_memory's default) */
#define MEM 16384

/* The door's way: the head read by http_head_read() (complete), then offered to http_stream_parse(). */
static int
parse(const char *head, struct http_stream_head *h)
{
	struct http_head hh;

	memset(h, 0, sizeof(*h));
	if (http_head_read(head, strlen(head), MEM, &hh) != HTTP_HEAD_OK)
		return 0;
	return http_stream_parse(&hh, h);
}

/* As parse(), for a head holding NUL bytes (len bytes). */
static int
parse_len(const char *head, size_t len, struct http_stream_head *h)
{
	struct http_head hh;

	memset(h, 0, sizeof(*h));
	if (http_head_read(head, len, MEM, &hh) != HTTP_HEAD_OK)
		return 0;
	return http_stream_parse(&hh, h);
}

static void
test_routes(void)
{
	struct http_stream_head h;

	CHECK(parse("GET /share-links/stream/article?ids=a,b HTTP/1.1\r\nHost: x\r\n\r\n", &h) == 1 && !h.ws &&
			  strcmp(h.path, "/share-links/stream/article") == 0 && strcmp(h.ids, "a,b") == 0 && h.ids_count == 1,
		  "a stream");
	http_stream_head_free(&h);
	CHECK(parse("GET /share-links/ws HTTP/1.0\n\n", &h) == 1 && h.ws && h.head_len == 30, "a WebSocket, bare LF");
	http_stream_head_free(&h);
	CHECK(parse("GET /share-links/stream HTTP/1.1\r\n\r\n", &h) == 1 && !h.ids && h.ids_count == 0,
		  "no type, no ids: routed (and refused) like libmicrohttpd's path");
	http_stream_head_free(&h);
	CHECK(parse("HEAD /share-links/stream/a?ids=1 HTTP/1.1\r\n\r\n", &h) == 0, "HEAD: libmicrohttpd's");
	CHECK(parse("POST /share-links/stream/a?ids=1 HTTP/1.1\r\n\r\n", &h) == 0, "POST: libmicrohttpd's");
	CHECK(parse("GET /share-links/counts/a?ids=1 HTTP/1.1\r\n\r\n", &h) == 0, "another route");
	CHECK(parse("GET / HTTP/1.1\r\n\r\n", &h) == 0, "the page");
	CHECK(parse("GET /share-links/ws HTTP/2\r\n\r\n", &h) == 0, "not HTTP/1.x");
	CHECK(parse("GET /share-links/ws\r\n\r\n", &h) == 0, "HTTP/0.9");
	CHECK(parse("GET /share-links/ws HTTP/1.1\r\nHost: x\r\n", &h) == 0, "no empty line");
}

static void
test_query(void)
{
	struct http_stream_head h;

	CHECK(parse("GET /share-links/stream/t?x=1&ids=a+b,c%2C&ids=z HTTP/1.1\r\n\r\n", &h) == 1 &&
			  strcmp(h.ids, "a b,c%2C") == 0 && h.ids_count == 2,
		  "'+' is a space, nothing else decoded, the first of two");
	http_stream_head_free(&h);
	CHECK(parse("GET /share-links/stream/t?ids HTTP/1.1\r\n\r\n", &h) == 1 && strcmp(h.ids, "") == 0 &&
			  h.ids_count == 1,
		  "ids without '='");
	http_stream_head_free(&h);
	CHECK(parse("GET /share-links/stream/t?idsx=1&xids=2 HTTP/1.1\r\n\r\n", &h) == 1 && !h.ids && h.ids_count == 0,
		  "only the key ids");
	http_stream_head_free(&h);
}

static void
test_headers(void)
{
	struct http_stream_head h;

	CHECK(parse("GET /share-links/ws HTTP/1.1\r\nhost:  a:1 \r\nORIGIN:\thttp://o\t\r\nOrigin: http://p\r\n"
				"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
				"Sec-WebSocket-Key: k==\r\nX-Other: 1\r\n\r\n",
				&h) == 1 &&
			  strcmp(h.hdr[HH_HOST], "a:1") == 0 && strcmp(h.hdr[HH_ORIGIN], "http://o") == 0 &&
			  strcmp(h.hdr[HH_UPGRADE], "websocket") == 0 && strcmp(h.hdr[HH_CONNECTION], "keep-alive, Upgrade") == 0 &&
			  strcmp(h.hdr[HH_WS_VERSION], "13") == 0 && strcmp(h.hdr[HH_WS_KEY], "k==") == 0,
		  "fields trimmed, names in any case, the first Origin");
	http_stream_head_free(&h);
	CHECK(parse("GET /share-links/ws HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &h) == 0, "a folded line");
	CHECK(parse("GET /share-links/ws HTTP/1.1\r\nOrigin: a\rb\r\n\r\n", &h) == 0, "a CR inside a value");
	CHECK(parse("GET /share-links/ws HTTP/1.1\r\nno colon\r\n\r\n", &h) == 0, "a line without a colon");
	CHECK(parse_len("GET /share-links/ws HTTP/1.1\r\nOrigin: a\0b\r\n\r\n", 45, &h) == 0, "a NUL in a value");
	CHECK(parse_len("GET /share-links/ws\0x HTTP/1.1\r\n\r\n", 34, &h) == 0, "a NUL in the request line");
	CHECK(parse("GET /share-links/ws HTTP/1.1\r\nHost : x\r\nUpgrade:websocket\r\n\r\n", &h) == 1 && !h.hdr[HH_HOST] &&
			  strcmp(h.hdr[HH_UPGRADE], "websocket") == 0,
		  "a name is the bytes before the colon; no blank after the colon needed");
	http_stream_head_free(&h);
	CHECK(parse("GET /share-links/ws HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n\r\n", &h) == 1 &&
			  h.head_len == strlen("GET /share-links/ws HTTP/1.1\r\nHost: x\r\n\r\n"),
		  "the head ends at its empty line");
	http_stream_head_free(&h);
}

static void
test_out(void)
{
	struct live_out o = {0};
	int sv[2];
	char big[3000], got[4000];
	size_t total = 0;

	memset(big, 'x', sizeof(big));
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(live_out_pending(&o) == 0 && o.buf == NULL, "empty: nothing allocated");
	CHECK(live_out_append(&o, "ab", 2) == 0 && live_out_append(&o, big, sizeof(big)) == 0 &&
			  live_out_pending(&o) == 2 + sizeof(big),
		  "appended");
	CHECK(live_out_flush(&o, sv[0]) == (long) (2 + sizeof(big)), "written");
	CHECK(o.buf == NULL && live_out_pending(&o) == 0, "drained: freed");
	while (total < 2 + sizeof(big))
	{
		ssize_t n = read(sv[1], got + total, sizeof(got) - total);

		if (n <= 0)
			break;
		total += (size_t) n;
	}
	CHECK(total == 2 + sizeof(big) && memcmp(got, "abxx", 4) == 0, "the bytes, in order");
	close(sv[1]);
	CHECK(live_out_append(&o, "c", 1) == 0 && live_out_flush(&o, sv[0]) < 0, "a broken socket");
	live_out_free(&o);
	close(sv[0]);
}

int
main(void)
{
	test_routes();
	test_query();
	test_headers();
	test_out();
	return unit_done("test_http_stream");
}
