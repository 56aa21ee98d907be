/*
 * test_consumer_linger.c — unit test for consumer_linger_ms() in
 * bridge/consumer.c: the linger of the consumer's next batch (docs/bridge.md,
 * "Consumer") is apply_linger_ms after a batch below SC_APPLY_LOADED_BATCH
 * deliveries and at least SC_APPLY_LOADED_LINGER_MS from there on, exact at
 * the boundary; a longer apply_linger_ms is kept, and 0 never waits.  Plain
 * program: exit 0 = pass; every failed check prints one line.
 */
#include <stdio.h>

#include "bridge.h"
#include "consumer_linger.h"
#include "sc_limits.h"

#include "unit.h"

int
main(void)
{
	const int def = 2; /* apply_linger_ms's default (docs/config.md) */

	CHECK(SC_APPLY_LOADED_LINGER_MS > def, "the linger under load is the longer one");
	CHECK(consumer_linger_ms(0, def) == def, "after an empty collect: %d", consumer_linger_ms(0, def));
	CHECK(consumer_linger_ms(1, def) == def, "one delivery: %d", consumer_linger_ms(1, def));
	CHECK(consumer_linger_ms(SC_APPLY_LOADED_BATCH - 1, def) == def, "just below the threshold: %d",
		  consumer_linger_ms(SC_APPLY_LOADED_BATCH - 1, def));
	CHECK(consumer_linger_ms(SC_APPLY_LOADED_BATCH, def) == SC_APPLY_LOADED_LINGER_MS, "at the threshold: %d",
		  consumer_linger_ms(SC_APPLY_LOADED_BATCH, def));
	CHECK(consumer_linger_ms(500, def) == SC_APPLY_LOADED_LINGER_MS, "a full default batch: %d",
		  consumer_linger_ms(500, def));
	CHECK(consumer_linger_ms(500, 300) == 300, "a longer apply_linger_ms is kept: %d", consumer_linger_ms(500, 300));
	CHECK(consumer_linger_ms(500, 0) == 0, "apply_linger_ms = 0 never waits: %d", consumer_linger_ms(500, 0));
	return unit_done("test_consumer_linger");
}
