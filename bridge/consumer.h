/*
 * consumer.h — the consumer role (SPEC §5, §6): RabbitMQ queue → batches of
 * sharecount_apply_batch() → ack.  One thread, its own connections.
 */
#ifndef SC_CONSUMER_H
#define SC_CONSUMER_H

#include "config.h"

/* Thread entry: arg is a const struct sc_config *.  Returns when sc_stop is set. */
void	   *consumer_main(void *arg);

#endif
