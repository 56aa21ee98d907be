/*
 * http_ops.h — the http role's operational answers (docs/http.md "GET
 * /readyz", "GET /metrics"), given the database job http.c ran for them.
 * Each queues one response and counts it in sharecount_http_requests_total.
 */
#ifndef SC_HTTP_OPS_H
#define SC_HTTP_OPS_H

#include <microhttpd.h>

#include "dbpool.h"

/* /readyz after its SELECT 1: 200, or 503 naming the first thing down. */
enum MHD_Result http_ops_readyz(struct MHD_Connection *conn, const struct dbpool_job *job);
/* /metrics after its sharecount_stats(): the outbox gauges set (or withdrawn), then everything rendered. */
enum MHD_Result http_ops_metrics(struct MHD_Connection *conn, const struct dbpool_job *job);

#endif
