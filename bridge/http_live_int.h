/*
 * http_live_int.h — private to the http role's live files (http_live.c,
 * http_live_sse.c, the live thread's live_thread.c, live_conn.c and
 * live_snap.c) and http_stream.c: the hub they share, the Origin and
 * handshake checks, the snapshot's counts, libmicrohttpd's streams and the
 * live thread as http_live.c starts and stops them, and the live thread's
 * adoption of the connections the bridge serves itself.
 *
 * Rules: the hub is set once by http_live_start() before any connection and
 * stays until http_live_stop(); the hub is thread-safe by itself.
 */
#ifndef SC_HTTP_LIVE_INT_H
#define SC_HTTP_LIVE_INT_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "live_event.h"
#include "live_hub.h"
#include "live_ws.h"
#include "route.h"

/*
 * SO_SNDBUF of every stream and WebSocket (the kernel doubles it).  Without it
 * the kernel grows a socket's send buffer up to tcp_wmem's maximum (4 MiB
 * here) for a client that does not read, per subscriber; with it a client
 * that stops reading fills this, then libmicrohttpd's or wslay's buffer, then
 * its hub queue (LIVE_SUB_QUEUE_BYTES) and is dropped.  64 KiB holds a few
 * hundred events: a reading client never comes near it.
 */
#define HTTP_LIVE_SNDBUF (64 * 1024)
/* A stream's Content-Type (docs/live.md "Server-Sent Events") */
#define HTTP_LIVE_SSE_TYPE "text/event-stream; charset=utf-8"

/* Set it on fd (failure only logged: the kernel's default then applies). */
void http_live_set_sndbuf(int fd);

/* The http role's hub (http_live_start). */
struct live_hub *http_live_hub(void);

/*
 * One key's snapshot count (docs/live.md "Server-Sent Events"): the hub's
 * latest when the key has one, else `count` as read from the database with
 * version 0 (sharecount_get_many reads none) and delta 0, stamped now.
 */
void http_live_snapshot_count(struct live_count *c, const char *type, const char *id, int64_t count);

/*
 * docs/config.md http_allowed_origins: 1 if the request's Origin may use the
 * live routes (*cors: the Origin to echo in Access-Control-Allow-Origin, or
 * NULL when none is needed), else 0.
 */
int http_live_origin_allowed(struct MHD_Connection *conn, const char **cors);
/* The same check on the header values (NULL: absent). */
int http_live_origin_ok(const char *origin, const char *host, const char **cors);
/* The 403's message (route_reason() knows no 403: the error shape is built by hand, "Forbidden") */
#define HTTP_LIVE_ORIGIN_REFUSED "this Origin is not allowed (http_allowed_origins)"

/*
 * The WebSocket handshake's checks (docs/live.md "WebSocket") on the Upgrade,
 * Connection, Sec-WebSocket-Version and Sec-WebSocket-Key values (NULL:
 * absent): NULL with accept filled, or the error message with *status (400,
 * or 503 while the role is stopping).
 */
const char *http_live_ws_refusal(const char *up, const char *co, const char *ver, const char *key,
								 char accept[LIVE_WS_ACCEPT_LEN], unsigned *status);

/* Start / stop the heartbeat thread; quiesce ends every stream (resumed, then finished). */
int http_live_sse_start(void);
void http_live_sse_quiesce(void);
/* Streams open now. */
uint64_t http_live_sse_count(void);

/*
 * Start / stop the live thread (live_thread.c), which serves every WebSocket
 * and the streams the bridge serves itself; stop closes every connection.
 * 0, or -1 logged.
 */
int http_live_thread_start(int db_timeout_ms);
void http_live_thread_stop(void);

/* MHD_create_response_for_upgrade's callback: hand the socket to the live thread (live_conn.c). */
void http_live_ws_upgraded(void *cls, struct MHD_Connection *connection, void *req_cls, const char *extra_in,
						   size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh);

/* WebSocket connections open now. */
uint64_t http_live_ws_count(void);

/*
 * Connections the bridge serves itself (http_stream.c took them from the
 * door: docs/live.md "Capacity").  The socket becomes the live thread's; it
 * closes it and calls http_door_release().  A WebSocket whose 101 is written:
 * http_live_ws_adopt().  A stream routed (rt's ids are taken over, the rest
 * stays the caller's): subscribed, then its 200 head and snapshot written,
 * or a JSON 503 (no room, database unavailable); cors: the
 * Access-Control-Allow-Origin value or NULL.  0, or -1 when out of memory
 * (the socket is still the caller's).
 */
int http_live_ws_adopt(int fd);
int http_live_sse_adopt(int fd, struct route *rt, const char *cors);
/* Streams served by the live thread now (http_live_sse_count: libmicrohttpd's). */
uint64_t http_live_thread_sse_count(void);

#endif
