/*
 * live_hub.c — the live-count subscriber registry (docs/live.md).
 *
 * Rules:
 * - One mutex (hub->mu) guards every field of the hub, its keys, nodes and
 *   subscribers; public functions lock it on entry and unlock on return.
 *   Static helpers named *_locked expect it held.  Wake callbacks run with it
 *   held (live_hub.h says what they may do).
 * - Memory: a key is one malloc (struct + both names), freed with its last
 *   subscription; a node (one subscription) links a key and a subscriber in
 *   two doubly linked lists, so removal is O(1) once found; a subscriber's
 *   queue is one byte buffer of NUL-terminated data texts, grown by doubling
 *   up to LIVE_SUB_QUEUE_BYTES, compacted before growing, freed when drained.
 * - Nothing here does I/O.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_hub.h"

#define HUB_MIN_BUCKETS 1024 /* initial key table size (a power of two) */
#define SUB_QUEUE_MIN 512	 /* first allocation of a subscriber's queue */

struct live_node
{
	struct live_key *key;
	struct live_sub *sub;
	struct live_link
	{
		struct live_node *prev, *next;
	} by[2]; /* by[BY_KEY]: the key's subscriptions; by[BY_SUB]: the subscriber's */
};

/* Which of a node's two lists (an index into live_node.by). */
enum
{
	BY_KEY,
	BY_SUB
};

struct live_key
{
	struct live_key *next; /* bucket chain */
	uint64_t hash;
	bool known; /* latest fields valid */
	int64_t share_count, delta, version;
	char timestamp[LIVE_MAX_TS_BYTES];
	struct live_node *subs;
	int nsubs;
	char *id;	 /* points into name[] after the type's NUL */
	char name[]; /* type NUL id NUL */
};

struct live_sub
{
	struct live_sub *prev, *next; /* hub->subs */
	live_wake_fn wake;
	void *arg;
	struct live_node *nodes;
	int nsubs;
	bool dropped;
	char *q; /* queued texts, each NUL-terminated, from q + qhead to q + qlen */
	size_t qhead, qlen, qcap;
};

struct live_hub
{
	pthread_mutex_t mu;
	struct live_key **buckets;
	size_t nbuckets;
	struct live_sub *subs;
	struct live_hub_stats st;
};

static uint64_t
key_hash(const char *type, const char *id)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *) type; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL; /* separator: no byte of a name is 0xff */
	for (const unsigned char *p = (const unsigned char *) id; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

struct live_hub *
live_hub_new(void)
{
	struct live_hub *hub = calloc(1, sizeof(*hub));

	if (hub == NULL)
		return NULL;
	hub->nbuckets = HUB_MIN_BUCKETS;
	hub->buckets = calloc(hub->nbuckets, sizeof(*hub->buckets));
	if (hub->buckets == NULL)
	{
		free(hub);
		return NULL;
	}
	pthread_mutex_init(&hub->mu, NULL);
	return hub;
}

static struct live_key *
find_locked(struct live_hub *hub, const char *type, const char *id, uint64_t h)
{
	for (struct live_key *k = hub->buckets[h & (hub->nbuckets - 1)]; k; k = k->next)
		if (k->hash == h && strcmp(k->name, type) == 0 && strcmp(k->id, id) == 0)
			return k;
	return NULL;
}

/* Double the table when keys outnumber buckets (failure to grow is harmless: chains get longer). */
static void
grow_locked(struct live_hub *hub)
{
	size_t n = hub->nbuckets * 2;
	struct live_key **b;

	if (hub->st.keys < hub->nbuckets || (b = calloc(n, sizeof(*b))) == NULL)
		return;
	for (size_t i = 0; i < hub->nbuckets; i++)
		for (struct live_key *k = hub->buckets[i], *next; k; k = next)
		{
			next = k->next;
			k->next = b[k->hash & (n - 1)];
			b[k->hash & (n - 1)] = k;
		}
	free(hub->buckets);
	hub->buckets = b;
	hub->nbuckets = n;
}

static struct live_key *
key_get_locked(struct live_hub *hub, const char *type, const char *id)
{
	uint64_t h = key_hash(type, id);
	struct live_key *k = find_locked(hub, type, id, h);
	size_t tl = strlen(type), il = strlen(id);

	if (k != NULL)
		return k;
	k = calloc(1, sizeof(*k) + tl + il + 2);
	if (k == NULL)
		return NULL;
	k->hash = h;
	memcpy(k->name, type, tl + 1);
	k->id = k->name + tl + 1;
	memcpy(k->id, id, il + 1);
	k->next = hub->buckets[h & (hub->nbuckets - 1)];
	hub->buckets[h & (hub->nbuckets - 1)] = k;
	hub->st.keys++;
	grow_locked(hub);
	return k;
}

static void
key_free_locked(struct live_hub *hub, struct live_key *k)
{
	struct live_key **pp = &hub->buckets[k->hash & (hub->nbuckets - 1)];

	while (*pp != k)
		pp = &(*pp)->next;
	*pp = k->next;
	hub->st.keys--;
	free(k);
}

/* sub's node for key k, scanning whichever list is shorter. */
static struct live_node *
node_find(struct live_key *k, struct live_sub *sub)
{
	if (k->nsubs <= sub->nsubs)
	{
		for (struct live_node *n = k->subs; n; n = n->by[BY_KEY].next)
			if (n->sub == sub)
				return n;
		return NULL;
	}
	for (struct live_node *n = sub->nodes; n; n = n->by[BY_SUB].next)
		if (n->key == k)
			return n;
	return NULL;
}

/* Put n first in the list at *head, by its links by[l]. */
static void
node_push(struct live_node **head, struct live_node *n, int l)
{
	n->by[l].prev = NULL;
	n->by[l].next = *head;
	if (*head)
		(*head)->by[l].prev = n;
	*head = n;
}

/* Take n out of the list at *head, by its links by[l]. */
static void
node_unlink(struct live_node **head, struct live_node *n, int l)
{
	struct live_link *x = &n->by[l];

	if (x->prev)
		x->prev->by[l].next = x->next;
	else
		*head = x->next;
	if (x->next)
		x->next->by[l].prev = x->prev;
}

static void
node_remove_locked(struct live_hub *hub, struct live_node *n)
{
	struct live_key *k = n->key;
	struct live_sub *s = n->sub;

	node_unlink(&k->subs, n, BY_KEY);
	node_unlink(&s->nodes, n, BY_SUB);
	k->nsubs--;
	s->nsubs--;
	hub->st.subscriptions--;
	free(n);
	if (k->nsubs == 0)
		key_free_locked(hub, k);
}

static void
queue_free(struct live_sub *s)
{
	free(s->q);
	s->q = NULL;
	s->qhead = s->qlen = s->qcap = 0;
}

static void
drop_locked(struct live_hub *hub, struct live_sub *s)
{
	while (s->nodes)
		node_remove_locked(hub, s->nodes);
	queue_free(s);
	s->dropped = true;
	hub->st.dropped++;
	if (s->wake)
		s->wake(s->arg);
}

/* Queue text (n bytes + NUL) to s: 0, or -1 if that would pass the bound (s is then dropped). */
static int
enqueue_locked(struct live_hub *hub, struct live_sub *s, const char *text, size_t n)
{
	size_t need = s->qlen - s->qhead + n + 1;

	if (need > LIVE_SUB_QUEUE_BYTES)
	{
		drop_locked(hub, s);
		return -1;
	}
	if (s->qhead > 0 && s->qlen + n + 1 > s->qcap)
	{
		memmove(s->q, s->q + s->qhead, s->qlen - s->qhead);
		s->qlen -= s->qhead;
		s->qhead = 0;
	}
	if (s->qlen + n + 1 > s->qcap)
	{
		size_t cap = s->qcap ? s->qcap : SUB_QUEUE_MIN;
		char *q;

		while (cap < s->qlen + n + 1)
			cap *= 2;
		if ((q = realloc(s->q, cap)) == NULL)
		{
			drop_locked(hub, s);
			return -1;
		}
		s->q = q;
		s->qcap = cap;
	}
	memcpy(s->q + s->qlen, text, n + 1);
	s->qlen += n + 1;
	hub->st.queued++;
	if (s->wake)
		s->wake(s->arg);
	return 0;
}

static void
key_count(const struct live_key *k, struct live_count *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->content_type, sizeof(c->content_type), "%s", k->name);
	snprintf(c->content_id, sizeof(c->content_id), "%s", k->id);
	c->share_count = k->share_count;
	c->delta = k->delta;
	c->version = k->version;
	memcpy(c->timestamp, k->timestamp, sizeof(c->timestamp));
}

struct live_sub *
live_hub_attach(struct live_hub *hub, live_wake_fn wake, void *arg)
{
	struct live_sub *s = NULL;

	pthread_mutex_lock(&hub->mu);
	if (hub->st.subscribers < LIVE_MAX_SUBSCRIBERS && (s = calloc(1, sizeof(*s))) != NULL)
	{
		s->wake = wake;
		s->arg = arg;
		s->next = hub->subs;
		if (hub->subs)
			hub->subs->prev = s;
		hub->subs = s;
		hub->st.subscribers++;
	}
	pthread_mutex_unlock(&hub->mu);
	return s;
}

static void
detach_locked(struct live_hub *hub, struct live_sub *s)
{
	while (s->nodes)
		node_remove_locked(hub, s->nodes);
	queue_free(s);
	if (s->prev)
		s->prev->next = s->next;
	else
		hub->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	hub->st.subscribers--;
	free(s);
}

void
live_hub_detach(struct live_hub *hub, struct live_sub *sub)
{
	pthread_mutex_lock(&hub->mu);
	detach_locked(hub, sub);
	pthread_mutex_unlock(&hub->mu);
}

void
live_hub_free(struct live_hub *hub)
{
	if (hub == NULL)
		return;
	while (hub->subs)
		detach_locked(hub, hub->subs);
	free(hub->buckets);
	pthread_mutex_destroy(&hub->mu);
	free(hub);
}

/* Subscribe s to one key; the new node (NULL if it already was) in *added.  -1 with err on a limit. */
static int
subscribe_one_locked(struct live_hub *hub, struct live_sub *s, const char *type, const char *id,
					 struct live_node **added, char *err, size_t errlen)
{
	struct live_key *k = key_get_locked(hub, type, id);
	struct live_node *n;

	*added = NULL;
	if (k == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	if (k->nsubs > 0 && node_find(k, s) != NULL)
		return 0;
	if (s->nsubs >= LIVE_MAX_SUBS_PER_CONN || hub->st.subscriptions >= LIVE_MAX_SUBSCRIPTIONS ||
		(n = calloc(1, sizeof(*n))) == NULL)
	{
		if (k->nsubs == 0)
			key_free_locked(hub, k);
		if (s->nsubs >= LIVE_MAX_SUBS_PER_CONN)
			snprintf(err, errlen, "at most %d subscriptions per connection", LIVE_MAX_SUBS_PER_CONN);
		else
			snprintf(err, errlen, "the server has no room for more subscriptions, try later");
		return -1;
	}
	n->key = k;
	n->sub = s;
	node_push(&k->subs, n, BY_KEY);
	node_push(&s->nodes, n, BY_SUB);
	k->nsubs++;
	s->nsubs++;
	hub->st.subscriptions++;
	*added = n;
	return 0;
}

int
live_hub_subscribe(struct live_hub *hub, struct live_sub *sub, const char *type, char *const *ids, int nids, char *err,
				   size_t errlen)
{
	struct live_node **added;
	int nadded = 0, rc = 0;

	if (nids < 1 || nids > LIVE_MAX_IDS_PER_SUBSCRIBE)
		return snprintf(err, errlen, "subscribe to 1 to %d ids at a time", LIVE_MAX_IDS_PER_SUBSCRIBE), -1;
	if ((added = malloc(nids * sizeof(*added))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	pthread_mutex_lock(&hub->mu);
	if (sub->dropped)
	{
		snprintf(err, errlen, "connection dropped as too slow");
		rc = -1;
	}
	for (int i = 0; rc == 0 && i < nids; i++)
	{
		rc = subscribe_one_locked(hub, sub, type, ids[i], &added[nadded], err, errlen);
		if (rc == 0 && added[nadded])
			nadded++;
	}
	if (rc < 0) /* all or nothing: take back what this call added */
		while (nadded > 0)
			node_remove_locked(hub, added[--nadded]);
	pthread_mutex_unlock(&hub->mu);
	free(added);
	return rc;
}

int
live_hub_unsubscribe(struct live_hub *hub, struct live_sub *sub, const char *type, char *const *ids, int nids)
{
	int removed = 0;

	pthread_mutex_lock(&hub->mu);
	for (int i = 0; i < nids; i++)
	{
		struct live_key *k = find_locked(hub, type, ids[i], key_hash(type, ids[i]));
		struct live_node *n = k ? node_find(k, sub) : NULL;

		if (n)
		{
			node_remove_locked(hub, n);
			removed++;
		}
	}
	pthread_mutex_unlock(&hub->mu);
	return removed;
}

static void
key_set_latest(struct live_key *k, const struct live_count *c)
{
	k->known = true;
	k->share_count = c->share_count;
	k->delta = c->delta;
	k->version = c->version;
	memcpy(k->timestamp, c->timestamp, sizeof(k->timestamp));
	k->timestamp[sizeof(k->timestamp) - 1] = '\0';
}

int
live_hub_update(struct live_hub *hub, const struct live_count *c)
{
	struct live_key *k;
	char *text = NULL;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&hub->mu);
	k = find_locked(hub, c->content_type, c->content_id, key_hash(c->content_type, c->content_id));
	if (k != NULL && k->known && c->version <= k->version)
		hub->st.stale++;
	else if (k != NULL && (text = live_event_data_json(c)) == NULL)
		rc = -1;
	else if (k != NULL)
	{
		key_set_latest(k, c);
		hub->st.updates++;
		n = strlen(text);
		/*
		 * Dropping a slow subscriber removes its node from this list (its
		 * only one here) and frees k with its last node: take next first.
		 */
		for (struct live_node *nd = k->subs, *next; nd; nd = next)
		{
			next = nd->by[BY_KEY].next;
			(void) enqueue_locked(hub, nd->sub, text, n);
		}
		rc = 1;
	}
	pthread_mutex_unlock(&hub->mu);
	free(text);
	return rc;
}

int
live_hub_latest(struct live_hub *hub, const char *type, const char *id, struct live_count *out)
{
	struct live_key *k;
	int found;

	pthread_mutex_lock(&hub->mu);
	k = find_locked(hub, type, id, key_hash(type, id));
	found = k != NULL && k->known;
	if (found)
		key_count(k, out);
	pthread_mutex_unlock(&hub->mu);
	return found;
}

int
live_hub_next(struct live_hub *hub, struct live_sub *sub, char **data)
{
	int rc = 0;

	*data = NULL;
	pthread_mutex_lock(&hub->mu);
	if (sub->dropped)
		rc = -1;
	else if (sub->qhead < sub->qlen)
	{
		size_t n = strlen(sub->q + sub->qhead);

		if ((*data = malloc(n + 1)) != NULL)
		{
			memcpy(*data, sub->q + sub->qhead, n + 1);
			sub->qhead += n + 1;
			rc = 1;
			if (sub->qhead == sub->qlen)
				queue_free(sub);
		}
	}
	pthread_mutex_unlock(&hub->mu);
	return rc;
}

int
live_hub_sub_count(struct live_hub *hub, struct live_sub *sub)
{
	int n;

	pthread_mutex_lock(&hub->mu);
	n = sub->nsubs;
	pthread_mutex_unlock(&hub->mu);
	return n;
}

void
live_hub_get_stats(struct live_hub *hub, struct live_hub_stats *st)
{
	pthread_mutex_lock(&hub->mu);
	*st = hub->st;
	pthread_mutex_unlock(&hub->mu);
}
