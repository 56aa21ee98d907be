/*
 * test_consumer_linger.c — unit test for consumer_linger_ms() in
 * bridge/consumer.c: the linger of the consumer's next batch (docs/bridge.md,
 * "Consumer") after a batch of n deliveries is n /
 * SC_APPLY_BATCH_PER_LINGER_MS ms, never below apply_linger_ms (so small
 * batches keep the default 2 ms) and never above SC_APPLY_LOADED_LINGER_MS,
 * exact at both bounds; a longer apply_linger_ms is kept, and 0 never waits.
 * Plain program: exit 0 = pass; every failed check prints one line.
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
	const int k = SC_APPLY_BATCH_PER_LINGER_MS, max = SC_APPLY_LOADED_LINGER_MS;

	CHECK(max > def, "the linger under load is the longer one");
	CHECK(consumer_linger_ms(0, def) == def, "after an empty collect: %d", consumer_linger_ms(0, def));
	CHECK(consumer_linger_ms(1, def) == def, "one delivery: %d", consumer_linger_ms(1, def));
	CHECK(consumer_linger_ms((def + 1) * k - 1, def) == def, "below the default's worth: %d",
		  consumer_linger_ms((def + 1) * k - 1, def));
	CHECK(consumer_linger_ms((def + 1) * k, def) == def + 1, "just above: %d", consumer_linger_ms((def + 1) * k, def));
	CHECK(consumer_linger_ms(64, def) == 64 / k, "64 deliveries: %d", consumer_linger_ms(64, def));
	CHECK(consumer_linger_ms(max * k - 1, def) == max - 1, "just below the cap: %d",
		  consumer_linger_ms(max * k - 1, def));
	CHECK(consumer_linger_ms(max * k, def) == max, "at the cap: %d", consumer_linger_ms(max * k, def));
	CHECK(consumer_linger_ms(500, def) == max, "a full default batch: %d", consumer_linger_ms(500, def));
	CHECK(consumer_linger_ms(500, 300) == 300, "a longer apply_linger_ms is kept: %d", consumer_linger_ms(500, 300));
	CHECK(consumer_linger_ms(500, 0) == 0, "apply_linger_ms = 0 never waits: %d", consumer_linger_ms(500, 0));
	for (int n = 0; n < 500; n++)
		CHECK(consumer_linger_ms(n, def) <= consumer_linger_ms(n + 1, def), "not monotonic at %d", n);
	return unit_done("test_consumer_linger");
}
