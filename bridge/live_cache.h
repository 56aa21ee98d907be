/*
 * live_cache.h — the http role's coherent cache of counts (docs/live.md
 * "Cache"): hot keys answered from memory, kept current by the
 * share_count_changed events of every bridge (live_feed.c), bounded in
 * entries and in age.
 *
 * Rules (the guarantees; docs/live.md "Cache" proves them):
 * - Age.  Every entry keeps `confirmed_ms`, the submit time of the newest
 *   database read that returned its version or a lower one; its value's
 *   version is never below what that read returned, so the database held
 *   this value (or a newer one) at some instant at or after confirmed_ms.  A
 *   hit is served only while now - confirmed_ms < max_age (milliseconds of
 *   clock_now_ms()).  Events move an entry's value forward but never its
 *   confirmed_ms: a lost event can delay a change by less than max_age, never
 *   more.
 * - Order.  An entry keeps the highest version it has seen (from events and
 *   from reads); a read that returns a lower version (a lagging replica, a
 *   read that raced an event) is answered with the entry's value instead, so
 *   what this bridge answers for a key never goes back in time while the key
 *   is cached.
 * - Stream.  While the event stream is down (live_cache_stream(.., false))
 *   every lookup is a bypass: the request reads the database (and the
 *   answer still goes through live_cache_fill).  After it comes back an
 *   entry is served only if it was confirmed by a read submitted after the
 *   moment the stream came up (the queue bound and consuming), so changes
 *   whose events were lost in the outage are never served from memory.
 * - A read of unknown version (version < 0: a database without
 *   sharecount_get_versioned) changes nothing and is answered as read.
 *
 * Thread safety and memory: entries live in LIVE_CACHE_SHARDS shards, each a
 * hash table with its own rwlock (lookups share it; fills, events and
 * evictions take it exclusively); no function blocks or does I/O while
 * holding one.  Any thread may call any function.  At most max_entries
 * entries exist (each ~80 bytes plus its key); a full shard evicts with the
 * CLOCK rule (an entry hit since the hand last passed is kept once more).
 * A NULL cache is a disabled one: every function accepts it and does nothing.
 */
#ifndef SC_LIVE_CACHE_H
#define SC_LIVE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "live_event.h"

/* Shards, each with its own lock (a power of two; fewer when max_entries is smaller). */
#define LIVE_CACHE_SHARDS 64
/* Fewest entries per shard (a shard evicts alone: keys of a tiny shard would evict each other early) */
#define LIVE_CACHE_SHARD_MIN 256

enum live_cache_rc
{
	LIVE_CACHE_HIT = 0, /* *count is the answer */
	LIVE_CACHE_MISS,	/* read the database, then live_cache_fill */
	LIVE_CACHE_BYPASS	/* the stream is down: read the database, then live_cache_fill */
};

struct live_cache_stats
{
	uint64_t hits;	   /* requests answered from memory */
	uint64_t misses;   /* requests that read the database while the cache was usable */
	uint64_t bypasses; /* requests that read the database because the stream was down */
	uint64_t entries;  /* entries now */
	uint64_t evicted;  /* entries evicted to make room */
	uint64_t events;   /* events that moved a cached key forward */
	int stream_up;	   /* live_cache_stream's last word */
};

/* A cache of at most max_entries keys (0: NULL, disabled), served for less than max_age_ms after a read. */
struct live_cache *live_cache_new(int max_entries, int max_age_ms);
void live_cache_free(struct live_cache *c);

/* The event stream went up (consuming from a bound queue) or down, at now_ms. */
void live_cache_stream(struct live_cache *c, bool up, int64_t now_ms);

/*
 * Look a key up at now_ms.  HIT: *count is the answer.  MISS or BYPASS: read
 * the database (submitted at or after now_ms) and call live_cache_fill with
 * its result.  Counted in the stats (a NULL cache counts nothing: MISS).
 */
enum live_cache_rc live_cache_get(struct live_cache *c, const char *type, const char *id, int64_t now_ms,
								  int64_t *count);

/*
 * The same for n ids of one type: HIT only when every id hits (counts[i]
 * filled); counted once, as one request.  Makes no entry for a missing id
 * (the list is read without versions, live_cache_http.h).
 */
enum live_cache_rc live_cache_get_many(struct live_cache *c, const char *type, char *const *ids, size_t n,
									   int64_t now_ms, int64_t *counts);

/*
 * A database read submitted at asked_ms returned (count, version): merge it
 * (docs/live.md "Cache") and return the count to answer (the entry's when
 * its version is higher).  version < 0: unknown, count returned as is.
 */
int64_t live_cache_fill(struct live_cache *c, const char *type, const char *id, int64_t count, int64_t version,
						int64_t asked_ms);

/* A share_count_changed event: moves a cached key forward; 1 if it did, 0 otherwise. */
int live_cache_update(struct live_cache *c, const struct live_count *ev);

void live_cache_get_stats(struct live_cache *c, struct live_cache_stats *st);

#endif
