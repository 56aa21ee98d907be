/*
 * http_stream.h — live connections the bridge serves itself (docs/live.md
 * "Capacity", docs/http.md "Live counts"): the door (http_door.c) offers
 * each new connection's first request head here; a GET of
 * /share-links/stream/… or /share-links/ws is validated exactly as
 * libmicrohttpd's path does it (the same functions of http_live.c and
 * route.c), answered, and its socket given to the live thread
 * (live_thread.c), so nothing of libmicrohttpd is allocated for it.  Any
 * other request, and every later request of a kept-alive connection, stays
 * libmicrohttpd's.
 */
#ifndef SC_HTTP_STREAM_H
#define SC_HTTP_STREAM_H

#include <stddef.h>

#include "http_head.h"

/* A live route's request, from its head (struct http_head): NUL-terminated copies in `copy` (one malloc). */
struct http_stream_head
{
	char *copy;
	size_t head_len;			 /* bytes of the head on the wire, its empty line included */
	int ws;						 /* 1: /share-links/ws, 0: a stream */
	const char *path;			 /* the raw path, no query */
	const char *ids;			 /* the first `ids` value ('+' read as ' '), or NULL */
	int ids_count;				 /* how many `ids` parameters */
	const char *hdr[HH_NFIELDS]; /* the first value of each field of struct http_head (trimmed), or NULL */
};

/*
 * From a complete head, buf's bytes read by http_head_read() (HTTP_HEAD_OK):
 * 1 when it is a GET of a live stream or WebSocket route with HTTP/1.x and a
 * plain head (h filled; free with http_stream_head_free), 0 when the request
 * is not ours (or out of memory): libmicrohttpd serves it.
 */
int http_stream_parse(const struct http_head *head, struct http_stream_head *h);
void http_stream_head_free(struct http_stream_head *h);

enum http_stream_rc
{
	HTTP_STREAM_NOT_OURS = 0, /* hand the connection to libmicrohttpd */
	HTTP_STREAM_TAKEN,		  /* the live thread has the socket now */
	HTTP_STREAM_ANSWERED	  /* an error was written: read and drop the rest, then close */
};

/*
 * The door's offer: the connection fd whose first head, peeked into buf (not
 * read), http_head_read() found complete and within the limits (head).  For
 * a live route the head is read off the socket into buf and the request
 * answered (see the file's header).
 */
enum http_stream_rc http_stream_take(int fd, char *buf, const struct http_head *head);

/* A stream's 200 head (malloc'ed; NULL out of memory); cors: Access-Control-Allow-Origin or NULL. */
char *http_stream_sse_head(const char *cors);

/*
 * A whole answer in the error shape of docs/http.md "Errors", with
 * Connection: close, written best effort (the socket's buffer is empty);
 * allow: the Allow header of a 405, or NULL.
 */
void http_stream_send_error(int fd, unsigned status, const char *message, const char *allow);
/* A snapshot read's failure: 503 (unavailable, timeout) or 500 (SQL error), logged like http_send_db_error. */
void http_stream_send_db_error(int fd, int rc, const char *err);

#endif
