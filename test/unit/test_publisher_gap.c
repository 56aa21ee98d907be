/*
 * test_publisher_gap.c — unit test for publisher_partial_gap_ms() in
 * bridge/publisher.c: the pause after a partial claim of n rows
 * (docs/bridge.md, "Publisher": claim pacing) is n / SC_CLAIM_ROWS_PER_GAP_MS
 * ms, never below SC_CLAIM_GAP_MS (a steady 1,000 inserts/s keeps the 1 ms
 * pause) and never above SC_CLAIM_LOADED_GAP_MS, exact at both bounds.
 * Plain program: exit 0 = pass; every failed check prints one line.
 */
#include <stdio.h>

#include "bridge.h"
#include "publisher.h"
#include "sc_limits.h"

#include "unit.h"

int
main(void)
{
	const int k = SC_CLAIM_ROWS_PER_GAP_MS, max = SC_CLAIM_LOADED_GAP_MS;

	CHECK(max > SC_CLAIM_GAP_MS, "the pause under load is the longer one");
	CHECK(publisher_partial_gap_ms(1) == SC_CLAIM_GAP_MS, "one row: %d", publisher_partial_gap_ms(1));
	CHECK(publisher_partial_gap_ms(2 * k - 1) == SC_CLAIM_GAP_MS, "below two ms' worth: %d",
		  publisher_partial_gap_ms(2 * k - 1));
	CHECK(publisher_partial_gap_ms(2 * k) == 2, "two ms' worth: %d", publisher_partial_gap_ms(2 * k));
	CHECK(publisher_partial_gap_ms(32) == 32 / k, "32 rows: %d", publisher_partial_gap_ms(32));
	CHECK(publisher_partial_gap_ms(max * k - 1) == max - 1, "just below the cap: %d",
		  publisher_partial_gap_ms(max * k - 1));
	CHECK(publisher_partial_gap_ms(max * k) == max, "at the cap: %d", publisher_partial_gap_ms(max * k));
	CHECK(publisher_partial_gap_ms(499) == max, "a large partial claim: %d", publisher_partial_gap_ms(499));
	for (int n = 1; n < 500; n++)
		CHECK(publisher_partial_gap_ms(n) <= publisher_partial_gap_ms(n + 1), "not monotonic at %d", n);
	return unit_done("test_publisher_gap");
}
