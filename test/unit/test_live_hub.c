/*
 * test_live_hub.c — unit tests for bridge/live_hub.c (docs/live.md): keys ->
 * subscribers, versions that only move forward, bounded per-subscriber
 * queues (a slow subscriber is dropped), the limits, 10,000 subscribers in
 * little memory, and concurrent updates from several threads.
 * Plain program: exit 0 = pass; every failed check prints one line.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_hub.h"

#include "unit.h"
#include "unit_live.h"

static int wakes;
static void
wake_count(void *arg)
{
	(void) arg;
	wakes++;
}

/* Drain sub; return how many texts, the last one in *last (malloc'ed, or NULL). */
static int
drain(struct live_hub *hub, struct live_sub *s, char **last)
{
	char *d;
	int n = 0;

	*last = NULL;
	while (live_hub_next(hub, s, &d) == 1)
	{
		free(*last);
		*last = d;
		n++;
	}
	return n;
}

static void
test_versions(void)
{
	struct live_hub *hub = live_hub_new();
	struct live_sub *a = live_hub_attach(hub, wake_count, NULL);
	char *ids[] = {"1", "2"};
	char err[200];
	struct live_count c = unit_count("article", "1", 5, 3), got;
	char *last;

	CHECK(live_hub_update(hub, &c) == 0, "nobody watches yet: ignored");
	CHECK(live_hub_subscribe(hub, a, "article", ids, 2, err, sizeof(err)) == 0, "subscribe: %s", err);
	CHECK(live_hub_subscribe(hub, a, "article", ids, 2, err, sizeof(err)) == 0, "again: %s", err);
	CHECK(live_hub_sub_count(hub, a) == 2, "twice the same ids is 2 subscriptions, not %d", live_hub_sub_count(hub, a));
	CHECK(live_hub_latest(hub, "article", "1", &got) == 0, "no latest before an update");
	wakes = 0;
	CHECK(live_hub_update(hub, &c) == 1, "version 3 moves the key");
	CHECK(wakes == 1, "one wake per queued text, got %d", wakes);
	c = unit_count("article", "1", 4, 2);
	CHECK(live_hub_update(hub, &c) == 0, "version 2 after 3 is stale");
	c = unit_count("article", "1", 5, 3);
	CHECK(live_hub_update(hub, &c) == 0, "version 3 again is stale");
	CHECK(live_hub_latest(hub, "article", "1", &got) == 1 && got.share_count == 5 && got.version == 3,
		  "latest stays at count 5 version 3, got %lld v%lld", (long long) got.share_count, (long long) got.version);
	c = unit_count("article", "1", 9, 7);
	CHECK(live_hub_update(hub, &c) == 1, "version 7 moves it");
	CHECK(drain(hub, a, &last) == 2, "two texts queued (v3, v7)");
	CHECK(last && strstr(last, "\"shareCount\":9") && strstr(last, "\"version\":7"), "last text is v7: %s", last);
	free(last);
	CHECK(live_hub_unsubscribe(hub, a, "article", ids, 1) == 1, "unsubscribe 1");
	c = unit_count("article", "1", 10, 8);
	CHECK(live_hub_update(hub, &c) == 0, "unsubscribed key is forgotten");
	CHECK(live_hub_next(hub, a, &last) == 0 && last == NULL, "nothing queued");
	c = unit_count("article", "2", 1, 1);
	CHECK(live_hub_update(hub, &c) == 1, "key 2 still watched");
	c = unit_count("video", "2", 1, 1);
	CHECK(live_hub_update(hub, &c) == 0, "another contentType is another key");
	live_hub_detach(hub, a);
	live_hub_free(hub);
}

static void
test_limits(void)
{
	struct live_hub *hub = live_hub_new();
	struct live_sub *a = live_hub_attach(hub, NULL, NULL);
	char *ids[LIVE_MAX_IDS_PER_SUBSCRIBE + 1];
	char err[200];
	struct live_hub_stats st;

	for (int i = 0; i <= LIVE_MAX_IDS_PER_SUBSCRIBE; i++)
		CHECK(asprintf(&ids[i], "id-%d", i) > 0, "asprintf");
	CHECK(live_hub_subscribe(hub, a, "t", ids, LIVE_MAX_IDS_PER_SUBSCRIBE + 1, err, sizeof(err)) < 0 &&
			  strstr(err, "1 to 1000 ids"),
		  "1,001 ids in one subscribe refused: %s", err);
	CHECK(live_hub_subscribe(hub, a, "t", ids, 999, err, sizeof(err)) == 0, "999: %s", err);
	/* ids 998..999 are 1 old + 1 new, reaching 1,000; then 999..1000 is 1 old + 1 too many */
	CHECK(live_hub_subscribe(hub, a, "t", ids + 998, 2, err, sizeof(err)) == 0, "to 1,000: %s", err);
	CHECK(live_hub_subscribe(hub, a, "t", ids + 999, 2, err, sizeof(err)) < 0 &&
			  strstr(err, "at most 1000 subscriptions per connection"),
		  "1,001st subscription refused: %s", err);
	CHECK(live_hub_sub_count(hub, a) == LIVE_MAX_SUBS_PER_CONN, "refusal changed nothing: %d",
		  live_hub_sub_count(hub, a));
	live_hub_get_stats(hub, &st);
	CHECK(st.keys == LIVE_MAX_SUBS_PER_CONN && st.subscriptions == LIVE_MAX_SUBS_PER_CONN,
		  "keys %llu subscriptions %llu", (unsigned long long) st.keys, (unsigned long long) st.subscriptions);
	/* all or nothing: one call whose middle id passes the limit adds none of its ids */
	live_hub_unsubscribe(hub, a, "t", ids, 2);
	CHECK(live_hub_subscribe(hub, a, "u", ids, 3, err, sizeof(err)) < 0, "3 new with room for 2");
	CHECK(live_hub_sub_count(hub, a) == LIVE_MAX_SUBS_PER_CONN - 2, "none added: %d", live_hub_sub_count(hub, a));
	for (int i = 0; i <= LIVE_MAX_IDS_PER_SUBSCRIBE; i++)
		free(ids[i]);
	live_hub_detach(hub, a);
	live_hub_get_stats(hub, &st);
	CHECK(st.keys == 0 && st.subscriptions == 0 && st.subscribers == 0, "detach frees all");
	live_hub_free(hub);
}

static void
test_slow_subscriber(void)
{
	struct live_hub *hub = live_hub_new();
	struct live_sub *slow = live_hub_attach(hub, wake_count, NULL), *fast = live_hub_attach(hub, NULL, NULL);
	char *ids[] = {"hot"};
	char err[200], *d;
	struct live_hub_stats st;
	int got_fast = 0, v;

	live_hub_subscribe(hub, slow, "article", ids, 1, err, sizeof(err));
	live_hub_subscribe(hub, fast, "article", ids, 1, err, sizeof(err));
	for (v = 1; v <= 5000; v++)
	{
		struct live_count c = unit_count("article", "hot", v, v);

		CHECK(live_hub_update(hub, &c) == 1, "update v%d", v);
		while (live_hub_next(hub, fast, &d) == 1)
			free(d), got_fast++;
	}
	CHECK(got_fast == 5000, "the fast subscriber got all 5,000, got %d", got_fast);
	CHECK(live_hub_next(hub, slow, &d) == -1, "the slow one is dropped");
	CHECK(live_hub_sub_count(hub, slow) == 0, "with no subscriptions left");
	CHECK(live_hub_subscribe(hub, slow, "article", ids, 1, err, sizeof(err)) < 0 && strstr(err, "slow"),
		  "a dropped subscriber cannot subscribe again: %s", err);
	live_hub_get_stats(hub, &st);
	CHECK(st.dropped == 1 && st.subscribers == 2, "dropped %llu", (unsigned long long) st.dropped);
	/* the bound: it was dropped after at most LIVE_SUB_QUEUE_BYTES of texts (~150 bytes each) */
	CHECK(st.queued - 5000 < LIVE_SUB_QUEUE_BYTES / 100, "slow got %llu texts before the drop",
		  (unsigned long long) (st.queued - 5000));
	live_hub_detach(hub, slow);
	live_hub_detach(hub, fast);
	live_hub_free(hub);
}

#define MANY 10000				/* P9: 10,000 subscribers on one bridge */
#define MANY_KEYS 1000			/* P9: changes over 1,000 keys */
#define MANY_BUDGET (16u << 20) /* bytes of heap for them; the bridge's whole RSS target is 64 MiB */

/* 10,000 subscribers, one key each over 1,000 keys, one change per key queued to each: heap within budget. */
static void
test_many(void)
{
	struct mallinfo2 before = mallinfo2(), after;
	struct live_hub *hub = live_hub_new();
	struct live_sub **subs = calloc(MANY, sizeof(*subs));
	struct live_hub_stats st;
	size_t used;
	int got = 0;

	for (int i = 0; i < MANY; i++)
	{
		char id[32], *ids[] = {id}, err[200];

		snprintf(id, sizeof(id), "%d", i % MANY_KEYS);
		subs[i] = live_hub_attach(hub, NULL, NULL);
		CHECK(subs[i] && live_hub_subscribe(hub, subs[i], "article", ids, 1, err, sizeof(err)) == 0, "sub %d", i);
	}
	for (int k = 0; k < MANY_KEYS; k++)
	{
		char id[32];
		struct live_count c;

		snprintf(id, sizeof(id), "%d", k);
		c = unit_count("article", id, 1, 1);
		CHECK(live_hub_update(hub, &c) == 1, "update %d", k);
	}
	after = mallinfo2();
	used = after.uordblks + after.hblkhd - before.uordblks - before.hblkhd;
	printf("# %d subscribers, %d keys, one queued event each: %zu bytes of heap (%zu per subscriber)\n", MANY,
		   MANY_KEYS, used, used / MANY);
	CHECK(used < MANY_BUDGET, "heap %zu bytes for %d subscribers, budget %u", used, MANY, MANY_BUDGET);
	live_hub_get_stats(hub, &st);
	CHECK(st.subscribers == MANY && st.keys == MANY_KEYS && st.queued == MANY && st.dropped == 0,
		  "subscribers %llu keys %llu queued %llu", (unsigned long long) st.subscribers, (unsigned long long) st.keys,
		  (unsigned long long) st.queued);
	for (int i = 0; i < MANY; i++)
	{
		char *d;

		while (live_hub_next(hub, subs[i], &d) == 1)
			free(d), got++;
		live_hub_detach(hub, subs[i]);
	}
	CHECK(got == MANY, "every subscriber got its event: %d", got);
	free(subs);
	live_hub_free(hub);
}

/* 400 versions x ~126 bytes stay within LIVE_SUB_QUEUE_BYTES: a stalled reader is never dropped here */
#define RACE_VERSIONS 400
#define RACERS 4

struct racer
{
	struct live_hub *hub;
	int base;
};

static atomic_int finished;

/* Four threads push versions of one key in interleaved order; the reader only ever sees it move forward. */
static void *
race_updates(void *arg)
{
	struct racer *r = arg;

	for (int v = r->base; v <= RACE_VERSIONS; v += RACERS)
	{
		struct live_count c = unit_count("article", "race", v, v);

		live_hub_update(r->hub, &c);
	}
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void
test_threads(void)
{
	struct live_hub *hub = live_hub_new();
	struct live_sub *s = live_hub_attach(hub, NULL, NULL);
	char *ids[] = {"race"}, err[200], *d;
	pthread_t t[RACERS];
	struct racer r[RACERS];
	long long prev = 0, v;
	int backwards = 0, rc;

	live_hub_subscribe(hub, s, "article", ids, 1, err, sizeof(err));
	for (int i = 0; i < RACERS; i++)
	{
		r[i] = (struct racer){hub, i + 1};
		pthread_create(&t[i], NULL, race_updates, &r[i]);
	}
	for (;;)
	{
		int fin = atomic_load(&finished); /* read before next(): empty after all finished = done */

		if ((rc = live_hub_next(hub, s, &d)) < 0 || (rc == 0 && fin == RACERS))
			break;
		if (rc == 0)
			continue;
		v = atoll(strstr(d, "\"version\":") + 10);
		backwards += v <= prev;
		prev = v;
		free(d);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	CHECK(rc == 0, "never dropped while draining (rc %d)", rc);
	CHECK(backwards == 0, "%d events went back in version", backwards);
	CHECK(prev == RACE_VERSIONS, "last version seen %lld", prev);
	live_hub_detach(hub, s);
	live_hub_free(hub);
}

int
main(void)
{
	test_versions();
	test_limits();
	test_slow_subscriber();
	test_many();
	test_threads();
	return unit_done("test_live_hub");
}
