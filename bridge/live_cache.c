/*
 * live_cache.c — the coherent count cache (see live_cache.h, docs/live.md
 * "Cache").
 *
 * Rules: a shard is a chained hash table (buckets[]) plus slots[], the array
 * of its entries that the CLOCK hand walks; both are allocated at start for
 * the shard's capacity (untouched pages cost no memory).  Everything in a
 * shard is guarded by its rwlock, except an entry's `ref` bit (an atomic: a
 * hit sets it under the shared lock) and the cache-wide counters and stream
 * state (C11 atomics).  An entry is malloc'ed with its key and freed when it
 * is evicted or the cache is freed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "live_cache.h"

/* confirmed_ms of an entry no database read has confirmed yet (never served) */
#define NEVER INT64_MIN
/* version of an entry made by a lookup that missed: no value yet (never served) */
#define NO_VALUE (-1)

struct entry
{
	struct entry *next; /* hash chain */
	uint64_t hash;
	int64_t count;
	int64_t version;
	int64_t confirmed_ms;
	_Atomic unsigned char ref; /* hit since the CLOCK hand last passed */
	size_t slot;			   /* index in its shard's slots[] */
	size_t type_len;
	char key[]; /* type '\0' id '\0' */
};

struct shard
{
	pthread_rwlock_t lock;
	struct entry **buckets; /* nbuckets chains */
	size_t nbuckets;		/* a power of two >= cap */
	struct entry **slots;	/* every entry, for the CLOCK hand */
	size_t cap, n, hand;
} __attribute__((aligned(64)));

struct live_cache
{
	int max_age_ms;
	size_t nshards; /* a power of two */
	struct shard *shards;
	_Atomic int up;				 /* the event stream is up */
	_Atomic int64_t up_since_ms; /* when it last came up */
	_Atomic uint64_t hits, misses, bypasses, evicted, events;
	_Atomic int64_t entries;
};

/* FNV-1a over type, a zero byte, and id. */
static uint64_t
key_hash(const char *type, const char *id)
{
	uint64_t h = 14695981039346656037ULL;
	const unsigned char *p;

	for (p = (const unsigned char *) type; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h *= 1099511628211ULL;
	for (p = (const unsigned char *) id; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static struct shard *
shard_of(struct live_cache *c, uint64_t h)
{
	return &c->shards[h & (c->nshards - 1)];
}

static struct entry **
bucket_of(struct shard *s, uint64_t h)
{
	return &s->buckets[(h >> 32) & (s->nbuckets - 1)];
}

/* The entry of (type, id) in s, or NULL; s's lock held (either way). */
static struct entry *
find(struct shard *s, uint64_t h, const char *type, const char *id)
{
	struct entry *e;

	for (e = *bucket_of(s, h); e; e = e->next)
		if (e->hash == h && strcmp(e->key, type) == 0 && strcmp(e->key + e->type_len + 1, id) == 0)
			return e;
	return NULL;
}

static void
unlink_entry(struct shard *s, struct entry *e)
{
	struct entry **pp = bucket_of(s, e->hash);

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
}

/* Make room in a full shard (lock held exclusively): the CLOCK hand's victim's slot, freed. */
static size_t
evict_one(struct live_cache *c, struct shard *s)
{
	for (;;)
	{
		struct entry *e = s->slots[s->hand];
		size_t slot = s->hand;

		s->hand = (s->hand + 1) % s->cap;
		if (atomic_exchange_explicit(&e->ref, 0, memory_order_relaxed))
			continue; /* hit since the last pass: kept once more */
		unlink_entry(s, e);
		free(e);
		s->n--;
		atomic_fetch_add_explicit(&c->evicted, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&c->entries, 1, memory_order_relaxed);
		return slot;
	}
}

/* A new entry with no value for (type, id) in s (lock held exclusively); NULL when out of memory. */
static struct entry *
insert(struct live_cache *c, struct shard *s, uint64_t h, const char *type, const char *id)
{
	size_t tl = strlen(type), il = strlen(id), slot;
	struct entry *e = malloc(sizeof(*e) + tl + il + 2);
	struct entry **b;

	if (!e)
		return NULL;
	e->hash = h;
	e->count = 0;
	e->version = NO_VALUE;
	e->confirmed_ms = NEVER;
	atomic_init(&e->ref, 0);
	e->type_len = tl;
	memcpy(e->key, type, tl + 1);
	memcpy(e->key + tl + 1, id, il + 1);
	if (s->n == s->cap)
		slot = evict_one(c, s);
	else
		slot = s->n;
	s->n++;
	s->slots[slot] = e;
	e->slot = slot;
	b = bucket_of(s, h);
	e->next = *b;
	*b = e;
	atomic_fetch_add_explicit(&c->entries, 1, memory_order_relaxed);
	return e;
}

/* The smallest power of two >= n (n >= 1). */
static size_t
pow2_at_least(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

struct live_cache *
live_cache_new(int max_entries, int max_age_ms)
{
	struct live_cache *c;
	size_t i, n;

	if (max_entries <= 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->max_age_ms = max_age_ms;
	for (c->nshards = LIVE_CACHE_SHARDS; c->nshards > 1 && c->nshards * LIVE_CACHE_SHARD_MIN > (size_t) max_entries;)
		c->nshards >>= 1;
	c->shards = aligned_alloc(64, c->nshards * sizeof(struct shard));
	if (!c->shards)
		return free(c), NULL;
	memset(c->shards, 0, c->nshards * sizeof(struct shard));
	atomic_init(&c->up_since_ms, NEVER);
	for (i = 0; i < c->nshards; i++)
	{
		struct shard *s = &c->shards[i];

		n = (size_t) max_entries / c->nshards + (i < (size_t) max_entries % c->nshards);
		s->cap = n;
		s->nbuckets = pow2_at_least(n);
		pthread_rwlock_init(&s->lock, NULL);
		s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
		s->slots = calloc(n, sizeof(*s->slots));
		if (!s->buckets || !s->slots)
		{
			c->nshards = i + 1;
			live_cache_free(c);
			return NULL;
		}
	}
	return c;
}

void
live_cache_free(struct live_cache *c)
{
	size_t i, k;

	if (!c)
		return;
	for (i = 0; i < c->nshards; i++)
	{
		struct shard *s = &c->shards[i];

		for (k = 0; s->slots && k < s->n; k++)
			free(s->slots[k]);
		free(s->slots);
		free(s->buckets);
		pthread_rwlock_destroy(&s->lock);
	}
	free(c->shards);
	free(c);
}

void
live_cache_stream(struct live_cache *c, bool up, int64_t now_ms)
{
	if (!c)
		return;
	if (up)
		atomic_store(&c->up_since_ms, now_ms);
	atomic_store(&c->up, up ? 1 : 0);
}

/* May e be served at now_ms? (shard lock held) */
static bool
servable(const struct live_cache *c, const struct entry *e, int64_t up_since, int64_t now_ms)
{
	return e->version >= 0 && e->confirmed_ms > up_since && now_ms - e->confirmed_ms < c->max_age_ms;
}

/*
 * Look up one key with its shard locked shared: 1 and *count when servable;
 * 0 otherwise, *known set when an entry (maybe without a value) exists.
 */
static int
lookup(struct live_cache *c, uint64_t h, const char *type, const char *id, int64_t up_since, int64_t now_ms,
	   int64_t *count, int *known)
{
	struct shard *s = shard_of(c, h);
	struct entry *e;
	int hit = 0;

	pthread_rwlock_rdlock(&s->lock);
	e = find(s, h, type, id);
	*known = e != NULL;
	if (e && servable(c, e, up_since, now_ms))
	{
		*count = e->count;
		if (!atomic_load_explicit(&e->ref, memory_order_relaxed))
			atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
		hit = 1;
	}
	pthread_rwlock_unlock(&s->lock);
	return hit;
}

/*
 * A miss: make sure the key has an entry, so that events arriving while the
 * database read is in flight are kept (live_cache_fill merges them).
 */
static void
note_miss(struct live_cache *c, uint64_t h, const char *type, const char *id)
{
	struct shard *s = shard_of(c, h);

	pthread_rwlock_wrlock(&s->lock);
	if (!find(s, h, type, id))
		insert(c, s, h, type, id);
	pthread_rwlock_unlock(&s->lock);
}

/* The stream's state for a lookup: 0 and *up_since when usable, else counted as a bypass. */
static int
usable(struct live_cache *c, int64_t *up_since)
{
	if (!atomic_load(&c->up))
	{
		atomic_fetch_add_explicit(&c->bypasses, 1, memory_order_relaxed);
		return -1;
	}
	*up_since = atomic_load(&c->up_since_ms);
	return 0;
}

enum live_cache_rc
live_cache_get(struct live_cache *c, const char *type, const char *id, int64_t now_ms, int64_t *count)
{
	uint64_t h;
	int64_t up_since;
	int known;

	if (!c)
		return LIVE_CACHE_MISS;
	if (usable(c, &up_since) < 0)
		return LIVE_CACHE_BYPASS;
	h = key_hash(type, id);
	if (lookup(c, h, type, id, up_since, now_ms, count, &known))
	{
		atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
		return LIVE_CACHE_HIT;
	}
	if (!known)
		note_miss(c, h, type, id);
	atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
	return LIVE_CACHE_MISS;
}

enum live_cache_rc
live_cache_get_many(struct live_cache *c, const char *type, char *const *ids, size_t n, int64_t now_ms, int64_t *counts)
{
	int64_t up_since;
	size_t i;
	int known, all = 1;

	if (!c)
		return LIVE_CACHE_MISS;
	if (usable(c, &up_since) < 0)
		return LIVE_CACHE_BYPASS;
	for (i = 0; i < n && all; i++)
		all = lookup(c, key_hash(type, ids[i]), type, ids[i], up_since, now_ms, &counts[i], &known);
	atomic_fetch_add_explicit(all ? &c->hits : &c->misses, 1, memory_order_relaxed);
	return all ? LIVE_CACHE_HIT : LIVE_CACHE_MISS;
}

int64_t
live_cache_fill(struct live_cache *c, const char *type, const char *id, int64_t count, int64_t version,
				int64_t asked_ms)
{
	uint64_t h;
	struct shard *s;
	struct entry *e;

	if (!c || version < 0)
		return count;
	h = key_hash(type, id);
	s = shard_of(c, h);
	pthread_rwlock_wrlock(&s->lock);
	e = find(s, h, type, id);
	if (!e)
		e = insert(c, s, h, type, id);
	if (e)
	{
		if (version > e->version)
		{
			e->count = count;
			e->version = version;
		}
		/* the database held a version <= this one at asked_ms: the entry's value is at least that new */
		if (asked_ms > e->confirmed_ms)
			e->confirmed_ms = asked_ms;
		count = e->count;
	}
	pthread_rwlock_unlock(&s->lock);
	return count;
}

int
live_cache_update(struct live_cache *c, const struct live_count *ev)
{
	uint64_t h;
	struct shard *s;
	struct entry *e;
	int moved = 0;

	if (!c)
		return 0;
	h = key_hash(ev->content_type, ev->content_id);
	s = shard_of(c, h);
	pthread_rwlock_wrlock(&s->lock);
	e = find(s, h, ev->content_type, ev->content_id);
	if (e && ev->version > e->version)
	{
		e->count = ev->share_count;
		e->version = ev->version;
		moved = 1;
	}
	pthread_rwlock_unlock(&s->lock);
	if (moved)
		atomic_fetch_add_explicit(&c->events, 1, memory_order_relaxed);
	return moved;
}

void
live_cache_get_stats(struct live_cache *c, struct live_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	st->hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
	st->misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
	st->bypasses = atomic_load_explicit(&c->bypasses, memory_order_relaxed);
	st->evicted = atomic_load_explicit(&c->evicted, memory_order_relaxed);
	st->events = atomic_load_explicit(&c->events, memory_order_relaxed);
	st->entries = (uint64_t) atomic_load_explicit(&c->entries, memory_order_relaxed);
	st->stream_up = atomic_load(&c->up);
}
