/*
 * publisher.h — the publisher role (docs/bridge.md "Publisher"): outbox → RabbitMQ with
 * publisher confirms.  One thread, its own PostgreSQL and AMQP connections.
 */
#ifndef SC_PUBLISHER_H
#define SC_PUBLISHER_H

#include "config.h"

/* Thread entry: arg is a const struct sc_config *.  Returns when sc_stop is set. */
void *publisher_main(void *arg);

#endif
