/*
 * http_live.h — the http role's live routes (docs/live.md, docs/http.md "Live
 * counts"): GET / (the live page), GET /share-links/stream/:contentType?ids=
 * (Server-Sent Events, http_live_sse.c) and GET /share-links/ws (WebSocket,
 * served by the live thread: live_thread.c), the http_allowed_origins check and the subscriber
 * metrics.  http.c routes to it and owns the request's life (its struct
 * request carries a stream).
 *
 * Rules: http_live_start() before the first request, http_live_quiesce()
 * after the database pool is drained and before MHD_stop_daemon(),
 * http_live_stop() after it.  Every other function is called by
 * libmicrohttpd's threads, and http_live_kind() and
 * http_live_stream_route() by the door's too (http_stream.c).
 */
#ifndef SC_HTTP_LIVE_H
#define SC_HTTP_LIVE_H

#include <microhttpd.h>

#include "config.h"
#include "dbpool.h"
#include "live_hub.h"
#include "route.h"

enum http_live_kind
{
	HTTP_LIVE_NONE = 0,
	HTTP_LIVE_PAGE,	  /* GET / */
	HTTP_LIVE_STREAM, /* GET /share-links/stream/:contentType?ids=a,b */
	HTTP_LIVE_WS	  /* GET /share-links/ws */
};

struct http_live_stream;

/*
 * Keep the hub (the http role's, fed by the events consumer), parse
 * http_allowed_origins, raise RLIMIT_NOFILE for http_max_connections, start
 * the WebSocket and heartbeat threads, register the metrics.  0, or -1 logged.
 */
int http_live_start(const struct sc_config *cfg, struct live_hub *hub);
/* End every stream (resumed, then finished) and close every WebSocket. */
void http_live_quiesce(void);
/* Join the threads and free what is left (the hub is the caller's). */
void http_live_stop(void);

/* Which live route a raw request path is (HTTP_LIVE_NONE: not ours). */
enum http_live_kind http_live_kind(const char *url);

/*
 * Answer GET / and GET /share-links/ws at once, and any live request from an
 * Origin http_allowed_origins refuses (403): 1 with *ret set.  0 for a
 * stream to be set up (http_live_stream_route).
 */
int http_live_answer_now(struct MHD_Connection *conn, enum http_live_kind kind, const char *method,
						 enum MHD_Result *ret);

/*
 * Route a stream request: the same checks, limits and messages as GET
 * /share-links/counts/:contentType?ids= (docs/http.md).  0 and rt filled
 * (kind ROUTE_COUNTS: its ids are read with sharecount_get_many), or
 * rt->status.
 */
int http_live_stream_route(const char *method, const char *url, const char *ids_raw, int ids_count, struct route *rt);

/*
 * A stream subscribed to rt's keys (before the snapshot is read, so no change
 * is missed), or NULL with a message for a 503 in err.
 */
struct http_live_stream *http_live_stream_new(struct MHD_Connection *conn, const struct route *rt, const char **err);

/* The snapshot read is done (job): queue the event-stream response. */
enum MHD_Result http_live_stream_answer(struct MHD_Connection *conn, struct http_live_stream *s,
										const struct dbpool_job *job, const struct route *rt);

/* The request is over (MHD_OPTION_NOTIFY_COMPLETED): unsubscribe and free. */
void http_live_stream_done(struct http_live_stream *s);

#endif
