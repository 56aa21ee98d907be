/*
 * sharecount.h: declarations shared by the sharecount extension's C files.
 *
 * Rules: everything here runs in an ordinary backend; no shared memory of our
 * own is used (the wake-up uses a lock in the regular lock table).  Functions
 * that return strings palloc them in the current memory context.  Limits and
 * defaults live here, each with its reason.
 */
#ifndef SHARECOUNT_H
#define SHARECOUNT_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "utils/array.h"

/* Limits of a job (docs/extension.md, "Jobs"): key bytes, jobId bytes, amount. */
#define SC_CONTENT_TYPE_MAX 64
#define SC_CONTENT_ID_MAX 256
#define SC_JOB_ID_MAX 128
#define SC_AMOUNT_MAX 1000000

/*
 * Job bodies (docs/extension.md, "Jobs"): every body that
 * sharecount.job_body() renders is at most SC_JOB_BODY_MAX bytes, whatever the
 * tracked row holds, so it is far below the bridge's 64 KiB message limit and
 * a share_created is never dead-lettered for its size while its share_deleted
 * is applied.  The key is bounded by the limits above; each optional field
 * (shareId, userId, channelId, campaignId) may take at most
 * SC_JOB_FIELD_MAX bytes as JSON-escaped text (quotes not included; a control
 * character renders as 6 bytes, "\u001f"), else it is left out of the job
 * with a WARNING (shareId and userId then render as null).  The worst case is
 * a share_created with every field at its limit:
 *   SC_JOB_FRAME_MAX + 6 * (SC_CONTENT_TYPE_MAX + SC_CONTENT_ID_MAX)
 *   + 4 * SC_JOB_FIELD_MAX = 256 + 1,920 + 4,096 = 6,272 <= 8,192,
 * checked at compile time in outbox.c.
 */
#define SC_JOB_BODY_MAX 8192  /* bytes of a rendered job body */
#define SC_JOB_FIELD_MAX 1024 /* JSON-escaped bytes of one optional field */
#define SC_JOB_FIELD_RAW_SAFE \
	(SC_JOB_FIELD_MAX / 6) /* raw bytes that always fit */
/*
 * Bytes of a body other than the escaped text of its key and optional fields:
 * names, punctuation, quotes, jobId, operation, amount, timestamp.
 * share_created's is 210 bytes ({"pattern":"share_created","data":{"jobId":
 * "<36>","shareId":"",...,"timestamp":"<24>"}}), share_count_update's at most
 * 213 (a 20-digit amount); 256 leaves room.  (A dense jobId, "<16 hex>-<id>",
 * is at most 36 bytes too.)
 */
#define SC_JOB_FRAME_MAX 256

/*
 * The lock of the wake-up protocol (docs/wakeup.md): an advisory LOCKTAG in
 * the current database with fields (SC_WAKEUP_KEY1, SC_WAKEUP_KEY2,
 * SC_WAKEUP_KEY_KIND).  pg_advisory_lock() and its kin always set the fourth
 * field to 1 (one int8 key) or 2 (two int4 keys), so no SQL-callable function
 * can take this lock: only sharecount_publisher_sleep(), which is not
 * executable by PUBLIC, does.  A role that could take it would make every
 * tracked commit NOTIFY (commits serialised).  pg_locks shows it as locktype
 * advisory, classid 1935896180, objid 1, objsubid 21315.
 */
#define SC_WAKEUP_KEY1 1935896180 /* "scnt" */
#define SC_WAKEUP_KEY2 1
#define SC_WAKEUP_KEY_KIND 21315 /* "SC"; neither 1 nor 2 (pg_advisory_*) */
#define SC_WAKEUP_CHANNEL "sharecount_wakeup"

/* Job kinds: sharecount.outbox.job and ScJob.kind (the one enum of job kinds). */
#define SC_JOB_CREATED 'c'		/* share_created */
#define SC_JOB_DELETED 'd'		/* share_deleted */
#define SC_JOB_COUNT_UPDATE 'u' /* share_count_update; amount > 0 increments */

/* One job as the trigger hands it to outbox_insert(); NULL = SQL NULL. */
typedef struct OutboxJob
{
	char kind;		/* SC_JOB_* (the jobId is dense: origin.c) */
	TimestampTz ts; /* the job's timestamp */
	int64 amount;	/* SC_JOB_COUNT_UPDATE only: +n or -n */
	const char *share_id;
	const char *content_type;
	const char *content_id;
	const char *user_id;
	const char *channel_id;
	const char *campaign_id;
} OutboxJob;

/* outbox.c */
extern void outbox_insert(const OutboxJob *job);

/* sharecount.c */
/* Bytes of "YYYY-MM-DDT", the date part of a rendered timestamp. */
#define SC_TS_DATE_LEN 11
/* Bytes of a rendered timestamp, "YYYY-MM-DDTHH:MM:SS.mmmZ", without its NUL */
#define SC_TS_LEN 24
extern void sc_format_timestamp(char *buf,
								TimestampTz ts); /* buf >= 32 bytes */
extern void sc_uuid_v4(unsigned char *b);		 /* 16 bytes */
extern void sc_uuid_format(char *buf,
						   const unsigned char *b); /* buf >= 37 bytes */
extern Oid sc_state_relid(const char *relname);
extern void sc_begin_as_owner(Oid relid, Oid *save_userid, int *save_sec);
extern void sc_end_as_owner(Oid save_userid, int save_sec);
extern SPIPlanPtr sc_prepare_once(SPIPlanPtr *slot, const char *sql, int nargs,
								  Oid *types);
extern void sc_array_elements(ArrayType *arr, Oid elemtype, const char *what,
							  Datum **elems, bool **nulls, int *n);

/* wakeup.c */
extern void sc_wakeup_note_outbox_write(void);

/*
 * Dedupe state (src/dedupe.c, docs/extension.md "Dedupe").  A DENSE jobId is
 * "<origin>-<n>": 16 lowercase hex characters, '-', 1 to 19 digits without a
 * leading zero (n <= INT64_MAX); it is one bit in the block of
 * SC_DEDUPE_BLOCK_IDS ids of its origin (a 512-byte row for 4,096 jobs).  Any
 * other jobId is FOREIGN: the first SC_DEDUPE_HASH_BYTES of its MD5 (128 bits:
 * 64 would collide at a week's 30M ids), kept in one of SC_DEDUPE_BUCKETS
 * buckets (the hash's first two bytes), today's in a head row per bucket and
 * earlier days packed per (bucket, day) in SC_DEDUPE_SLOTS day partitions.
 */
#define SC_DEDUPE_BLOCK_IDS 4096 /* ids per dense block: 512-byte bitmap */
#define SC_DEDUPE_BLOCK_BYTES (SC_DEDUPE_BLOCK_IDS / 8)
#define SC_DEDUPE_HASH_BYTES 16 /* bytes of a foreign jobId's hash */
#define SC_DEDUPE_BUCKETS 65536 /* foreign buckets: ~66 ids/day at 4.3M/day */
#define SC_DEDUPE_SLOTS \
	16 /* day partitions: windows up to 15 days drop whole */
#define SC_DEDUPE_LOCK_TRIES 3 /* re-lock rounds when prune removed a block */
#define SC_STATS_SHARDS 16 /* rows of sharecount.stats: a shard per pid % 16 */

/*
 * The claim's pass below its cursor (src/claim.c): a claim that found rows
 * ahead looks back SC_CLAIM_LOOKBACK_BLOCKS heap blocks (about 800 rows:
 * 50 ms of inserts at 16,000 a second, where a commit waiting for its WAL
 * flush takes a few ms); every SC_CLAIM_FULL_WRAP_EVERY-th such claim, and
 * every claim that found nothing ahead, scans from block 0
 * (docs/extension.md "Outbox").
 */
#define SC_CLAIM_LOOKBACK_BLOCKS 16
#define SC_CLAIM_FULL_WRAP_EVERY 8

#endif
