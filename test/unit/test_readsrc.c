/*
 * test_readsrc.c — unit tests for the replica lag arithmetic of
 * bridge/readsrc.c (docs/bridge.md, "Read replicas"): pg_lsn parsing, lag
 * ~0 on an idle primary, growing while replay stands still, interpolation
 * between samples, a full sample ring, WAL going back.  Plain program:
 * exit 0 = pass; every failed check prints one line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "readsrc.h"
#include "unit.h"

static void
test_parse(void)
{
	uint64_t lsn = 0;

	CHECK(lag_parse_lsn("0/3016038", &lsn) == 0 && lsn == 0x3016038, "0/3016038 -> %llx", (unsigned long long) lsn);
	CHECK(lag_parse_lsn("16/B374D848", &lsn) == 0 && lsn == 0x16B374D848ULL, "16/B374D848");
	CHECK(lag_parse_lsn("FFFFFFFF/FFFFFFFF", &lsn) == 0 && lsn == UINT64_MAX, "max");
	CHECK(lag_parse_lsn("", &lsn) == -1, "empty");
	CHECK(lag_parse_lsn(NULL, &lsn) == -1, "NULL (SQL null)");
	CHECK(lag_parse_lsn("0/1x", &lsn) == -1, "trailing junk");
	CHECK(lag_parse_lsn("12345", &lsn) == -1, "no slash");
}

static void
test_idle_and_paused(void)
{
	struct lag_tracker lt;
	int64_t t;

	lag_init(&lt, 1000);
	/* idle primary: the same WAL position for minutes; the replica has it all */
	for (t = 1000; t <= 300000; t += 250)
	{
		lag_note_primary(&lt, t, 0x5000);
		CHECK(lag_note_replica(&lt, 0x5000, t + 3) == 3, "idle at %lld: lag %lld", (long long) t,
			  (long long) lag_since(&lt, t + 3));
	}
	CHECK(lt.n == 1, "idle keeps one sample, has %d", lt.n);
	/* a write at 300100; replay paused at 0x5000 from then on */
	for (t = 300250; t <= 310000; t += 250)
		lag_note_primary(&lt, t, 0x9000);
	CHECK(lag_note_replica(&lt, 0x5000, 310000) == 10000, "paused: lag %lld, want 10000",
		  (long long) lag_since(&lt, 310000));
	CHECK(lag_since(&lt, 312000) == 12000, "replica down: lag keeps growing");
	/* replay resumed and caught up */
	lag_note_primary(&lt, 312100, 0x9000);
	CHECK(lag_note_replica(&lt, 0x9000, 312102) == 2, "caught up: lag %lld", (long long) lag_since(&lt, 312102));
	/* an old answer never makes the lag go back up (caught_up never decreases) */
	CHECK(lag_note_replica(&lt, 0x5000, 312102) == 2, "stale answer moved the lag back");
}

static void
test_interpolation(void)
{
	struct lag_tracker lt;

	lag_init(&lt, 0);
	lag_note_primary(&lt, 1000, 0x1000);
	lag_note_primary(&lt, 2000, 0x2000); /* 0x1000 bytes written during (1000, 2000] */
	CHECK(lag_note_replica(&lt, 0x1800, 2010) == 510, "halfway: lag %lld, want 510", (long long) lag_since(&lt, 2010));
	CHECK(lt.n == 2 && lt.s[0].lsn == 0x1000, "keeps the sample below the replay position for interpolation");
	/* below every sample: nothing learnt, the lag only grows */
	lag_init(&lt, 500);
	lag_note_primary(&lt, 1000, 0x1000);
	CHECK(lag_note_replica(&lt, 0x800, 1200) == 700, "below all samples: lag since start");
}

static void
test_full_and_reset(void)
{
	struct lag_tracker lt;
	int i;

	lag_init(&lt, 0);
	for (i = 0; i < LAG_SAMPLES + 10; i++)
		lag_note_primary(&lt, 1000 + i, 0x100 * (uint64_t) (i + 1));
	CHECK(lt.n == LAG_SAMPLES, "ring holds %d, want %d", lt.n, LAG_SAMPLES);
	CHECK(lt.s[0].lsn == 0x100 * 11, "oldest kept is sample 11, is %llx", (unsigned long long) lt.s[0].lsn);
	/* the replica at a position older than every kept sample: no credit, over- not under-estimated */
	CHECK(lag_note_replica(&lt, 0x100, 2000) == 2000, "forgotten samples give no credit");
	CHECK(lag_note_replica(&lt, 0x100 * (LAG_SAMPLES + 10), 2000) == 2000 - (1000 + LAG_SAMPLES + 9),
		  "caught up with the newest");
	/* WAL position went back (another primary): samples start over */
	lag_note_primary(&lt, 3000, 0x10);
	CHECK(lt.n == 1 && lt.s[0].lsn == 0x10, "reset on WAL going back");
	CHECK(lag_note_replica(&lt, 0x10, 3001) == 1, "after reset");
}

int
main(void)
{
	test_parse();
	test_idle_and_paused();
	test_interpolation();
	test_full_and_reset();
	return unit_done("test_readsrc");
}
