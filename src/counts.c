/*
 * counts.c: COUNT(*) of a tracked table's countable rows per key (and per
 * channel and campaign, for breakdowns), the one query behind TRUNCATE's
 * decrements, the backfill of sharecount_track(), the decrements of
 * sharecount_untrack() and sharecount_verify()/recount()
 * (sharecount._actual_counts, sharecount._actual_breakdown).
 *
 * Rules (docs/extension.md, "Tracking a table" and "Maintenance"):
 * - The query runs as the tracked table's owner in a restricted security
 *   context (sc_begin_as_owner): the table's column types, casts and output
 *   functions are its owner's code, never run with the extension owner's or
 *   the caller's rights.  Every name in it is schema-qualified, since it runs
 *   under the caller's search_path.
 * - It reads ONLY the table itself, not its inheritance children: the row
 *   trigger never sees a child's rows, so they are never counted.
 * - It reads with a fresh snapshot taken when it starts (after the caller's
 *   lock), not the transaction's: under REPEATABLE READ or SERIALIZABLE a row
 *   committed while the caller waited for its lock is still counted.
 * - Keys are rendered with CAST(... AS text) COLLATE "C", grouped byte-wise;
 *   rows with a NULL, empty or oversized key are skipped (the trigger writes
 *   no job for them either) and their number returned.  Channel and campaign
 *   are rendered by their type's output function (as the trigger does) and a
 *   value too long for a job field is NULL (as outbox_insert stores it).
 * - Memory: keys are fetched SC_COUNT_FETCH at a time and each batch's memory
 *   released before the next, so millions of keys need not fit in memory.
 *   Caller is connected to SPI.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "sharecount.h"
#include "track.h"
#include "outbox.h"

PG_FUNCTION_INFO_V1(sharecount_actual_counts);
PG_FUNCTION_INFO_V1(sharecount_actual_breakdown);

/*
 * A mapped channel or campaign column as the text its job field carries (the
 * type's output function, as the trigger renders it), or NULL when unmapped.
 */
static void
append_value_column(StringInfo q, const char *col)
{
	if (col == NULL || col[0] == '\0')
		appendStringInfoString(q, ", NULL::pg_catalog.text");
	else
		appendStringInfo(
			q,
			", CASE WHEN %s IS NULL THEN NULL ELSE pg_catalog.format('%%s', %s) END "
			"COLLATE pg_catalog.\"C\"",
			quote_identifier(col), quote_identifier(col));
}

/* The count query of relid; with a key filter when filtered. */
static char *
count_query(Oid relid, const ScCountColumns *cols, bool filtered)
{
	char *nsp = get_namespace_name(get_rel_namespace(relid));
	char *rel = get_rel_name(relid);
	const char *ct = quote_identifier(cols->ctype);
	const char *ci = quote_identifier(cols->cid);
	StringInfoData q;

	if (nsp == NULL || rel == NULL)
		elog(ERROR, "cache lookup failed for relation %u", relid);
	initStringInfo(&q);
	appendStringInfo(
		&q,
		"SELECT CAST(%s AS pg_catalog.text) COLLATE pg_catalog.\"C\", "
		"CAST(%s AS pg_catalog.text) COLLATE pg_catalog.\"C\"",
		ct, ci);
	append_value_column(&q, cols->channel);
	append_value_column(&q, cols->campaign);
	appendStringInfo(&q,
					 ", pg_catalog.count(*) FROM ONLY %s WHERE %s IS NOT NULL "
					 "AND %s IS NOT NULL",
					 quote_qualified_identifier(nsp, rel), ct, ci);
	if (filtered)
		appendStringInfo(
			&q,
			" AND CAST(%s AS pg_catalog.text) COLLATE pg_catalog.\"C\" OPERATOR(pg_catalog.=) $1"
			" AND CAST(%s AS pg_catalog.text) COLLATE pg_catalog.\"C\" OPERATOR(pg_catalog.=) $2",
			ct, ci);
	appendStringInfoString(&q, " GROUP BY 1, 2, 3, 4");
	return q.data;
}

/* Column c (3 or 4) of a count row as a job field would carry it, or NULL. */
static char *
value_of(HeapTuple tup, TupleDesc desc, int c)
{
	char *v = SPI_getvalue(tup, desc, c);

	return v != NULL && outbox_field_fits(v, strlen(v)) ? v : NULL;
}

/*
 * Call fn for every countable key of relid with its number of rows; returns
 * the number of rows skipped as uncountable.  only_ctype/only_cid (both or
 * neither) restrict the count to one key.
 */
int64
sc_count_keys(Oid relid, const ScCountColumns *cols, const char *only_ctype,
			  const char *only_cid, sc_key_count_fn fn, void *arg)
{
	bool filtered = (only_ctype != NULL && only_cid != NULL);
	Oid argtypes[2] = {TEXTOID, TEXTOID};
	Datum args[2];
	SPIPlanPtr plan;
	Portal portal;
	MemoryContext batch_cxt;
	int64 skipped = 0;
	Oid save_userid;
	int save_sec;

	if (filtered)
	{
		args[0] = CStringGetTextDatum(only_ctype);
		args[1] = CStringGetTextDatum(only_cid);
	}
	batch_cxt = AllocSetContextCreate(
		CurrentMemoryContext, "sharecount key counts", ALLOCSET_DEFAULT_SIZES);

	sc_begin_as_owner(relid, &save_userid, &save_sec);
	plan = SPI_prepare(count_query(relid, cols, filtered), filtered ? 2 : 0,
					   argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s",
			 SPI_result_code_string(SPI_result));
	/* a fresh snapshot, taken after the caller's lock, seeing our own writes */
	CommandCounterIncrement();
	PushActiveSnapshot(GetLatestSnapshot());
	portal = SPI_cursor_open(NULL, plan, filtered ? args : NULL, NULL, true);
	PopActiveSnapshot();
	sc_end_as_owner(save_userid, save_sec);

	for (;;)
	{
		SPITupleTable *tt;
		uint64 nkeys, i;
		MemoryContext old_cxt;

		sc_begin_as_owner(relid, &save_userid, &save_sec);
		SPI_cursor_fetch(portal, true, SC_COUNT_FETCH);
		sc_end_as_owner(save_userid, save_sec);
		tt = SPI_tuptable;
		nkeys = SPI_processed;
		if (nkeys == 0)
			break;

		old_cxt = MemoryContextSwitchTo(batch_cxt);
		for (i = 0; i < nkeys; i++)
		{
			char *ctype = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
			char *cid = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
			bool isnull;
			int64 n = DatumGetInt64(
				SPI_getbinval(tt->vals[i], tt->tupdesc, 5, &isnull));

			if (strlen(ctype) < 1 || strlen(ctype) > SC_CONTENT_TYPE_MAX ||
				strlen(cid) < 1 || strlen(cid) > SC_CONTENT_ID_MAX)
				skipped += n;
			else
				fn(ctype, cid, value_of(tt->vals[i], tt->tupdesc, 3),
				   value_of(tt->vals[i], tt->tupdesc, 4), n, arg);
			CHECK_FOR_INTERRUPTS();
		}
		MemoryContextSwitchTo(old_cxt);
		MemoryContextReset(batch_cxt);
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	SPI_freeplan(plan);
	MemoryContextDelete(batch_cxt);
	return skipped;
}

/* What put_count writes to: the result, and whether it has value columns. */
typedef struct CountSink
{
	ReturnSetInfo *rsinfo;
	bool breakdown;
} CountSink;

/* sc_count_keys callback of the _actual_* functions: one result row. */
static void
put_count(const char *ctype, const char *cid, const char *channel,
		  const char *campaign, int64 n, void *arg)
{
	CountSink *sink = (CountSink *) arg;
	Datum values[5];
	bool nulls[5] = {false, false, false, false, false};
	int k = 0;

	values[k++] = CStringGetTextDatum(ctype);
	values[k++] = CStringGetTextDatum(cid);
	if (sink->breakdown)
	{
		nulls[k] = channel == NULL;
		values[k++] = channel ? CStringGetTextDatum(channel) : (Datum) 0;
		nulls[k] = campaign == NULL;
		values[k++] = campaign ? CStringGetTextDatum(campaign) : (Datum) 0;
	}
	values[k] = Int64GetDatum(n);
	tuplestore_putvalues(sink->rsinfo->setResult, sink->rsinfo->setDesc,
						 values, nulls);
}

/*
 * COUNT(*) of countable rows per key (and, for breakdown, channel and
 * campaign) and tracked table (a key may appear once per table), each table
 * counted as its owner.  Both arguments NULL: every key; else only that key.
 * The registry is read as the caller (verify/recount are SECURITY DEFINER).
 */
static Datum
actual_counts(FunctionCallInfo fcinfo, bool breakdown)
{
	CountSink sink = {(ReturnSetInfo *) fcinfo->resultinfo, breakdown};
	char *only_ctype =
		PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char *only_cid =
		PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	SPITupleTable *reg;
	uint64 ntables, i;

	if ((only_ctype == NULL) != (only_cid == NULL))
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg(
				 "content_type and content_id must both be given or both be NULL"),
			 errhint("Pass NULL, NULL for every key.")));
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(
			"SELECT t.tbl::pg_catalog.oid, t.content_type_column::pg_catalog.text, "
			"t.content_id_column::pg_catalog.text, t.channel_id_column::pg_catalog.text, "
			"t.campaign_id_column::pg_catalog.text FROM sharecount.tracked t "
			"JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tbl "
			"ORDER BY 1",
			true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading sharecount.tracked failed");
	ntables = SPI_processed;
	reg =
		SPI_tuptable; /* kept: the count queries below replace SPI_tuptable */
	for (i = 0; i < ntables; i++)
	{
		bool isnull;
		Oid relid = DatumGetObjectId(
			SPI_getbinval(reg->vals[i], reg->tupdesc, 1, &isnull));
		ScCountColumns cols;

		cols.ctype = SPI_getvalue(reg->vals[i], reg->tupdesc, 2);
		cols.cid = SPI_getvalue(reg->vals[i], reg->tupdesc, 3);
		cols.channel =
			breakdown ? SPI_getvalue(reg->vals[i], reg->tupdesc, 4) : NULL;
		cols.campaign =
			breakdown ? SPI_getvalue(reg->vals[i], reg->tupdesc, 5) : NULL;
		sc_count_keys(relid, &cols, only_ctype, only_cid, put_count, &sink);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * sharecount._actual_counts(content_type text, content_id text) RETURNS
 * TABLE (content_type text, content_id text, n bigint).
 */
Datum
sharecount_actual_counts(PG_FUNCTION_ARGS)
{
	return actual_counts(fcinfo, false);
}

/*
 * sharecount._actual_breakdown(content_type text, content_id text) RETURNS
 * TABLE (content_type text, content_id text, channel text, campaign text,
 * n bigint): channel/campaign as the jobs carry them (NULL when NULL,
 * unmapped or too long for a job field).
 */
Datum
sharecount_actual_breakdown(PG_FUNCTION_ARGS)
{
	return actual_counts(fcinfo, true);
}
