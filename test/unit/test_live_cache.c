/*
 * test_live_cache.c — unit tests for bridge/live_cache.c (docs/live.md
 * "Cache"): the age bound (served only while less than max_age after the
 * read that confirmed it; events never extend it), versions that never go
 * back (events and reads of a lower version keep the higher one), the
 * bypass while the event stream is down and the re-confirmation after it
 * comes back, the batch lookup, the entry bound under eviction, a disabled
 * cache, and concurrent lookups, fills and events from several threads.
 * Plain program: exit 0 = pass; every failed check prints one line.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_cache.h"

#include "unit.h"
#include "unit_live.h"

#define AGE 1000 /* max age of the caches below, ms */

static enum live_cache_rc
get(struct live_cache *c, const char *id, int64_t now, int64_t *n)
{
	*n = -42;
	return live_cache_get(c, "article", id, now, n);
}

static void
test_age(void)
{
	struct live_cache *c = live_cache_new(100, AGE);
	struct live_count ev;
	int64_t n;

	live_cache_stream(c, true, 1000);
	CHECK(get(c, "1", 1001, &n) == LIVE_CACHE_MISS, "empty cache: miss");
	CHECK(live_cache_fill(c, "article", "1", 7, 3, 1001) == 7, "fill answers the read");
	CHECK(get(c, "1", 1001, &n) == LIVE_CACHE_HIT && n == 7, "hit at once, got %lld", (long long) n);
	CHECK(get(c, "1", 1001 + AGE - 1, &n) == LIVE_CACHE_HIT && n == 7, "hit just under max age");
	CHECK(get(c, "1", 1001 + AGE, &n) == LIVE_CACHE_MISS, "miss at max age: never older than max_age");
	/* an event moves the value forward but does not make it younger */
	ev = unit_count("article", "1", 8, 4);
	CHECK(live_cache_update(c, &ev) == 1, "event v4 moves the key");
	CHECK(get(c, "1", 1001 + AGE + 5, &n) == LIVE_CACHE_MISS, "an event does not extend the age");
	CHECK(live_cache_fill(c, "article", "1", 8, 4, 2500) == 8, "re-read");
	CHECK(get(c, "1", 2600, &n) == LIVE_CACHE_HIT && n == 8, "re-confirmed: hit with 8, got %lld", (long long) n);
	ev = unit_count("article", "1", 9, 5);
	live_cache_update(c, &ev);
	CHECK(get(c, "1", 2601, &n) == LIVE_CACHE_HIT && n == 9, "an event's count is served at once, got %lld",
		  (long long) n);
	/* a fill with an older asked time never moves confirmed back */
	live_cache_fill(c, "article", "1", 9, 5, 100);
	CHECK(get(c, "1", 2500 + AGE - 1, &n) == LIVE_CACHE_HIT, "an older read does not age the entry");
	live_cache_free(c);
}

static void
test_versions(void)
{
	struct live_cache *c = live_cache_new(100, AGE);
	struct live_count ev;
	int64_t n;

	live_cache_stream(c, true, 0);
	CHECK(get(c, "a", 10, &n) == LIVE_CACHE_MISS, "miss makes a placeholder");
	ev = unit_count("article", "a", 50, 10);
	CHECK(live_cache_update(c, &ev) == 1, "an event during the read is kept");
	CHECK(get(c, "a", 11, &n) == LIVE_CACHE_MISS, "a placeholder with an event's value is not confirmed: miss");
	CHECK(live_cache_fill(c, "article", "a", 49, 9, 10) == 50, "a read of v9 after the event v10 answers v10's 50");
	CHECK(get(c, "a", 12, &n) == LIVE_CACHE_HIT && n == 50, "hit 50, got %lld", (long long) n);
	ev = unit_count("article", "a", 40, 8);
	CHECK(live_cache_update(c, &ev) == 0, "an older event is ignored");
	ev = unit_count("article", "a", 50, 10);
	CHECK(live_cache_update(c, &ev) == 0, "the same version again is ignored");
	CHECK(live_cache_fill(c, "article", "a", 30, 6, 20) == 50, "a lagging replica's v6 answers the cached 50");
	CHECK(get(c, "a", 21, &n) == LIVE_CACHE_HIT && n == 50, "still 50");
	CHECK(live_cache_fill(c, "article", "a", 51, 11, 30) == 51, "a newer read wins");
	CHECK(live_cache_fill(c, "article", "a", 99, -1, 40) == 99, "unknown version: answered as read");
	CHECK(get(c, "a", 41, &n) == LIVE_CACHE_HIT && n == 51, "unknown version changes nothing: 51, got %lld",
		  (long long) n);
	ev = unit_count("article", "zzz", 5, 1);
	CHECK(live_cache_update(c, &ev) == 0, "events for keys nobody read are not cached");
	CHECK(live_cache_fill(c, "article", "0", 0, 0, 50) == 0, "an unknown key: count 0, version 0");
	CHECK(get(c, "0", 51, &n) == LIVE_CACHE_HIT && n == 0, "an unknown key is cached as 0");
	CHECK(get(c, "a", 41, &n) == LIVE_CACHE_HIT && live_cache_get(c, "other", "a", 41, &n) == LIVE_CACHE_MISS,
		  "the type is part of the key");
	live_cache_free(c);
}

static void
test_stream(void)
{
	struct live_cache *c = live_cache_new(100, AGE);
	struct live_cache_stats st;
	int64_t n;

	CHECK(get(c, "1", 5, &n) == LIVE_CACHE_BYPASS, "a new cache's stream is down: bypass");
	CHECK(live_cache_fill(c, "article", "1", 3, 2, 5) == 3, "a bypassed read is still merged");
	live_cache_stream(c, true, 100);
	CHECK(get(c, "1", 101, &n) == LIVE_CACHE_MISS, "confirmed before the stream came up: miss");
	live_cache_fill(c, "article", "1", 3, 2, 100);
	CHECK(get(c, "1", 102, &n) == LIVE_CACHE_MISS, "confirmed in the very millisecond it came up: still a miss");
	live_cache_fill(c, "article", "1", 3, 2, 101);
	CHECK(get(c, "1", 102, &n) == LIVE_CACHE_HIT && n == 3, "confirmed after: hit");
	live_cache_stream(c, false, 200);
	CHECK(get(c, "1", 201, &n) == LIVE_CACHE_BYPASS, "stream down: bypass, even for a fresh entry");
	CHECK(live_cache_fill(c, "article", "1", 2, 1, 201) == 3, "a bypassed read of an older version answers 3");
	live_cache_stream(c, true, 300);
	CHECK(get(c, "1", 301, &n) == LIVE_CACHE_MISS, "back up: entries from the outage are re-read");
	live_cache_fill(c, "article", "1", 4, 3, 301);
	CHECK(get(c, "1", 302, &n) == LIVE_CACHE_HIT && n == 4, "then hit");
	live_cache_get_stats(c, &st);
	CHECK(st.hits == 2 && st.misses == 3 && st.bypasses == 2, "stats: %llu hits %llu misses %llu bypasses",
		  (unsigned long long) st.hits, (unsigned long long) st.misses, (unsigned long long) st.bypasses);
	CHECK(st.entries == 1 && st.stream_up == 1, "one entry, stream up");
	live_cache_free(c);
}

static void
test_many(void)
{
	struct live_cache *c = live_cache_new(100, AGE);
	char *ids[] = {"x", "y", "z"};
	int64_t counts[3];

	live_cache_stream(c, true, 0);
	live_cache_fill(c, "t", "x", 1, 1, 1);
	live_cache_fill(c, "t", "y", 2, 1, 1);
	CHECK(live_cache_get_many(c, "t", ids, 3, 2, counts) == LIVE_CACHE_MISS, "one id missing: miss");
	live_cache_fill(c, "t", "z", 3, 1, 3);
	CHECK(live_cache_get_many(c, "t", ids, 3, 4, counts) == LIVE_CACHE_HIT, "all cached: hit");
	CHECK(counts[0] == 1 && counts[1] == 2 && counts[2] == 3, "counts in order");
	CHECK(live_cache_get_many(c, "t", ids, 3, 1 + AGE, counts) == LIVE_CACHE_MISS, "one too old: miss");
	live_cache_stream(c, false, 5);
	CHECK(live_cache_get_many(c, "t", ids, 3, 6, counts) == LIVE_CACHE_BYPASS, "stream down: bypass");
	live_cache_free(c);
}

static void
test_bound(void)
{
	struct live_cache *c = live_cache_new(1000, AGE);
	struct live_cache_stats st;
	char id[32];
	int64_t n;
	int i, hot_hits = 0;

	live_cache_stream(c, true, 0);
	live_cache_fill(c, "article", "hot", 1, 1, 1);
	for (i = 0; i < 100000; i++)
	{
		snprintf(id, sizeof(id), "%d", i);
		if (get(c, id, 2, &n) == LIVE_CACHE_MISS)
			live_cache_fill(c, "article", id, i, 1, 2);
		hot_hits += get(c, "hot", 2, &n) == LIVE_CACHE_HIT;
	}
	live_cache_get_stats(c, &st);
	CHECK(st.entries <= 1000, "at most 1000 entries, got %llu", (unsigned long long) st.entries);
	CHECK(st.entries > 900, "the cache fills up: %llu", (unsigned long long) st.entries);
	CHECK(st.evicted >= 99000, "evicted %llu", (unsigned long long) st.evicted);
	CHECK(hot_hits == 100000, "a key hit between evictions stays (CLOCK): %d of 100000", hot_hits);
	live_cache_free(c);

	c = live_cache_new(1, AGE);
	live_cache_stream(c, true, 0);
	live_cache_fill(c, "article", "a", 1, 1, 1);
	live_cache_fill(c, "article", "b", 2, 1, 1);
	live_cache_get_stats(c, &st);
	CHECK(st.entries == 1, "http_cache_entries = 1 holds one entry, got %llu", (unsigned long long) st.entries);
	CHECK(get(c, "b", 2, &n) == LIVE_CACHE_HIT && n == 2, "the newest one");
	live_cache_free(c);

	c = live_cache_new(0, AGE);
	CHECK(c == NULL, "0 entries: disabled");
	live_cache_stream(c, true, 0);
	CHECK(get(c, "a", 1, &n) == LIVE_CACHE_MISS, "disabled: miss");
	CHECK(live_cache_fill(c, "article", "a", 5, 1, 1) == 5, "disabled: fill answers the read");
	live_cache_free(c);
}

/*
 * Threads: lookups, fills of reads a little behind, and events on a few keys
 * (no eviction: what an evicted key's reader saw is forgotten, docs/live.md);
 * what a reader sees never goes back.
 */
#define THREADS 6
#define ROUNDS 200000
static struct live_cache *shared;
static _Atomic int64_t version_clock;

static void *
worker(void *arg)
{
	long me = (long) arg;
	int64_t last[8] = {0};
	int i;
	char id[8];

	for (i = 0; i < ROUNDS; i++)
	{
		int k = (i * 7 + (int) me) % 8;
		int64_t n, v;

		snprintf(id, sizeof(id), "%d", k);
		if (me % 3 == 0)
		{
			struct live_count ev;

			v = atomic_fetch_add(&version_clock, 1) + 1;
			ev = unit_count("article", id, v, v); /* count = version: increasing */
			live_cache_update(shared, &ev);
			continue;
		}
		if (live_cache_get(shared, "article", id, 1, &n) != LIVE_CACHE_HIT)
		{
			v = atomic_load(&version_clock) - 50; /* a read that is a little behind */
			n = live_cache_fill(shared, "article", id, v < 0 ? 0 : v, v < 0 ? 0 : v, 1);
		}
		if (n < last[k])
		{
			failures++;
			printf("FAIL thread %ld key %d went back from %lld to %lld\n", me, k, (long long) last[k], (long long) n);
			return NULL;
		}
		last[k] = n;
	}
	return NULL;
}

static void
test_threads(void)
{
	pthread_t t[THREADS];
	long i;

	shared = live_cache_new(1000, 100000);
	live_cache_stream(shared, true, 0);
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *) i);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(1, "threads done");
	live_cache_free(shared);
}

int
main(void)
{
	test_age();
	test_versions();
	test_stream();
	test_many();
	test_bound();
	test_threads();
	return unit_done("test_live_cache");
}
