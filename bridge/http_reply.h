/*
 * http_reply.h — how the http role (http.c) answers: JSON bodies, the error
 * shape {"statusCode":N,"message":"…","error":"Reason"} (docs/http.md
 * "Errors"), database failures, and requests too large for libmicrohttpd.
 * Each queues one response on the connection and counts it in
 * sharecount_http_requests_total.
 */
#ifndef SC_HTTP_REPLY_H
#define SC_HTTP_REPLY_H

#include <microhttpd.h>
#include <jansson.h>
#include <stddef.h>

#define JSON_TYPE "application/json; charset=utf-8"

/* Queue body (malloc'ed, taken over even on failure) with a Content-Type; allow: an Allow header or NULL. */
enum MHD_Result http_send_body(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
							   const char *type, const char *allow);
/* Queue a JSON value (consumed); out of memory becomes a 500. */
enum MHD_Result http_send_json(struct MHD_Connection *conn, unsigned status, json_t *v, const char *allow);
/* Queue the error shape; message must be valid UTF-8 (never the request's bytes). */
enum MHD_Result http_send_error(struct MHD_Connection *conn, unsigned status, const char *message,
								const char *allow);
/* Log (rate-limited) and queue a dbpool failure: DBPOOL_UNAVAILABLE 503, else 500. */
enum MHD_Result http_send_db_error(struct MHD_Connection *conn, int rc, const char *err);
/* Log a database failure of `what`, at most once per 5 s. */
void		http_log_db_failure(const char *what, const char *err);

/*
 * Write a JSON 414 (the request line is the larger part of the request) or
 * 431 straight to the connection's socket, with Connection: close: for the
 * request libmicrohttpd is closing because our answer's header did not fit
 * in http_conn_memory.  Call only from request_done() for that connection.
 */
void		http_send_raw_too_large(struct MHD_Connection *conn);

#endif
