/*
 * trigger.c: the trigger attached to tracked tables, and the COUNT(*) job
 * writer shared by TRUNCATE and the backfill of sharecount_track().
 *
 * Every job is one row in sharecount.outbox, written by outbox_insert()
 * (outbox.c) in the compact form described there; its message body is
 * rendered when a publisher claims it.
 *
 * Rules:
 * - Row events are AFTER ROW (a BEFORE trigger would see rows that are then
 *   skipped, e.g. by ON CONFLICT DO NOTHING); TRUNCATE is BEFORE STATEMENT, run
 *   once TRUNCATE holds its ACCESS EXCLUSIVE lock, so its COUNT(*) is exact.
 * - Outbox rows are written directly (outbox_insert: heap and index inserts,
 *   no SPI, no privilege check), so the app's role needs no grant on schema
 *   sharecount and a row event costs no executor start-up.  The COUNT(*)
 *   query of TRUNCATE runs through SPI as the owner of the tracked table (a
 *   role may TRUNCATE without SELECT).
 * - A row whose key cannot be counted (NULL, empty or oversized content type
 *   or id) writes no job and never fails the application's statement; the
 *   oversized ones raise a WARNING.  verify/recount skip the same rows.
 * - How each trigger argument's column is read (attribute number, type,
 *   output function) is resolved once per trigger and kept per backend until a
 *   relcache invalidation of the tracked table (trigger_columns()).
 * - Memory: column values are palloc'd in the trigger's (per-tuple) context;
 *   the per-trigger column cache lives in TopMemoryContext.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "sharecount.h"

PG_FUNCTION_INFO_V1(sharecount_trigger);
PG_FUNCTION_INFO_V1(sharecount_enqueue_counts);

/* Trigger arguments, in order; "" means the table has no such column. */
enum
{
	ARG_ID, ARG_TYPE, ARG_CID, ARG_USER, ARG_CHANNEL, ARG_CAMPAIGN, NARGS
};

/*
 * Whether a content key can be counted.  Oversized or empty keys get a
 * WARNING (the row is kept, it is just not counted); NULL keys are silent.
 */
static bool
key_is_countable(const char *ctype, const char *cid, const char *tblname)
{
	if (ctype == NULL || cid == NULL)
		return false;
	if (strlen(ctype) < 1 || strlen(ctype) > SC_CONTENT_TYPE_MAX ||
		strlen(cid) < 1 || strlen(cid) > SC_CONTENT_ID_MAX)
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sharecount: row of \"%s\" not counted: content type must be 1 to %d bytes and content id 1 to %d bytes",
						tblname, SC_CONTENT_TYPE_MAX, SC_CONTENT_ID_MAX)));
		return false;
	}
	return true;
}

/*
 * How one trigger argument's column is read.  attno 0: the argument is "" (no
 * such job field); attno -1: the named column does not exist (an error if the
 * field is required, else the field is omitted).
 */
typedef enum ColumnKind
{
	COLUMN_TEXT,				/* text or varchar: the datum is the text */
	COLUMN_UUID,				/* uuid: formatted here, without uuid_out */
	COLUMN_OTHER				/* anything else: its output function */
} ColumnKind;

typedef struct ColumnReader
{
	AttrNumber	attno;
	ColumnKind	kind;
	FmgrInfo	out;			/* COLUMN_OTHER only */
} ColumnReader;

typedef struct TriggerColumns
{
	Oid			tgoid;			/* hash key */
	Oid			relid;
	bool		valid;
	ColumnReader col[NARGS];
} TriggerColumns;

static HTAB *trigger_columns_cache = NULL;

static void
trigger_columns_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS st;
	TriggerColumns *tc;

	hash_seq_init(&st, trigger_columns_cache);
	while ((tc = hash_seq_search(&st)) != NULL)
		if (relid == InvalidOid || tc->relid == relid)
			tc->valid = false;
}

/*
 * The column readers of a row trigger, resolved on its first row and kept.
 * Looking the columns up by name (SPI_fnumber) and their output functions
 * (SPI_getvalue) on every row was about 2,500 instructions of the ~35,000
 * that tracking adds to an INSERT (bench/p1_callgrind.sh).  Any change to the
 * table's columns (rename, drop, type change) or triggers sends a relcache
 * invalidation for it, which marks its entries for re-resolution; a dropped
 * trigger's entry is simply never asked for again.
 */
static TriggerColumns *
trigger_columns(Trigger *trig, Relation rel)
{
	TriggerColumns *tc;
	bool		found;
	TupleDesc	desc = RelationGetDescr(rel);
	int			a;

	if (trigger_columns_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TriggerColumns);
		trigger_columns_cache = hash_create("sharecount trigger columns", 16, &ctl,
											HASH_ELEM | HASH_BLOBS);
		CacheRegisterRelcacheCallback(trigger_columns_invalidate, (Datum) 0);
	}
	tc = hash_search(trigger_columns_cache, &trig->tgoid, HASH_ENTER, &found);
	if (found && tc->valid && tc->relid == RelationGetRelid(rel))
		return tc;

	tc->valid = false;
	tc->relid = RelationGetRelid(rel);
	for (a = 0; a < NARGS; a++)
	{
		ColumnReader *cr = &tc->col[a];
		const char *colname = trig->tgargs[a];
		Oid			typid;

		cr->kind = COLUMN_TEXT;
		if (colname[0] == '\0')
		{
			cr->attno = 0;
			continue;
		}
		cr->attno = SPI_fnumber(desc, colname);
		if (cr->attno <= 0)
		{
			cr->attno = -1;		/* system columns are not job fields either */
			continue;
		}
		typid = TupleDescAttr(desc, cr->attno - 1)->atttypid;
		if (typid == TEXTOID || typid == VARCHAROID)
			cr->kind = COLUMN_TEXT;
		else if (typid == UUIDOID)
			cr->kind = COLUMN_UUID;
		else
		{
			Oid			outfunc;
			bool		isvarlena;

			cr->kind = COLUMN_OTHER;
			getTypeOutputInfo(typid, &outfunc, &isvarlena);
			fmgr_info_cxt(outfunc, &cr->out, TopMemoryContext);
		}
	}
	tc->valid = true;
	return tc;
}

/* Column args[arg] of the row as text, or NULL (SQL NULL or no such column). */
static char *
column_text(HeapTuple tuple, TupleDesc desc, const TriggerColumns *tc, char **args, int arg,
			const char *tblname, bool required)
{
	const ColumnReader *cr = &tc->col[arg];
	bool		isnull;
	Datum		d;
	char	   *buf;

	if (cr->attno == -1 && required)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of tracked table \"%s\" does not exist", args[arg], tblname),
				 errhint("Call sharecount_untrack() and sharecount_track() again after renaming a tracked column.")));
	if (cr->attno <= 0)
		return NULL;
	d = heap_getattr(tuple, cr->attno, desc, &isnull);
	if (isnull)
		return NULL;
	switch (cr->kind)
	{
		case COLUMN_TEXT:
			return TextDatumGetCString(d);
		case COLUMN_UUID:
			buf = palloc(UUID_LEN * 2 + 5);
			sc_uuid_format(buf, DatumGetUUIDP(d)->data);
			return buf;
		case COLUMN_OTHER:
			break;
	}
	return OutputFunctionCall(unconstify(FmgrInfo *, &cr->out), d);
}

/*
 * Write share_created (created = true) or share_deleted for one row.
 */
static void
row_job(HeapTuple tuple, TupleDesc desc, const TriggerColumns *tc, char **args,
		const char *tblname, bool created)
{
	OutboxJob	job;

	job.content_type = column_text(tuple, desc, tc, args, ARG_TYPE, tblname, true);
	job.content_id = column_text(tuple, desc, tc, args, ARG_CID, tblname, true);
	if (!key_is_countable(job.content_type, job.content_id, tblname))
		return;
	job.kind = created ? SC_JOB_CREATED : SC_JOB_DELETED;
	sc_uuid_v4(job.job_id);
	job.ts = GetCurrentTimestamp();
	job.amount = 0;
	job.share_id = column_text(tuple, desc, tc, args, ARG_ID, tblname, true);
	job.user_id = column_text(tuple, desc, tc, args, ARG_USER, tblname, false);
	/* share_deleted carries no channel or campaign (SPEC section 4) */
	job.channel_id = created ? column_text(tuple, desc, tc, args, ARG_CHANNEL, tblname, false) : NULL;
	job.campaign_id = created ? column_text(tuple, desc, tc, args, ARG_CAMPAIGN, tblname, false) : NULL;
	outbox_insert(&job);
}

/*
 * Write share_count_update jobs carrying COUNT(*) per countable key of rel
 * (split so that no job's amount exceeds 1,000,000).  Caller is connected to
 * SPI.  Returns the number of jobs written.
 *
 * The keys are read through a cursor, 1,000 at a time, and each batch's
 * memory is released before the next, so a table with millions of distinct
 * keys does not need them all in memory.  The cursor is opened (and fetched)
 * as the tracked table's owner; the outbox rows are written by outbox_insert.
 * The query runs under the caller's search_path, so every name in it is
 * schema-qualified (a role allowed to TRUNCATE must not be able to make the
 * owner run its own count() or cast).
 */
static int64
enqueue_counts(Relation rel, const char *type_col, const char *cid_col, bool increment)
{
	char	   *relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													 RelationGetRelationName(rel));
	StringInfoData q;
	SPIPlanPtr	plan;
	Portal		portal;
	MemoryContext batch_cxt;
	MemoryContext old_cxt;
	int64		jobs = 0,
				skipped = 0;
	Oid			save_userid;
	int			save_sec;

	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT CAST(%s AS pg_catalog.text), CAST(%s AS pg_catalog.text), pg_catalog.count(*) "
					 "FROM %s WHERE %s IS NOT NULL AND %s IS NOT NULL GROUP BY 1, 2",
					 quote_identifier(type_col), quote_identifier(cid_col), relname,
					 quote_identifier(type_col), quote_identifier(cid_col));

	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "sharecount count jobs",
									  ALLOCSET_DEFAULT_SIZES);

	sc_begin_as_owner(RelationGetRelid(rel), &save_userid, &save_sec);
	plan = SPI_prepare(q.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	/* read_only = false: a fresh snapshot, taken after the caller's lock */
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, false);
	sc_end_as_owner(save_userid, save_sec);

	for (;;)
	{
		SPITupleTable *tt;
		uint64		nkeys,
					i;

		sc_begin_as_owner(RelationGetRelid(rel), &save_userid, &save_sec);
		SPI_cursor_fetch(portal, true, 1000);
		sc_end_as_owner(save_userid, save_sec);
		tt = SPI_tuptable;
		nkeys = SPI_processed;
		if (nkeys == 0)
			break;

		old_cxt = MemoryContextSwitchTo(batch_cxt);
		for (i = 0; i < nkeys; i++)
		{
			char	   *ctype = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
			char	   *cid = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
			bool		isnull;
			int64		n = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));

			if (strlen(ctype) < 1 || strlen(ctype) > SC_CONTENT_TYPE_MAX ||
				strlen(cid) < 1 || strlen(cid) > SC_CONTENT_ID_MAX)
			{
				skipped += n;
				continue;
			}
			while (n > 0)
			{
				int64		amount = Min(n, SC_AMOUNT_MAX);
				OutboxJob	job;

				memset(&job, 0, sizeof(job));
				job.kind = SC_JOB_COUNT_UPDATE;
				sc_uuid_v4(job.job_id);
				job.ts = GetCurrentTimestamp();
				job.amount = increment ? amount : -amount;
				job.content_type = ctype;
				job.content_id = cid;
				outbox_insert(&job);
				n -= amount;
				jobs++;
			}
			CHECK_FOR_INTERRUPTS();
		}
		MemoryContextSwitchTo(old_cxt);
		MemoryContextReset(batch_cxt);
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	SPI_freeplan(plan);
	MemoryContextDelete(batch_cxt);

	if (skipped > 0)
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sharecount: " INT64_FORMAT " rows of \"%s\" not counted: content type must be 1 to %d bytes and content id 1 to %d bytes",
						skipped, RelationGetRelationName(rel), SC_CONTENT_TYPE_MAX, SC_CONTENT_ID_MAX)));
	return jobs;
}

/*
 * The trigger.  INSERT -> share_created, DELETE -> share_deleted, UPDATE of
 * the key (compared here as the text the jobs carry) -> both, any other
 * UPDATE -> nothing, TRUNCATE -> decrements of COUNT(*) per key.  Row events
 * take the six column names of the enum above; TRUNCATE takes only the
 * content type and id columns.
 */
Datum
sharecount_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Trigger    *trig;
	char	  **args;
	const char *tblname;
	TriggerColumns *tc;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sharecount_trigger() must be called as a trigger")));
	trig = td->tg_trigger;
	args = trig->tgargs;
	tblname = RelationGetRelationName(td->tg_relation);

	/* TRUNCATE's trigger names only the key columns: (content_type, content_id) */
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		if (!TRIGGER_FIRED_BEFORE(td->tg_event))
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("sharecount_trigger() must fire BEFORE TRUNCATE")));
		if (trig->tgnargs != 2)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("sharecount_trigger() on TRUNCATE needs 2 arguments, got %d", trig->tgnargs),
					 errhint("Attach it with sharecount_track().")));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		enqueue_counts(td->tg_relation, args[0], args[1], false);
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	if (trig->tgnargs != NARGS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sharecount_trigger() needs %d arguments, got %d", NARGS, trig->tgnargs),
				 errhint("Attach it with sharecount_track().")));
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sharecount_trigger() must fire AFTER ... FOR EACH ROW or BEFORE TRUNCATE")));

	/* row events need no SPI: outbox_insert() writes the row directly */
	tc = trigger_columns(trig, td->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		row_job(td->tg_trigtuple, td->tg_relation->rd_att, tc, args, tblname, true);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		row_job(td->tg_trigtuple, td->tg_relation->rd_att, tc, args, tblname, false);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		TupleDesc	desc = td->tg_relation->rd_att;
		char	   *ot = column_text(td->tg_trigtuple, desc, tc, args, ARG_TYPE, tblname, true);
		char	   *oi = column_text(td->tg_trigtuple, desc, tc, args, ARG_CID, tblname, true);
		char	   *nt = column_text(td->tg_newtuple, desc, tc, args, ARG_TYPE, tblname, true);
		char	   *ni = column_text(td->tg_newtuple, desc, tc, args, ARG_CID, tblname, true);
		bool		same_type = (ot == NULL && nt == NULL) || (ot && nt && strcmp(ot, nt) == 0);
		bool		same_id = (oi == NULL && ni == NULL) || (oi && ni && strcmp(oi, ni) == 0);

		if (!same_type || !same_id)
		{
			row_job(td->tg_trigtuple, desc, tc, args, tblname, false);
			row_job(td->tg_newtuple, desc, tc, args, tblname, true);
		}
	}
	return PointerGetDatum(NULL);
}

/*
 * sharecount._enqueue_counts(tbl, content_type_column, content_id_column,
 * operation): the backfill of sharecount_track() (operation 'increment').
 */
Datum
sharecount_enqueue_counts(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Name		type_col = PG_GETARG_NAME(1);
	Name		cid_col = PG_GETARG_NAME(2);
	char	   *op = text_to_cstring(PG_GETARG_TEXT_PP(3));
	bool		increment;
	Relation	rel;
	int64		jobs;

	if (strcmp(op, "increment") == 0)
		increment = true;
	else if (strcmp(op, "decrement") == 0)
		increment = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("operation must be \"increment\" or \"decrement\"")));

	rel = table_open(relid, AccessShareLock);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	jobs = enqueue_counts(rel, NameStr(*type_col), NameStr(*cid_col), increment);
	SPI_finish();
	table_close(rel, NoLock);
	PG_RETURN_INT64(jobs);
}
