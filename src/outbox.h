/*
 * outbox.h: the outbox row shared by the writer (outbox.c), the renderer
 * (render.c) and the claim (claim.c).
 *
 * Rules: a row of sharecount.outbox is read and written through the column
 * map (outbox_map_columns), never by attribute number, because the table's
 * attribute order differs between a fresh 1.1 install and an upgraded 1.0 one
 * (ALTER TABLE ADD COLUMN appends).  Everything returned is palloc'd in the
 * caller's memory context.
 */
#ifndef SHARECOUNT_OUTBOX_H
#define SHARECOUNT_OUTBOX_H

#include "postgres.h"
#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/relcache.h"

/* The columns of sharecount.outbox, by name (see the install scripts). */
enum
{
	COL_ID,
	COL_JOB,
	COL_JOB_ID,
	COL_CREATED_AT,
	COL_AMOUNT,
	COL_SHARE_ID,
	COL_CONTENT_TYPE,
	COL_CONTENT_ID,
	COL_USER_ID,
	COL_CHANNEL_ID,
	COL_CAMPAIGN_ID,
	COL_ORIGIN,
	NCOLS
};

/*
 * Bytes of a rendered jobId plus its NUL: a UUID (36) from a 1.0 row, a dense
 * <16 hex>-<id> (at most 16 + 1 + 20), or, for a row made by hand with
 * neither, nojobid-<id>-<timestamp> (at most 8 + 20 + 1 + 20).  Within
 * SC_JOB_FRAME_MAX's room (sharecount.h): the frame counts a 36-byte jobId
 * and leaves 43 bytes over.
 */
#define SC_JOB_ID_TEXT 64

/*
 * One job as the row trigger hands it to outbox_insert_text(): OutboxJob
 * (sharecount.h) with its strings as text values, NULL = SQL NULL.  Each is a
 * varlena with any header (short or 4-byte) but neither compressed nor
 * external (pg_detoast_datum_packed), and is stored as it is, so a column's
 * value goes from the tracked row to the outbox row without a C string in
 * between (docs/extension.md, "Tracking a table").
 */
typedef struct OutboxTextJob
{
	char kind;		/* SC_JOB_* */
	TimestampTz ts; /* the job's timestamp */
	int64 amount;	/* SC_JOB_COUNT_UPDATE only: +n or -n */
	text *share_id;
	text *content_type;
	text *content_id;
	text *user_id;
	text *channel_id;
	text *campaign_id;
} OutboxTextJob;

/* outbox.c */
extern void outbox_map_columns(TupleDesc desc, int *attno);
extern bool outbox_field_fits(const char *s, size_t len);
extern bool outbox_key_fits(size_t ctype_len, size_t cid_len);
extern void outbox_warn_field_left_out(int col, const char *job_name,
									   size_t len, const char *ctype,
									   const char *cid);
extern void outbox_insert_text(const OutboxTextJob *job);
extern Oid outbox_relation(void);
extern void outbox_insert_tuple(Relation rel, HeapTuple tup);
extern void outbox_deform(Relation rel, HeapTuple tup, Datum *values,
						  bool *nulls);

/* render.c */
extern const char *outbox_job_name(char kind);
extern const char *outbox_render(const Datum *values, const bool *nulls,
								 StringInfo body, char *job_id);

/* origin.c */
extern int64 sc_origin(void);
extern void sc_origin_format(char *buf, int64 origin); /* buf >= 17 bytes */

#endif
