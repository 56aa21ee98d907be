/*
 * test_publisher_gap.c — unit test for the pacing of bridge/pace.c: the rate
 * over windows (sc_pace_add, sc_pace_per_s), the publisher's pause after a
 * partial claim (publisher_partial_gap_ms, docs/bridge.md "Publisher": claim
 * pacing) and the consumer's linger (consumer_linger_ms, docs/bridge.md
 * "Consumer": batch size under load), each exact at SC_PACE_LOADED_PER_S; a
 * steady 1,000 jobs/s and a burst after a stall stay below it.  Plain
 * program: exit 0 = pass; every failed check prints one line.
 */
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "pace.h"
#include "sc_limits.h"

#include "unit.h"

/* A pace fed with `every` ms steps of n jobs each from t0 for ms; returns its rate at the end. */
static int
feed(struct sc_pace *p, int64_t t0, int ms, int every, int n)
{
	for (int t = 0; t <= ms; t += every)
		sc_pace_add(p, n, t0 + t);
	return sc_pace_per_s(p, t0 + ms);
}

int
main(void)
{
	const int lo = SC_PACE_LOADED_PER_S - 1, hi = SC_PACE_LOADED_PER_S, def = 2; /* apply_linger_ms's default */
	struct sc_pace p = {0};
	int r;

	/* decisions */
	CHECK(SC_CLAIM_LOADED_GAP_MS > SC_CLAIM_GAP_MS && SC_APPLY_LOADED_LINGER_MS > def, "loaded pauses are longer");
	CHECK(publisher_partial_gap_ms(0) == SC_CLAIM_GAP_MS, "idle: %d", publisher_partial_gap_ms(0));
	CHECK(publisher_partial_gap_ms(lo) == SC_CLAIM_GAP_MS, "just below: %d", publisher_partial_gap_ms(lo));
	CHECK(publisher_partial_gap_ms(hi) == SC_CLAIM_LOADED_GAP_MS, "at the rate: %d", publisher_partial_gap_ms(hi));
	CHECK(consumer_linger_ms(lo, def) == def, "just below: %d", consumer_linger_ms(lo, def));
	CHECK(consumer_linger_ms(hi, def) == SC_APPLY_LOADED_LINGER_MS, "at the rate: %d", consumer_linger_ms(hi, def));
	CHECK(consumer_linger_ms(hi, 300) == 300, "a longer apply_linger_ms is kept: %d", consumer_linger_ms(hi, 300));
	CHECK(consumer_linger_ms(hi, 0) == 0, "apply_linger_ms = 0 never waits: %d", consumer_linger_ms(hi, 0));

	/* rates */
	CHECK(sc_pace_per_s(&p, 1000) == 0, "no window yet");
	r = feed(&p, 1000, 1000, 5, 5); /* 1,000 jobs/s in batches of 5 every 5 ms */
	CHECK(r == 1000, "a steady 1,000/s: %d", r);
	CHECK(publisher_partial_gap_ms(r) == SC_CLAIM_GAP_MS && consumer_linger_ms(r, def) == def, "unchanged pauses");
	r = feed(&p, 3000, 1000, 20, 100); /* 5,000 jobs/s in batches of 100 every 20 ms */
	CHECK(r == 5000, "a steady 5,000/s: %d", r);
	CHECK(publisher_partial_gap_ms(r) == SC_CLAIM_LOADED_GAP_MS, "loaded claims");
	CHECK(sc_pace_per_s(&p, 4000 + 2 * SC_PACE_WINDOW_MS) == 5000, "kept for two windows");
	CHECK(sc_pace_per_s(&p, 4000 + 2 * SC_PACE_WINDOW_MS + 1) == 0, "stale after two windows of nothing");
	/* 1,000/s with a stall of 80 ms, then its 80 jobs at once: still 1,000/s */
	memset(&p, 0, sizeof(p));
	feed(&p, 10000, 400, 5, 5);
	sc_pace_add(&p, 80, 10480);
	r = feed(&p, 10485, 150, 5, 5); /* the window that holds the burst */
	CHECK(r < SC_PACE_LOADED_PER_S, "a burst after a stall is not load: %d", r);
	/* just at the rate: SC_PACE_LOADED_PER_S jobs over one second */
	memset(&p, 0, sizeof(p));
	r = feed(&p, 20000, 1000, 10, SC_PACE_LOADED_PER_S / 100);
	CHECK(r == SC_PACE_LOADED_PER_S, "exactly at the rate: %d", r);
	return unit_done("test_publisher_gap");
}
