/*
 * http_door.h — the http role's front door (http_door.c): the listening
 * socket, the first request's size check before libmicrohttpd reads it, and
 * http_max_connections (docs/http.md "Request size limits").
 */
#ifndef SC_HTTP_DOOR_H
#define SC_HTTP_DOOR_H

#include <microhttpd.h>
#include <stddef.h>
#include <sys/socket.h>

/* Bind and listen on ss (SO_REUSEADDR; IPv6 only for an IPv6 address); 0, or -1 logged. */
int http_door_open(const struct sockaddr_storage *ss, socklen_t sslen);

/*
 * Start the door's thread: accept connections, hand those whose first head
 * fits conn_memory to libmicrohttpd (http_loop_add: daemons started with
 * MHD_USE_NO_LISTEN_SOCKET), answer the others 414/431; at most max_conn
 * connections at once (held here or by libmicrohttpd);
 * a connection idle for timeout_ms before its head is complete is closed.
 * 0, or -1 logged (the socket is closed then).
 */
int http_door_start(size_t conn_memory, unsigned max_conn, int timeout_ms);

/* MHD_OPTION_NOTIFY_CONNECTION: a closed connection frees its place (http_max_connections). */
void http_door_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
					  enum MHD_ConnectionNotificationCode code);

/*
 * A connection the door handed on is closed (libmicrohttpd's, through
 * http_door_notify, or the live thread's): its place is free.  Any thread.
 */
void http_door_release(void);

/*
 * Later requests on a kept-alive connection (the door checked the first).
 * MHD_OPTION_URI_LOG_CALLBACK: a request-target longer than route_uri_max()
 * is answered 414 at once and HTTP_URI_ANSWERED returned (it becomes the
 * request's *req_cls); else NULL.
 */
extern int http_uri_answered_marker;
#define HTTP_URI_ANSWERED ((void *) &http_uri_answered_marker)
void *http_uri_check(void *cls, const char *uri, struct MHD_Connection *conn);

/*
 * At the handler's first call (cls: *req_cls): 1 when the request is
 * answered already — 414 by http_uri_check(), or 431 now because its head's
 * route_head_cost() is over route_head_budget() — and the handler must
 * return MHD_NO (libmicrohttpd closes the connection); else 0.
 */
int http_head_refused(struct MHD_Connection *conn, const char *method, void *cls);

/* Stop accepting, close the connections not yet handed over, join the thread. */
void http_door_stop(void);

#endif
