/*
 * http_trends.h — the http role's trends routes (http_trends.c; docs/http.md
 * "Channels and trends"): a single count with `by`, /share-links/history and
 * /share-links/top.  http.c routes them (route_parse), calls
 * http_trends_query() for their query strings, hands them to the pool like
 * any read, and calls http_trends_answer() when the job is done.
 */
#ifndef SC_HTTP_TRENDS_H
#define SC_HTTP_TRENDS_H

#include <microhttpd.h>

#include "dbpool.h"
#include "route.h"

/* 1 for ROUTE_BREAKDOWN, ROUTE_HISTORY and ROUTE_TOP. */
int http_trends_route(enum route_kind kind);
/* The pool's job kind of one of those routes. */
enum dbpool_kind http_trends_kind(enum route_kind kind);

/*
 * For a routed COUNT, HISTORY or TOP request: read its query parameters into
 * rt (route_trends_arg, route_trends_finish; a count with `by` becomes
 * ROUTE_BREAKDOWN).  Returns rt->status (0, or 400 with rt->message).
 */
int http_trends_query(struct MHD_Connection *conn, struct route *rt);

/* Answer a done trends job: 200 with its JSON, 400 for SQLSTATE 22023, else 503/500. */
enum MHD_Result http_trends_answer(struct MHD_Connection *conn, const struct route *rt, struct dbpool_job *job);

#endif
