/*
 * http_stream.c — live connections the bridge serves itself (http_stream.h;
 * docs/live.md "Capacity").  libmicrohttpd keeps each connection's
 * http_conn_memory pool, and its own connection state, for the connection's
 * life, an upgraded one's too: 10 KiB and more per subscriber.  A stream or
 * WebSocket that arrives as a connection's first request is therefore
 * answered here and carried on by the live thread (live_thread.c), which
 * keeps only the socket and a small state per subscriber.
 *
 * Validation is libmicrohttpd's path's, through the same functions:
 * http_live_origin_ok() (403), http_live_ws_refusal() (400, 503),
 * http_live_stream_route() (route_parse(): 400, 404), and the hub's limits
 * (503, written by the live thread).  The head is read once, by the door's
 * reader (http_head_read(), http_head.c: request line, six header fields);
 * here only the `ids` query parameters are picked from its target.  A head
 * that is not ours (another method, HTTP/0.9 or 2, not plain: folded lines,
 * control characters, NUL) goes to libmicrohttpd, which answers it as before.
 *
 * Rules: called on the door's thread only; no state of its own.  Memory: one
 * copy of the target and the six field values while a request is looked at.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dbpool.h"
#include "http_live.h"
#include "http_live_int.h"
#include "http_reply.h"
#include "http_stream.h"
#include "log.h"
#include "metrics.h"
#include "route.h"

/* Room for an answer's head lines (status line, fixed fields, Allow or CORS) before its body */
#define HS_HEAD_MAX 1024

void
http_stream_head_free(struct http_stream_head *h)
{
	free(h->copy);
	memset(h, 0, sizeof(*h));
}

/* Copy span s to *out as a NUL-terminated string; returns the string. */
static char *
copy_span(struct http_head_span s, char **out)
{
	char *start = *out;

	memcpy(start, s.p, s.n);
	start[s.n] = '\0';
	*out += s.n + 1;
	return start;
}

/* The query's `ids` parameters, as libmicrohttpd gives them to http.c ('+' is a space, no other decoding). */
static void
parse_query(char *query, struct http_stream_head *h)
{
	char *save = NULL;

	for (char *piece = query ? strtok_r(query, "&", &save) : NULL; piece; piece = strtok_r(NULL, "&", &save))
	{
		char *eq = strchr(piece, '=');

		if (eq)
			*eq = '\0';
		if (strcmp(piece, "ids") != 0 || h->ids_count++ > 0)
			continue;
		h->ids = eq ? eq + 1 : "";
		for (char *p = eq ? eq + 1 : NULL; p && *p; p++)
			if (*p == '+')
				*p = ' ';
	}
}

int
http_stream_parse(const struct http_head *head, struct http_stream_head *h)
{
	size_t need = head->target.n + 1;
	char *out, *query;
	enum http_live_kind kind;

	memset(h, 0, sizeof(*h));
	if (!head->plain || !http_head_is(head->method, "GET") || !head->version.p || head->version.n < 7 ||
		strncmp(head->version.p, "HTTP/1.", 7) != 0 || memchr(head->version.p, ' ', head->version.n))
		return 0; /* another method, HTTP/0.9 or 2, or a head we do not read: libmicrohttpd's */
	for (int i = 0; i < HH_NFIELDS; i++)
		need += head->field[i].p ? head->field[i].n + 1 : 0;
	if (!(out = h->copy = malloc(need)))
		return 0;
	h->path = copy_span(head->target, &out);
	if ((query = strchr(h->path, '?')) != NULL)
		*query++ = '\0';
	kind = http_live_kind(h->path);
	if (kind != HTTP_LIVE_STREAM && kind != HTTP_LIVE_WS)
	{
		http_stream_head_free(h);
		return 0;
	}
	h->ws = kind == HTTP_LIVE_WS;
	h->head_len = head->len;
	for (int i = 0; i < HH_NFIELDS; i++)
		h->hdr[i] = head->field[i].p ? copy_span(head->field[i], &out) : NULL;
	parse_query(query, h);
	return 1;
}

/* ---------------------------------------------------------------- answers -- */

static const char *
reason(unsigned status)
{
	return status == 403 ? "Forbidden" : route_reason((int) status); /* route_reason() knows no 403 */
}

/* Write all of msg now (the socket's buffer is empty): 0, or -1. */
static int
send_all(int fd, const char *msg, size_t len)
{
	while (len > 0)
	{
		ssize_t n = send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		msg += n;
		len -= (size_t) n;
	}
	return 0;
}

void
http_stream_send_error(int fd, unsigned status, const char *message, const char *allow)
{
	json_t *v = json_pack("{s:i, s:s, s:s}", "statusCode", (int) status, "message", message, "error", reason(status));
	char *body = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	char head[HS_HEAD_MAX];
	int n = body ? snprintf(head, sizeof(head),
							"HTTP/1.1 %u %s\r\nContent-Type: " JSON_TYPE "\r\nCache-Control: no-store\r\n%s%s%s"
							"Connection: close\r\nContent-Length: %zu\r\n\r\n",
							status, reason(status), allow ? "Allow: " : "", allow ? allow : "", allow ? "\r\n" : "",
							strlen(body)) :
				   -1;

	json_decref(v);
	if (n <= 0 || (size_t) n >= sizeof(head) || send_all(fd, head, (size_t) n) != 0 ||
		send_all(fd, body, strlen(body)) != 0)
		log_debug("a live route's %u answer could not be written", status);
	else
		metrics_http_status((int) status);
	free(body);
}

void
http_stream_send_db_error(int fd, int rc, const char *err)
{
	http_log_db_failure(rc == DBPOOL_UNAVAILABLE ? "database unavailable" : "database query failed", err);
	if (rc == DBPOOL_UNAVAILABLE)
		http_stream_send_error(fd, 503, "database unavailable", NULL);
	else
		http_stream_send_error(fd, 500, "database query failed", NULL);
}

char *
http_stream_sse_head(const char *cors)
{
	char *head = NULL;

	if (asprintf(&head,
				 "HTTP/1.1 200 OK\r\nContent-Type: " HTTP_LIVE_SSE_TYPE "\r\nCache-Control: no-store\r\n"
				 "X-Accel-Buffering: no\r\n%s%s%sConnection: close\r\n\r\n", /* a proxy must not hold events back */
				 cors ? "Access-Control-Allow-Origin: " : "", cors ? cors : "", cors ? "\r\nVary: Origin\r\n" : "") < 0)
		return NULL;
	return head;
}

/* ------------------------------------------------------------- the offer -- */

/* The handshake checks, the 101, the socket to the live thread. */
static enum http_stream_rc
take_ws(int fd, const struct http_stream_head *h)
{
	char accept[LIVE_WS_ACCEPT_LEN], msg[HS_HEAD_MAX];
	unsigned status;
	const char *why = http_live_ws_refusal(h->hdr[HH_UPGRADE], h->hdr[HH_CONNECTION], h->hdr[HH_WS_VERSION],
										   h->hdr[HH_WS_KEY], accept, &status);
	int n;

	if (why)
	{
		http_stream_send_error(fd, status, why, NULL);
		return HTTP_STREAM_ANSWERED;
	}
	n = snprintf(msg, sizeof(msg),
				 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Accept: %s\r\n\r\n",
				 accept);
	if (send_all(fd, msg, (size_t) n) != 0)
		return HTTP_STREAM_ANSWERED; /* the client is gone: close */
	metrics_http_status(101);
	return http_live_ws_adopt(fd) == 0 ? HTTP_STREAM_TAKEN : HTTP_STREAM_ANSWERED;
}

/* The route's checks, then the socket to the live thread (it subscribes and writes the 200 with the snapshot). */
static enum http_stream_rc
take_stream(int fd, const struct http_stream_head *h, const char *cors)
{
	struct route rt;
	enum http_stream_rc rc = HTTP_STREAM_ANSWERED;

	if (http_live_stream_route("GET", h->path, h->ids, h->ids_count, &rt) != 0)
		http_stream_send_error(fd, (unsigned) rt.status, rt.message, rt.status == 405 ? rt.allow : NULL);
	else if (http_live_sse_adopt(fd, &rt, cors) == 0)
		rc = HTTP_STREAM_TAKEN;
	else
		http_stream_send_error(fd, 503, "out of memory", NULL);
	route_free(&rt);
	return rc;
}

enum http_stream_rc
http_stream_take(int fd, char *buf, const struct http_head *head)
{
	struct http_stream_head h;
	const char *cors;
	enum http_stream_rc rc = HTTP_STREAM_ANSWERED;
	ssize_t n;

	if (!http_stream_parse(head, &h))
		return HTTP_STREAM_NOT_OURS;
	while ((n = recv(fd, buf, h.head_len, 0)) < 0 && errno == EINTR)
		; /* the head was peeked: it is all there */
	if (n != (ssize_t) h.head_len)
		; /* cannot happen short of a broken socket: close */
	else if (!http_live_origin_ok(h.hdr[HH_ORIGIN], h.hdr[HH_HOST], &cors))
		http_stream_send_error(fd, 403, HTTP_LIVE_ORIGIN_REFUSED, NULL);
	else if (h.ws)
		rc = take_ws(fd, &h);
	else
		rc = take_stream(fd, &h, cors);
	http_stream_head_free(&h);
	return rc;
}
