/*
 * trigger.c: the trigger attached to tracked tables, and the COUNT(*) job
 * writer shared by TRUNCATE and the backfill of sharecount_track().
 *
 * Every job is one row in sharecount.outbox whose body is the exact message
 * of SPEC section 5: {"pattern":"<job>","data":{...}} with the fields in the
 * order of SPEC section 4, no spaces, optional fields omitted when NULL.
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
 * - The OIDs of the outbox and its sequence are cached per backend and dropped
 *   on relcache invalidation (outbox_lookup).
 * - A row whose key cannot be counted (NULL, empty or oversized content type
 *   or id) writes no job and never fails the application's statement; the
 *   oversized ones raise a WARNING.  verify/recount skip the same rows.
 * - Memory: job bodies are palloc'd in the trigger's (per-tuple) context.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "sharecount.h"

PG_FUNCTION_INFO_V1(sharecount_trigger);
PG_FUNCTION_INFO_V1(sharecount_enqueue_counts);

/* Trigger arguments, in order; "" means the table has no such column. */
enum
{
	ARG_ID, ARG_TYPE, ARG_CID, ARG_USER, ARG_CHANNEL, ARG_CAMPAIGN, NARGS
};

/*
 * OIDs of sharecount.outbox and its id sequence, looked up by name once and
 * kept until a relcache invalidation names either of them (or all relations):
 * dropping or re-creating the extension, also in the same session or in a
 * transaction that rolls back, sends one.  Two name lookups per row were about
 * 2,000 instructions.
 */
static Oid	outbox_relid = InvalidOid;
static Oid	outbox_seqid = InvalidOid;
static bool outbox_callback_registered = false;

static void
outbox_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == outbox_relid || relid == outbox_seqid)
	{
		outbox_relid = InvalidOid;
		outbox_seqid = InvalidOid;
	}
}

static void
outbox_lookup(Oid *relid, Oid *seqid)
{
	if (!outbox_callback_registered)
	{
		CacheRegisterRelcacheCallback(outbox_relcache_callback, (Datum) 0);
		outbox_callback_registered = true;
	}
	if (!OidIsValid(outbox_relid) || !OidIsValid(outbox_seqid))
	{
		Oid			r = sc_state_relid("outbox");
		Oid			q = sc_state_relid("outbox_id_seq");

		outbox_relid = r;
		outbox_seqid = q;
	}
	/* copies: opening the relation may process invalidations and reset them */
	*relid = outbox_relid;
	*seqid = outbox_seqid;
}

/*
 * Insert one job into sharecount.outbox.
 *
 * This is the per-row cost of tracking, so it does not go through SPI: an
 * SPI_execute_plan of a cached INSERT plan still builds and tears down an
 * executor (ExecutorStart, ExecInitModifyTable, ExecOpenIndices, snapshot
 * pushes) for every row, which measured at about 40,000 instructions per row
 * under callgrind, more than the rest of the trigger together.  Instead the row
 * is formed here and written with simple_heap_insert() and index_insert() on
 * each index of the outbox, the way CatalogTupleInsert() writes catalog rows.
 * What the executor would add does not apply to this table: it has no
 * triggers, CHECK constraints, rules, row security or partitions (the
 * extension owns it; anything of that kind added by hand is not honoured), and
 * every column gets a value here, so column defaults are not evaluated: id
 * takes nextval() of its own sequence and created_at is now().  No privilege is
 * checked (as before, when SPI ran as the outbox's owner), so the application's
 * role needs none on schema sharecount.
 *
 * Relation and sequence OIDs come from outbox_lookup().
 */
static void
outbox_insert(const char *job_name, const char *job_id, const char *body)
{
	Oid			relid,
				seqid;
	Relation	rel;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tup;
	List	   *indexoids;
	ListCell   *lc;
	TupleTableSlot *slot = NULL;
	int			i;

	outbox_lookup(&relid, &seqid);
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	values = palloc(desc->natts * sizeof(Datum));
	nulls = palloc(desc->natts * sizeof(bool));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);

		nulls[i] = false;
		if (att->attisdropped)
			nulls[i] = true;
		else if (strcmp(name, "id") == 0)
			values[i] = Int64GetDatum(nextval_internal(seqid, false));
		else if (strcmp(name, "job_name") == 0)
			values[i] = CStringGetTextDatum(job_name);
		else if (strcmp(name, "job_id") == 0)
			values[i] = CStringGetTextDatum(job_id);
		else if (strcmp(name, "body") == 0)
			values[i] = CStringGetTextDatum(body);
		else if (strcmp(name, "created_at") == 0)
			values[i] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		else
			elog(ERROR, "unexpected column \"%s\" in sharecount.outbox", name);
	}
	tup = heap_form_tuple(desc, values, nulls);
	simple_heap_insert(rel, tup);

	indexoids = RelationGetIndexList(rel);
	foreach(lc, indexoids)
	{
		Relation	idx = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *ii = BuildIndexInfo(idx);
		Datum		ivalues[INDEX_MAX_KEYS];
		bool		inulls[INDEX_MAX_KEYS];

		/* an index still being built (CREATE INDEX CONCURRENTLY) is skipped, as by the executor */
		if (!ii->ii_ReadyForInserts)
		{
			index_close(idx, NoLock);
			continue;
		}
		if (ii->ii_Expressions != NIL || ii->ii_Predicate != NIL || !idx->rd_index->indimmediate)
			elog(ERROR, "unexpected index \"%s\" on sharecount.outbox", RelationGetRelationName(idx));
		if (slot == NULL)
		{
			slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
			ExecStoreHeapTuple(tup, slot, false);
		}
		FormIndexDatum(ii, slot, NULL, ivalues, inulls);
		index_insert(idx, ivalues, inulls, &tup->t_self, rel,
					 idx->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, ii);
		index_close(idx, NoLock);
	}
	if (slot != NULL)
		ExecDropSingleTupleTableSlot(slot);
	list_free(indexoids);
	heap_freetuple(tup);
	table_close(rel, NoLock);
	sc_wakeup_note_outbox_write();
}

/* ,"name":"value" (or null) */
static void
add_field(StringInfo buf, const char *name, const char *value)
{
	appendStringInfoString(buf, ",\"");
	appendStringInfoString(buf, name);
	appendStringInfoString(buf, "\":");
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

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

/* Value of the named column as text, or NULL (SQL NULL or no such column). */
static char *
column_text(HeapTuple tuple, TupleDesc desc, const char *colname, const char *tblname,
			bool required)
{
	int			attno;

	if (colname[0] == '\0')
		return NULL;
	attno = SPI_fnumber(desc, colname);
	if (attno <= 0)
	{
		if (!required)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of tracked table \"%s\" does not exist", colname, tblname),
				 errhint("Call sharecount_untrack() and sharecount_track() again after renaming a tracked column.")));
	}
	/* text and varchar output is the datum's text: skip the output function lookup */
	if (TupleDescAttr(desc, attno - 1)->atttypid == TEXTOID ||
		TupleDescAttr(desc, attno - 1)->atttypid == VARCHAROID)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, attno, desc, &isnull);

		return isnull ? NULL : TextDatumGetCString(d);
	}
	return SPI_getvalue(tuple, desc, attno);
}

/*
 * Write share_created (created = true) or share_deleted for one row.
 */
static void
row_job(HeapTuple tuple, TupleDesc desc, char **args, const char *tblname, bool created)
{
	char	   *ctype = column_text(tuple, desc, args[ARG_TYPE], tblname, true);
	char	   *cid = column_text(tuple, desc, args[ARG_CID], tblname, true);
	char		job_id[40];
	char		ts[32];
	const char *job_name = created ? "share_created" : "share_deleted";
	StringInfoData buf;

	if (!key_is_countable(ctype, cid, tblname))
		return;

	sc_uuid_v4(job_id);
	sc_format_timestamp(ts, GetCurrentTimestamp());

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"pattern\":\"");
	appendStringInfoString(&buf, job_name);
	appendStringInfoString(&buf, "\",\"data\":{\"jobId\":\"");
	appendStringInfoString(&buf, job_id);
	appendStringInfoChar(&buf, '"');
	add_field(&buf, "shareId", column_text(tuple, desc, args[ARG_ID], tblname, true));
	add_field(&buf, "contentType", ctype);
	add_field(&buf, "contentId", cid);
	add_field(&buf, "userId", column_text(tuple, desc, args[ARG_USER], tblname, false));
	if (created)
	{
		char	   *channel = column_text(tuple, desc, args[ARG_CHANNEL], tblname, false);
		char	   *campaign = column_text(tuple, desc, args[ARG_CAMPAIGN], tblname, false);

		if (channel != NULL)
			add_field(&buf, "channelId", channel);
		if (campaign != NULL)
			add_field(&buf, "campaignId", campaign);
	}
	appendStringInfoString(&buf, ",\"timestamp\":\"");
	appendStringInfoString(&buf, ts);
	appendStringInfoString(&buf, "\"}}");

	outbox_insert(job_name, job_id, buf.data);
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
				char		job_id[40];
				char		ts[32];
				StringInfoData buf;

				sc_uuid_v4(job_id);
				sc_format_timestamp(ts, GetCurrentTimestamp());
				initStringInfo(&buf);
				appendStringInfo(&buf, "{\"pattern\":\"share_count_update\",\"data\":{\"jobId\":\"%s\"", job_id);
				add_field(&buf, "contentType", ctype);
				add_field(&buf, "contentId", cid);
				appendStringInfo(&buf, ",\"operation\":\"%s\",\"amount\":" INT64_FORMAT ",\"timestamp\":\"%s\"}}",
								 increment ? "increment" : "decrement", amount, ts);
				outbox_insert("share_count_update", job_id, buf.data);
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
 * the key -> both (the UPDATE trigger's WHEN clause already filters the other
 * UPDATEs; the key is compared again here as rendered text), TRUNCATE ->
 * decrements of COUNT(*) per key.
 */
Datum
sharecount_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Trigger    *trig;
	char	  **args;
	const char *tblname;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sharecount_trigger() must be called as a trigger")));
	trig = td->tg_trigger;
	if (trig->tgnargs != NARGS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sharecount_trigger() needs %d arguments, got %d", NARGS, trig->tgnargs),
				 errhint("Attach it with sharecount_track().")));
	args = trig->tgargs;
	tblname = RelationGetRelationName(td->tg_relation);

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		if (!TRIGGER_FIRED_BEFORE(td->tg_event))
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("sharecount_trigger() must fire BEFORE TRUNCATE")));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		enqueue_counts(td->tg_relation, args[ARG_TYPE], args[ARG_CID], false);
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sharecount_trigger() must fire AFTER ... FOR EACH ROW or BEFORE TRUNCATE")));

	/* row events need no SPI: outbox_insert() writes the row directly */
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		row_job(td->tg_trigtuple, td->tg_relation->rd_att, args, tblname, true);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		row_job(td->tg_trigtuple, td->tg_relation->rd_att, args, tblname, false);
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		TupleDesc	desc = td->tg_relation->rd_att;
		char	   *ot = column_text(td->tg_trigtuple, desc, args[ARG_TYPE], tblname, true);
		char	   *oi = column_text(td->tg_trigtuple, desc, args[ARG_CID], tblname, true);
		char	   *nt = column_text(td->tg_newtuple, desc, args[ARG_TYPE], tblname, true);
		char	   *ni = column_text(td->tg_newtuple, desc, args[ARG_CID], tblname, true);
		bool		same_type = (ot == NULL && nt == NULL) || (ot && nt && strcmp(ot, nt) == 0);
		bool		same_id = (oi == NULL && ni == NULL) || (oi && ni && strcmp(oi, ni) == 0);

		if (!same_type || !same_id)
		{
			row_job(td->tg_trigtuple, desc, args, tblname, false);
			row_job(td->tg_newtuple, desc, args, tblname, true);
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
