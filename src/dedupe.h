/*
 * dedupe.h: what dedupe.c (the apply path's dedupe state) and dedupe_filter.c
 * (past days: sealed days' filters, their exact rows, sealing) share
 * (docs/extension.md, "Dedupe").
 *
 * Rules: everything runs inside sharecount_apply*() or sharecount_prune()
 * (SECURITY DEFINER, search_path pinned), connected to SPI; memory is
 * palloc'd in the caller's context.
 */
#ifndef SHARECOUNT_DEDUPE_H
#define SHARECOUNT_DEDUPE_H

#include "postgres.h"
#include "utils/date.h"

#include "sharecount.h"

/*
 * A sealed day's filter (a Bloom filter per group of buckets, in
 * sharecount.dedupe_filter): SC_DEDUPE_FILTER_BITS bits per hash of the day,
 * SC_DEDUPE_FILTER_PROBES bits per hash (positions from the hash's bytes 4 to
 * 11), so about 0.8 % of the lookups of an absent hash read the day's row.
 */
#define SC_DEDUPE_FILTER_GROUPS 4096 /* a group: 16 buckets (hash >> 116) */
#define SC_DEDUPE_FILTER_BITS 10	 /* bits per hash of the day */
#define SC_DEDUPE_FILTER_PROBES 7	 /* bits tested per lookup */
#define SC_DEDUPE_FILTER_MIN_BYTES 8 /* the smallest filter of a group */
#define SC_DEDUPE_SEAL_FETCH 1024 /* day rows per cursor fetch when sealing */

/* One distinct jobId of the batch. */
typedef struct DedupeId
{
	int idx;						  /* index in the caller's arrays */
	bool dup;						  /* found in the state */
	int64 k1;						  /* dense: origin; foreign: bucket */
	int64 k2;						  /* dense: block; foreign: 0 */
	int bit;						  /* dense: n % SC_DEDUPE_BLOCK_IDS */
	uint8 hash[SC_DEDUPE_HASH_BYTES]; /* foreign */
} DedupeId;

/* The past days a batch saw (with the snapshot of its past-day reads). */
typedef struct DedupePast
{
	int ndays;
	DateADT *days;		/* every day in sharecount.dedupe_days or _sealed */
	bool *sealed;		/* days[i] has a filter (sharecount.dedupe_sealed) */
	DateADT max_sealed; /* the latest sealed day, DATEVAL_NOBEGIN if none */
} DedupePast;

/* dedupe.c: the UTC day this transaction started (foreign ids' day). */
extern DateADT sc_dedupe_today(void);

/*
 * dedupe_filter.c: mark the foreign ids fs[0..nf) (sorted by bucket, hash)
 * found in a past day or in 1.0's table; ids are the caller's jobIds.  flushing: the caller may move a head's
 * day into its partition in this transaction (it then takes the seal lock
 * first).  Fills *past.
 */
extern void sc_dedupe_find_past(DedupeId *fs, int nf, char **ids,
								bool flushing, DedupePast *past);
extern bool sc_dedupe_day_sealed(const DedupePast *past, DateADT day);
extern int16 sc_dedupe_day_slot(DateADT day);
extern bool sc_dedupe_hash_in(const char *data, int len, const uint8 *hash);

#endif
