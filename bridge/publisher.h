/*
 * publisher.h — the publisher role (SPEC §5, §6): outbox → RabbitMQ with
 * publisher confirms.  One thread, its own PostgreSQL and AMQP connections.
 */
#ifndef SC_PUBLISHER_H
#define SC_PUBLISHER_H

#include "config.h"

/*
 * Nacks (docs/bridge.md "Broker failover"): after this many claims in a row
 * that the broker nacked (at least one nack, no ack), the publisher drops its
 * AMQP connection and opens a fresh one.  A channel that published to a
 * quorum queue while it had no leader can stay nacking every publish for
 * good (RabbitMQ 3.10) while a fresh connection to the same node is fine.
 */
#define SC_NACKED_CLAIMS_BEFORE_RECONNECT 2
/* Pause before that fresh connection: doubles per nack reconnect that did
 * not help, up to reconnect_max_ms; back to this after an acked claim. */
#define SC_NACK_RECONNECT_MIN_MS 100

/* Thread entry: arg is a const struct sc_config *.  Returns when sc_stop is set. */
void	   *publisher_main(void *arg);

#endif
