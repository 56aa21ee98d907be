/*
 * http_reply.h — how the http role (http.c) answers: JSON bodies, the error
 * shape {"statusCode":N,"message":"…","error":"Reason"} (docs/http.md
 * "Errors"), database failures, and requests too large for libmicrohttpd
 * (docs/http.md "Request size limits").
 * Each queues one response on the connection and counts it in
 * sharecount_http_requests_total.
 */
#ifndef SC_HTTP_REPLY_H
#define SC_HTTP_REPLY_H

#include <microhttpd.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_TYPE "application/json; charset=utf-8"

/* Queue body (malloc'ed, taken over even on failure) with a Content-Type; allow: an Allow header or NULL. */
enum MHD_Result http_send_body(struct MHD_Connection *conn, unsigned status, char *body, size_t len, const char *type,
							   const char *allow);
/* Queue a JSON value (consumed); out of memory becomes a 500. */
enum MHD_Result http_send_json(struct MHD_Connection *conn, unsigned status, json_t *v, const char *allow);
/* Queue the error shape; message must be valid UTF-8 (never the request's bytes). */
enum MHD_Result http_send_error(struct MHD_Connection *conn, unsigned status, const char *message, const char *allow);
/*
 * The body of a count answer, {"contentType":"…","contentId":"…","shareCount":n},
 * byte for byte what jansson writes, written directly (malloc'ed, *len set);
 * NULL when a string needs escaping (then use jansson) or out of memory.
 */
char *http_count_body(const char *type, const char *id, int64_t count, size_t *len);
/* Queue a count answer (http_count_body, else jansson). */
enum MHD_Result http_send_count(struct MHD_Connection *conn, const char *type, const char *id, int64_t count);
/* Log (rate-limited) and queue a dbpool failure: DBPOOL_UNAVAILABLE 503, else 500. */
enum MHD_Result http_send_db_error(struct MHD_Connection *conn, int rc, const char *err);
/* Log a database failure of `what`, at most once per 5 s. */
void http_log_db_failure(const char *what, const char *err);

/* The message of our 414 (request-target too long) or 431 (head too large). */
const char *http_limit_message(unsigned status);

/*
 * Write a whole JSON 414 or 431 answer (no body when head_only) with
 * Connection: close straight to socket fd, for a request libmicrohttpd must
 * not or cannot answer (docs/http.md "Request size limits").  Counts it; 0
 * when it was written whole, -1 (logged at debug) when not.  The caller
 * closes the connection.
 */
int http_send_raw_error(int fd, unsigned status, int head_only);

#endif
