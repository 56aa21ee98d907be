/*
 * http_head.h — the bridge's one reader of a request head (http_head.c):
 * the bytes at the start of a new connection, as far as they have arrived,
 * read once for both of its users — the door's size check (http_door.c,
 * docs/http.md "Request size limits") and the live routes the bridge serves
 * itself (http_stream.c, docs/live.md "Capacity").  Later requests on a
 * kept-alive connection are libmicrohttpd's to read.
 *
 * Rules: pure (no I/O, no allocation); the spans point into the caller's
 * buffer and live as long as it does.  Unit-tested in test/unit/test_head.c
 * (the limits, byte for byte) and test/unit/test_http_stream.c (the fields).
 */
#ifndef SC_HTTP_HEAD_H
#define SC_HTTP_HEAD_H

#include <stddef.h>

/* What http_head_read() found. */
enum http_head_status
{
	HTTP_HEAD_MORE = 0,			  /* incomplete and not too large yet: wait for more bytes */
	HTTP_HEAD_OK = 1,			  /* complete and within the limits */
	HTTP_HEAD_URI_TOO_LONG = 414, /* request-target longer than route_uri_max() */
	HTTP_HEAD_TOO_LARGE = 431	  /* head's cost over route_head_budget() */
};

/* The header fields the live routes read (indexes into struct http_head.field) */
enum
{
	HH_HOST,
	HH_ORIGIN,
	HH_UPGRADE,
	HH_CONNECTION,
	HH_WS_VERSION,
	HH_WS_KEY,
	HH_NFIELDS
};

/* Bytes of the caller's buffer; p is NULL when absent. */
struct http_head_span
{
	const char *p;
	size_t n;
};

struct http_head
{
	int is_head;							 /* the method is HEAD (the answer has no body) */
	size_t len;								 /* HTTP_HEAD_OK: bytes of the head, its empty line included */
	struct http_head_span method;			 /* the request line up to its first space */
	struct http_head_span target;			 /* then up to the next space, or the line's end (without its CR) */
	struct http_head_span version;			 /* the rest of the line after that space (no CR); p NULL: none */
	struct http_head_span field[HH_NFIELDS]; /* HTTP_HEAD_OK: the first value of each name, blanks trimmed */
	/*
	 * HTTP_HEAD_OK: 1 when every header line is "name: value" with no
	 * control character but tab, none is folded (starts with a blank), and
	 * the head holds no NUL byte; the fields above are only read from such a
	 * head (anything else is libmicrohttpd's to judge).
	 */
	int plain;
};

/*
 * Read the start of a connection's byte stream, buf[0..len): the first
 * request's head (request line, header lines, empty line; CRLF or bare LF).
 * A request-target already longer than route_uri_max(conn_memory) is 414
 * even before its line ends (a line with no space at all counts whole); a
 * head whose cost (route_head_cost: every header line, every '&'-separated
 * query piece and every ';'/','-separated cookie is a record, an upper bound
 * of libmicrohttpd's records; a header line not ended yet counts as one) is
 * over route_head_budget(conn_memory), or that has not ended within
 * conn_memory bytes, is 431.  h is filled as far as the bytes go (is_head
 * and the request line's spans always, once the line has a space).
 */
enum http_head_status http_head_read(const char *buf, size_t len, size_t conn_memory, struct http_head *h);

/* 1 if span s holds exactly the NUL-terminated text t. */
int http_head_is(struct http_head_span s, const char *t);

#endif
