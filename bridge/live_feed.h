/*
 * live_feed.h — the http role's consumer of count-change events
 * (docs/live.md "Feed"): a thread with its own RabbitMQ connection that reads
 * every share_count_changed event published to the updates exchange (by any
 * bridge) and hands each one to the cache (live_cache_update) and, when
 * there is one, to the subscriber hub (live_hub_update).  It tells the cache
 * whether the stream is up, so that the cache is bypassed while it is not.
 *
 * Rules: one feed per process, started and stopped by the http role's
 * thread (http_start / http_stop); the feed thread owns its AMQP connection
 * (rabbitmq-c is not thread-safe) and touches nothing else but the cache and
 * the hub (both thread-safe) and atomics.  The cache and the hub must
 * outlive live_feed_stop().  Its /metrics section (cache and events) is
 * registered by live_feed_start, whether or not a thread is needed.
 */
#ifndef SC_LIVE_FEED_H
#define SC_LIVE_FEED_H

#include <stdbool.h>

#include "config.h"
#include "live_cache.h"
#include "live_hub.h"

/*
 * The feed's queue: exclusive, auto-delete, server-named, bound with "#",
 * and at most this many events long (older ones dropped first) should the
 * feed fall behind: an event is a few hundred bytes, so a few MiB of broker
 * memory at most per bridge.  A dropped event costs freshness only
 * (docs/live.md "Cache": max age).
 */
#define LIVE_FEED_QUEUE_MAX 10000
/* How long one wait for an event lasts before the stop flag is looked at again. */
#define LIVE_FEED_WAIT_MS 200

/*
 * Start the feed thread when there is something to feed (a cache or a hub):
 * 0, or -1 (logged) when the thread cannot start.  hub may be NULL, and so
 * may cache (disabled).
 */
int live_feed_start(const struct sc_config *cfg, struct live_hub *hub, struct live_cache *cache);
/* Stop and join the thread (the stream counts as down afterwards). */
void live_feed_stop(void);
/* Is the stream up: the queue bound and consumed on a live connection? */
bool live_feed_up(void);

#endif
