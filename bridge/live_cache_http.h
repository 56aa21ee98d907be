/*
 * live_cache_http.h — the count cache (live_cache.h) in the http role's count
 * requests (docs/live.md "Cache"): looked up before a count job goes to the
 * database pool, filled from the pool's answer.  Glue only: http.c calls these
 * two functions and nothing else of the cache on its request path.
 *
 * Rules: called on libmicrohttpd's threads; a NULL cache (disabled) leaves
 * every request to the database as before.  A single count (ROUTE_COUNT) is
 * answered from the cache or read with its version and merged into it.  A
 * list (ROUTE_COUNTS, GET or POST) is answered from the cache only when every
 * id hits; otherwise it is read by sharecount_get_many, without versions,
 * and answered as read (the cache is not filled from it).
 */
#ifndef SC_LIVE_CACHE_HTTP_H
#define SC_LIVE_CACHE_HTTP_H

#include <stdint.h>

#include "dbpool.h"
#include "live_cache.h"
#include "route.h"

/*
 * Before submitting a ROUTE_COUNT or ROUTE_COUNTS job: 1 when the cache
 * answered it (job->count / job->counts filled, rc DBPOOL_OK, nothing to
 * submit); 0 when it must go to the database, with *asked_ms set for
 * live_cache_http_fill.
 */
int live_cache_http_lookup(struct live_cache *c, const struct route *rt, struct dbpool_job *job, int64_t *asked_ms);

/* After the pool answered a ROUTE_COUNT job (rc DBPOOL_OK): merge it into the cache, and set the count to answer. */
void live_cache_http_fill(struct live_cache *c, const struct route *rt, struct dbpool_job *job, int64_t asked_ms);

#endif
