/*
 * live_hub.h — the live-count subscriber registry (docs/live.md): keys
 * (contentType, contentId) -> subscribers, each key's latest (shareCount,
 * version), and per subscriber a bounded queue of event data texts waiting to
 * be written to its SSE stream or WebSocket.
 *
 * Rules (thread safety, memory):
 * - One mutex per hub guards everything in it (keys, subscribers, queues,
 *   counters); every function takes it, none holds it on return, and none
 *   blocks or does I/O while holding it.  Any thread may call any function.
 * - The wake callback of a subscriber is called with the hub's mutex held:
 *   it must only signal (write an eventfd, resume a connection, set a flag)
 *   and never call back into the hub.
 * - A struct live_sub belongs to the hub; the connection that attached it
 *   calls live_hub_detach() exactly once, after which the pointer is dead.
 *   A dropped subscriber stays attached (live_hub_next() says so) until then.
 * - A key lives while it has subscribers; its latest version is forgotten
 *   with it (the bounded cache of docs/live.md is a separate structure).
 * - A subscriber's queue buffer is allocated when something is queued and
 *   freed when it drains: an idle subscriber costs its struct and one node
 *   per subscription (docs/live.md "Memory").
 */
#ifndef SC_LIVE_HUB_H
#define SC_LIVE_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "live_event.h"

/* Keys one connection may be subscribed to at once; one more is an error event (docs/live.md) */
#define LIVE_MAX_SUBS_PER_CONN 1000
/* Subscribers in one hub (P9 asks for 10,000 on one bridge); attach fails above it */
#define LIVE_MAX_SUBSCRIBERS 20000
/* Subscriptions over all subscribers: bounds the key table (~200 bytes each, so ~20 MiB) */
#define LIVE_MAX_SUBSCRIPTIONS 100000
/*
 * Bytes of event data queued for one subscriber before it counts as slow and
 * is dropped: 64 maximal events (~700 bytes each), or a few hundred usual
 * ones, that a healthy client drains within milliseconds.
 */
#define LIVE_SUB_QUEUE_BYTES (64 * 1024)

struct live_hub;
struct live_sub;

typedef void (*live_wake_fn)(void *arg);

struct live_hub_stats
{
	uint64_t subscribers;	/* attached now */
	uint64_t subscriptions; /* (subscriber, key) pairs now */
	uint64_t keys;			/* keys with at least one subscriber now */
	uint64_t updates;		/* updates that moved a key forward */
	uint64_t stale;			/* updates ignored: version not above the key's latest */
	uint64_t queued;		/* event texts queued to subscribers */
	uint64_t dropped;		/* subscribers dropped as slow */
};

struct live_hub *live_hub_new(void);
/* Frees everything; no subscriber may be used afterwards. */
void live_hub_free(struct live_hub *hub);

/* A new subscriber with no subscriptions, or NULL (out of memory, or LIVE_MAX_SUBSCRIBERS reached). */
struct live_sub *live_hub_attach(struct live_hub *hub, live_wake_fn wake, void *arg);
void live_hub_detach(struct live_hub *hub, struct live_sub *sub);

/*
 * Subscribe to (type, ids[i]) for every i (already-subscribed keys are kept,
 * not doubled): 0, or -1 with a message for the client in err and nothing
 * changed (over LIVE_MAX_IDS_PER_SUBSCRIBE ids, over LIVE_MAX_SUBS_PER_CONN
 * or LIVE_MAX_SUBSCRIPTIONS afterwards, out of memory, dropped subscriber).
 */
int live_hub_subscribe(struct live_hub *hub, struct live_sub *sub, const char *type, char *const *ids, int nids,
					   char *err, size_t errlen);
/* Unsubscribe from the keys it has; ids it does not have are ignored.  Returns how many were removed. */
int live_hub_unsubscribe(struct live_hub *hub, struct live_sub *sub, const char *type, char *const *ids, int nids);

/*
 * A key's new count.  If the key has subscribers and c->version is above its
 * latest, the latest moves and the event data text is queued to each of them
 * (a subscriber whose queue would pass LIVE_SUB_QUEUE_BYTES is dropped
 * instead, its subscriptions removed and its wake called); returns 1.
 * Returns 0 for an older or equal version or a key nobody watches, -1 out of
 * memory.
 */
int live_hub_update(struct live_hub *hub, const struct live_count *c);

/* The key's latest count: 1 and *out filled, or 0 if not known. */
int live_hub_latest(struct live_hub *hub, const char *type, const char *id, struct live_count *out);

/*
 * The next queued event data text of sub, malloc'ed into *data: 1; 0 when
 * nothing is queued; -1 when sub was dropped (the connection should close).
 */
int live_hub_next(struct live_hub *hub, struct live_sub *sub, char **data);

/* Subscriptions of sub now. */
int live_hub_sub_count(struct live_hub *hub, struct live_sub *sub);

void live_hub_get_stats(struct live_hub *hub, struct live_hub_stats *st);

#endif
