/*
 * live_cache_http.c — the count cache on the http role's request path (see
 * live_cache_http.h, docs/live.md "Cache").
 *
 * Rules: no state of its own; the time a read is asked is taken before the
 * job is submitted, so it is at or before the moment the database takes its
 * snapshot (what live_cache_fill's age rule needs).  A job answered from
 * memory has version -1, so live_cache_http_fill never re-confirms an entry
 * with it.
 */
#include "clock.h"
#include "live_cache_http.h"

int
live_cache_http_lookup(struct live_cache *c, const struct route *rt, struct dbpool_job *job, int64_t *asked_ms)
{
	int64_t now = clock_now_ms();
	enum live_cache_rc rc;

	*asked_ms = now;
	job->version = -1;
	if (!c)
		return 0;
	if (rt->kind == ROUTE_COUNT)
		rc = live_cache_get(c, rt->content_type, rt->content_id, now, &job->count);
	else if (rt->kind == ROUTE_COUNTS)
		rc = live_cache_get_many(c, rt->content_type, rt->ids, rt->nids, now, job->counts);
	else
		return 0;
	if (rc != LIVE_CACHE_HIT)
		return 0;
	job->rc = DBPOOL_OK;
	return 1;
}

void
live_cache_http_fill(struct live_cache *c, const struct route *rt, struct dbpool_job *job, int64_t asked_ms)
{
	if (c && job->rc == DBPOOL_OK && rt->kind == ROUTE_COUNT)
		job->count = live_cache_fill(c, rt->content_type, rt->content_id, job->count, job->version, asked_ms);
}
