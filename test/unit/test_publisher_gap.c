/*
 * test_publisher_gap.c — unit test for publisher_partial_gap_ms() in
 * bridge/publisher.c: the pause after a partial claim (docs/bridge.md,
 * "Publisher": claim pacing) is SC_CLAIM_GAP_MS below SC_CLAIM_LOADED_ROWS rows and
 * SC_CLAIM_LOADED_GAP_MS from there on, exact at the boundary.  Plain
 * program: exit 0 = pass; every failed check prints one line.
 */
#include <stdio.h>

#include "bridge.h"
#include "publisher.h"
#include "sc_limits.h"

#include "unit.h"

int
main(void)
{
	CHECK(SC_CLAIM_LOADED_GAP_MS > SC_CLAIM_GAP_MS, "the pause under load is the longer one");
	CHECK(publisher_partial_gap_ms(1) == SC_CLAIM_GAP_MS, "one row: %d", publisher_partial_gap_ms(1));
	CHECK(publisher_partial_gap_ms(SC_CLAIM_LOADED_ROWS - 1) == SC_CLAIM_GAP_MS, "just below the threshold: %d",
		  publisher_partial_gap_ms(SC_CLAIM_LOADED_ROWS - 1));
	CHECK(publisher_partial_gap_ms(SC_CLAIM_LOADED_ROWS) == SC_CLAIM_LOADED_GAP_MS, "at the threshold: %d",
		  publisher_partial_gap_ms(SC_CLAIM_LOADED_ROWS));
	CHECK(publisher_partial_gap_ms(499) == SC_CLAIM_LOADED_GAP_MS, "a large partial claim: %d",
		  publisher_partial_gap_ms(499));
	return unit_done("test_publisher_gap");
}
