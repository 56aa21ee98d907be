/*
 * live_cache_http.h — the count cache (live_cache.h) in the http role's count
 * requests (docs/live.md "Cache"): looked up before a GET/POST count job goes
 * to the database pool, filled from the pool's answer.  Glue only: http.c
 * calls these two functions and nothing else of the cache on its request path.
 *
 * Rules: called on libmicrohttpd's threads; a NULL cache (disabled) leaves
 * every request to the database as before.  For ROUTE_COUNTS the job's
 * counts array must hold 2 * nids entries: the second half receives the
 * versions.
 */
#ifndef SC_LIVE_CACHE_HTTP_H
#define SC_LIVE_CACHE_HTTP_H

#include <stdint.h>

#include "dbpool.h"
#include "live_cache.h"
#include "route.h"

/*
 * Before submitting a ROUTE_COUNT or ROUTE_COUNTS job: 1 when the cache
 * answered it (job->count / job->counts filled, nothing to submit); 0 when it
 * must go to the database, with *asked_ms set for live_cache_http_fill.
 */
int live_cache_http_lookup(struct live_cache *c, const struct route *rt, struct dbpool_job *job, int64_t *asked_ms);

/* After the pool answered that job (rc DBPOOL_OK): merge into the cache, and set the counts to answer. */
void live_cache_http_fill(struct live_cache *c, const struct route *rt, struct dbpool_job *job, int64_t asked_ms);

#endif
