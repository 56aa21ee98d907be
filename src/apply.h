/*
 * apply.h: what the consumer side of the extension shares between its files:
 * apply.c (sharecount_apply*, counts, stats), apply_rows.c (their result
 * rows), jobcheck.c (validation) and dedupe.c (the dedupe state,
 * docs/extension.md "Dedupe").
 *
 * Rules: every function here runs inside sharecount_apply*() (SECURITY
 * DEFINER, search_path pinned), connected to SPI where it says so; memory is
 * palloc'd in the caller's context.
 */
#ifndef SHARECOUNT_APPLY_H
#define SHARECOUNT_APPLY_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "nodes/execnodes.h"
#include "utils/jsonb.h"

/* One valid job, as apply needs it. */
typedef struct ScJob
{
	char kind; /* SC_JOB_* of sharecount.h */
	char *job_id;
	char *ctype;
	char *cid;
	int64 delta;	/* +1, -1, or +/- amount */
	char *channel;	/* channelId, NULL when absent or null (trends.c) */
	char *campaign; /* campaignId, likewise */
	TimestampTz ts; /* the timestamp; ts_valid false if out of range */
	bool ts_valid;
} ScJob;

/* A job of a batch and what became of it (apply.c, trends.c). */
typedef enum
{
	ST_INVALID,
	ST_PENDING,
	ST_APPLIED,
	ST_DUPLICATE
} ItemStatus;

typedef struct BatchItem
{
	ItemStatus status;
	char *error;
	ScJob job;
} BatchItem;

/*
 * A job message as validation sees it (jobcheck.c), read from a jsonb
 * (sc_validate_message) or straight from the JSON text of a batch
 * (jobjson.c, without building a jsonb): the values of the keys that matter,
 * the last one winning for a key given twice (as in jsonb), and the first
 * other key in jsonb's key order (shorter first, then bytewise).
 */
typedef enum
{
	JV_ABSENT = 0,
	JV_NULL,
	JV_STRING,
	JV_NUMBER,
	JV_BOOL,
	JV_OBJECT,
	JV_ARRAY
} JobValueType;

typedef struct JobValue
{
	JobValueType type;
	const char *str; /* JV_STRING: the (unescaped) string, len bytes */
	int len;
	Datum num; /* JV_NUMBER: the numeric, as jsonb holds it */
} JobValue;

#define SC_JOB_NFIELDS 10 /* the job fields of jobcheck.c's job_fields */

typedef struct JobMessage
{
	bool is_object;
	bool nul_terminated; /* every str ends with a NUL at len (jobjson.c): a
						  * valid job keeps them without a copy */
	const char *
		bad_key; /* the first envelope key that is none of pattern, data, id */
	int bad_key_len;
	JobValue pattern;
	JobValue data;
	JobValue
		field[SC_JOB_NFIELDS]; /* data's job fields, when data is an object */
	const char *extra_key;	   /* the first data key that is no job field */
	int extra_key_len;
} JobMessage;

/* jobcheck.c: NULL and *job filled, or the error naming the field. */
extern char *sc_validate_message(Jsonb *jb, ScJob *job);
extern char *sc_validate_parsed(const JobMessage *m, ScJob *job);
/* jobcheck.c: the index of a job field's name in job_fields, or -1. */
extern int sc_job_field_index(const char *name, int len);
/* jobcheck.c: note key as *first if it comes before it in jsonb's key order. */
extern void sc_job_first_key(const char *key, int len, const char **first,
							 int *first_len);

/*
 * jobjson.c: the messages of a JSON array given as text, each validated
 * into items[i] (status ST_PENDING or ST_INVALID with its error), as
 * sharecount_apply_batch() would have them from the same messages as jsonb;
 * *n messages.  Not an array, or not JSON: an ERROR (22023, 22P02).
 */
extern BatchItem *sc_parse_batch(text *json, int *n);

/*
 * dedupe.c: record the distinct jobIds ids[0..n-1] as applied; applied[i]
 * is set true for each one that was not recorded before (false: duplicate).
 * Takes the dedupe state's row locks until the end of the transaction.
 * Caller is connected to SPI.  Returns false when the database still has the
 * 1.0 schema (sharecount.applied_jobs only): the caller then uses
 * sc_dedupe_legacy.
 */
extern bool sc_dedupe_1_1(char **ids, int n, bool *applied);
extern void sc_dedupe_legacy(char **ids, int n, bool *applied);

/* dedupe_legacy.c: see there. */
extern bool sc_dedupe_schema_1_1(void);
extern void sc_dedupe_legacy_seen(char **ids, int n, bool *seen);

/* apply.c: a text[] of strs[0..n). */
extern Datum sc_text_array(char **strs, int n);

/* A key whose count a batch changed, as the counts upsert returned it (apply.c). */
typedef struct KeyChange
{
	char *ctype;
	char *cid;
	int64 count;   /* the stored count after the batch */
	int64 delta;   /* the batch's net delta (never 0) */
	int64 version; /* the key's version after the batch */
} KeyChange;

/* Columns of sharecount_apply_batch_changes() (the first 3: sharecount_apply_batch()). */
#define SC_APPLY_BATCH_COLS 8

/*
 * apply_rows.c: the result rows of a batch, into rsinfo's tuplestore: the
 * status rows in order (none for an applied item without applied_rows;
 * returns the number applied), a change row, the applied count row.
 */
extern int64 sc_put_statuses(ReturnSetInfo *rsinfo, const BatchItem *items,
							 int n, bool applied_rows);
extern void sc_put_change(ReturnSetInfo *rsinfo, const KeyChange *ch);
extern void sc_put_applied_count(ReturnSetInfo *rsinfo, int64 napplied);

/*
 * trends.c: add the applied items' breakdown and history deltas (one
 * statement per batch); nothing under the 1.0 schema.  Caller is connected
 * to SPI and has taken the dedupe locks.
 */
extern void sc_trends_apply(const BatchItem *items, int n);

/* trends_window.c: the trailing window of sharecount_top(), see there. */
extern void sc_trend_window_advance(void);
extern TimestampTz sc_hour_of(TimestampTz ts);

#endif
