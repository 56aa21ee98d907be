/*
 * live_pub.h — the events publisher of the consumer role (docs/live.md
 * "Publishing"): after each apply commits, the consumer offers the batch's
 * changed keys; a thread of its own, on an AMQP connection of its own,
 * publishes one share_count_changed event per key to updates_exchange
 * (routing key = contentType, not persistent, application/json).
 *
 * Rules: live_pub_offer never blocks on the broker: between the two threads
 * is a bounded queue (SC_EVENTS_QUEUE); an offer that does not fit is
 * dropped and counted (sharecount_events_dropped_total{reason="queue_full"}).
 * Only the consumer thread calls these functions.  Events are not jobs:
 * losing one loses nothing but a notification (receivers keep the highest
 * version and read the database for the rest).
 */
#ifndef SC_LIVE_PUB_H
#define SC_LIVE_PUB_H

#include "config.h"
#include "live_event.h"

struct live_pub;

/* Start the events thread (it connects by itself, with backoff); NULL if it cannot start (logged). */
struct live_pub *live_pub_start(const struct sc_config *cfg);

/* Queue the events of changes[0..n); returns how many were dropped (the queue was full). */
int live_pub_offer(struct live_pub *p, const struct live_count *changes, int n);

/* Publish what is queued if the broker takes it now, stop the thread, free p (NULL: nothing). */
void live_pub_stop(struct live_pub *p);

#endif
