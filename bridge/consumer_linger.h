/*
 * consumer_linger.h — the consumer's batch pacing (docs/bridge.md
 * "Consumer"), a pure function of consumer.c kept apart from consumer.h so
 * that its unit test (test/unit/test_consumer_linger.c) needs no AMQP types.
 *
 * Rules: no state; SC_APPLY_LOADED_* in sc_limits.h are its constants.
 */
#ifndef SC_CONSUMER_LINGER_H
#define SC_CONSUMER_LINGER_H

/* The linger of the next batch after one of last_batch deliveries, given apply_linger_ms. */
int consumer_linger_ms(int last_batch, int linger_ms);

#endif
