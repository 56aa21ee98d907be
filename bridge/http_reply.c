/*
 * http_reply.c — the http role's answers (see http_reply.h): JSON bodies in
 * the error shape of docs/http.md "Errors", database failures logged at most
 * once per 5 s, and the 414/431 answers written straight to a socket
 * (docs/http.md "Request size limits").
 *
 * Rules: called from libmicrohttpd's threads only, with the connection they
 * are serving; every body is malloc'ed and handed to libmicrohttpd
 * (MHD_RESPMEM_MUST_FREE), which frees it; every answer is counted with
 * metrics_http_status().  No state but http_log_db_failure()'s atomics.
 */
#include <microhttpd.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dbpool.h"
#include "clock.h"
#include "http_reply.h"
#include "log.h"
#include "metrics.h"
#include "route.h"

enum MHD_Result
http_send_body(struct MHD_Connection *conn, unsigned status, char *body, size_t len, const char *type,
			   const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r)
	{
		free(body);
		return MHD_NO; /* MHD closes the connection */
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	metrics_http_status((int) status);
	return ret;
}

/*
 * The length of s if it can go into a JSON string as is (printable ASCII
 * without '"' and '\\'), else -1.
 */
static long
json_plain_len(const char *s)
{
	const char *p;

	for (p = s; *p; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			return -1;
	return p - s;
}

static char *
put_bytes(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* v in decimal at p, no terminator (as jansson writes an integer); returns the end */
static char *
put_int64(char *p, int64_t v)
{
	char digits[20];
	uint64_t u = v < 0 ? -(uint64_t) v : (uint64_t) v;
	int n = 0;

	do
		digits[n++] = (char) ('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*p++ = '-';
	while (n > 0)
		*p++ = digits[--n];
	return p;
}

/*
 * Written by hand because it is the hot path of cached reads (P5, P10 in
 * docs/performance.md): no JSON tree, no printf format to parse.
 */
char *
http_count_body(const char *type, const char *id, int64_t count, size_t *len)
{
	static const char head[] = "{\"contentType\":\"", mid[] = "\",\"contentId\":\"", tail[] = "\",\"shareCount\":";
	long tlen = json_plain_len(type);
	long ilen = tlen < 0 ? -1 : json_plain_len(id);
	char *body, *p;

	if (ilen < 0)
		return NULL;
	/* the three literals (their sizes count a NUL each), both strings, <= 20 characters of count, '}' */
	body = malloc(sizeof(head) + sizeof(mid) + sizeof(tail) + (size_t) (tlen + ilen) + 21);
	if (!body)
		return NULL;
	p = put_bytes(body, head, sizeof(head) - 1);
	p = put_bytes(p, type, (size_t) tlen);
	p = put_bytes(p, mid, sizeof(mid) - 1);
	p = put_bytes(p, id, (size_t) ilen);
	p = put_bytes(p, tail, sizeof(tail) - 1);
	p = put_int64(p, count);
	*p++ = '}';
	*len = (size_t) (p - body);
	return body;
}

enum MHD_Result
http_send_count(struct MHD_Connection *conn, const char *type, const char *id, int64_t count)
{
	size_t len;
	char *body = http_count_body(type, id, count, &len);
	json_t *v;

	if (body)
		return http_send_body(conn, 200, body, len, JSON_TYPE, NULL);
	v = json_object();
	json_object_set_new(v, "contentType", json_string(type));
	json_object_set_new(v, "contentId", json_string(id));
	json_object_set_new(v, "shareCount", json_integer(count));
	return http_send_json(conn, 200, v, NULL);
}

/* Send a JSON value (consumed). */
enum MHD_Result
http_send_json(struct MHD_Connection *conn, unsigned status, json_t *v, const char *allow)
{
	char *body = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(v);
	if (!body)
	{
		static const char oom[] =
			"{\"statusCode\":500,\"message\":\"out of memory\",\"error\":\"Internal Server Error\"}";

		body = strdup(oom);
		if (!body)
			return MHD_NO;
		status = 500;
	}
	return http_send_body(conn, status, body, strlen(body), JSON_TYPE, allow);
}

/* The error shape of docs/http.md "Errors": {"statusCode":N,"message":"…","error":"Reason"}. */
enum MHD_Result
http_send_error(struct MHD_Connection *conn, unsigned status, const char *message, const char *allow)
{
	json_t *v = json_object();

	json_object_set_new(v, "statusCode", json_integer(status));
	json_object_set_new(v, "message", json_string(message));
	json_object_set_new(v, "error", json_string(route_reason((int) status)));
	return http_send_json(conn, status, v, allow);
}

/*
 * Log a database failure, at most once per 5 s: during an outage every
 * request fails the same way, and one line per request would flood the log.
 */
void
http_log_db_failure(const char *what, const char *err)
{
	static _Atomic int64_t last_ms = INT64_MIN / 2;
	static _Atomic uint64_t suppressed;
	int64_t now = clock_now_ms();
	int64_t last = atomic_load(&last_ms);
	uint64_t n;

	if (now - last < 5000 || !atomic_compare_exchange_strong(&last_ms, &last, now))
	{
		atomic_fetch_add(&suppressed, 1);
		return;
	}
	n = atomic_exchange(&suppressed, 0);
	if (n)
		log_warn("%s: %s (%llu more since the last message)", what, err, (unsigned long long) n);
	else
		log_warn("%s: %s", what, err);
}

/* Map a dbpool failure to 503 (unreachable/timeout/busy) or 500 (SQL error). */
enum MHD_Result
http_send_db_error(struct MHD_Connection *conn, int rc, const char *err)
{
	if (rc == DBPOOL_UNAVAILABLE)
	{
		http_log_db_failure("database unavailable", err);
		return http_send_error(conn, 503, "database unavailable", NULL);
	}
	http_log_db_failure("database query failed", err);
	return http_send_error(conn, 500, "database query failed", NULL);
}

const char *
http_limit_message(unsigned status)
{
	return status == 414 ? "the URL is too long: POST the ids to /share-links/counts/:contentType" :
						   "the request headers are too large";
}

/*
 * The whole answer, status line to body, with Connection: close: written by
 * us because libmicrohttpd has no room (or no chance) to write it.  Best
 * effort: the socket is non-blocking and the few hundred bytes fit in an
 * empty send buffer (a connection that is not reading may lose it).
 */
int
http_send_raw_error(int fd, unsigned status, int head_only)
{
	char body[256], msg[512];
	int blen, mlen;

	blen = snprintf(body, sizeof(body), "{\"statusCode\":%u,\"message\":\"%s\",\"error\":\"%s\"}", status,
					http_limit_message(status), route_reason((int) status));
	mlen = snprintf(msg, sizeof(msg),
					"HTTP/1.1 %u %s\r\nContent-Type: " JSON_TYPE "\r\nCache-Control: no-store\r\n"
					"Connection: close\r\nContent-Length: %d\r\n\r\n%s",
					status, route_reason((int) status), blen, head_only ? "" : body);
	if (blen <= 0 || mlen <= 0 || (size_t) mlen >= sizeof(msg) ||
		send(fd, msg, (size_t) mlen, MSG_NOSIGNAL | MSG_DONTWAIT) != mlen)
	{
		log_debug("request too large: the %u answer could not be written", status);
		return -1;
	}
	metrics_http_status((int) status);
	return 0;
}
