/*
 * trigger.c: the trigger attached to tracked tables, and the COUNT(*) job
 * writer shared by TRUNCATE, the backfill of sharecount_track() and the
 * take-back of sharecount_untrack().
 *
 * Every job is one row in sharecount.outbox, written by outbox_insert()
 * (outbox.c) in the compact form described there; its message body is
 * rendered when a publisher claims it.
 *
 * Rules:
 * - Only the two triggers sharecount_track() attaches (sharecount_row and
 *   sharecount_truncate) on a table in the registry write jobs; any other use
 *   of sharecount_trigger() raises an error and writes nothing
 *   (registered_trigger).  The column mapping comes from the registry
 *   (registry.c), never from the trigger's arguments.
 * - Row events are AFTER ROW (a BEFORE trigger would see rows that are then
 *   skipped, e.g. by ON CONFLICT DO NOTHING); TRUNCATE is BEFORE STATEMENT, run
 *   once TRUNCATE holds its ACCESS EXCLUSIVE lock; its COUNT(*) (counts.c)
 *   reads with a fresh snapshot, so it is exact under any isolation level.
 * - Outbox rows are written directly (outbox_insert: heap and index inserts,
 *   no SPI, no privilege check), so the app's role needs no grant on schema
 *   sharecount and a row event costs no executor start-up.  The COUNT(*)
 *   query of TRUNCATE runs through SPI as the owner of the tracked table (a
 *   role may TRUNCATE without SELECT).
 * - A row whose key cannot be counted (NULL, empty or oversized content type
 *   or id) writes no job and never fails the application's statement; the
 *   oversized ones raise a WARNING.  verify/recount skip the same rows.
 * - A row's values reach the outbox as text values (OutboxTextJob, outbox.h),
 *   never as C strings: text and varchar are the row's own datums, uuid is
 *   formatted straight into a text value, any other type goes through its
 *   output function.
 * - Memory: column values are palloc'd in the trigger's (per-tuple) context;
 *   the registration cache (registry.c) lives in TopMemoryContext.
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
#include "outbox.h"
#include "track.h"

PG_FUNCTION_INFO_V1(sharecount_trigger);
PG_FUNCTION_INFO_V1(sharecount_enqueue_counts);

/*
 * Whether a content key can be counted.  Oversized or empty keys get a
 * WARNING (the row is kept, it is just not counted); NULL keys are silent.
 */
static bool
key_is_countable(const text *ctype, const text *cid, const char *tblname)
{
	if (ctype == NULL || cid == NULL)
		return false;
	if (!outbox_key_fits(VARSIZE_ANY_EXHDR(ctype), VARSIZE_ANY_EXHDR(cid)))
	{
		ereport(
			WARNING,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg(
				 "sharecount: row of \"%s\" not counted: content type must be 1 to %d bytes and content id 1 to %d bytes",
				 tblname, SC_CONTENT_TYPE_MAX, SC_CONTENT_ID_MAX)));
		return false;
	}
	return true;
}

/* Bytes of a formatted UUID (8-4-4-4-12 hex digits), no NUL. */
#define UUID_TEXT_LEN 36

/*
 * The uuid u as a text value, formatted as uuid_out() does (sc_uuid_format).
 */
static text *
uuid_text(const pg_uuid_t *u)
{
	/* room for sc_uuid_format()'s NUL, which is not part of the value */
	text *t = palloc(VARHDRSZ + UUID_TEXT_LEN + 1);

	sc_uuid_format(VARDATA(t), u->data);
	SET_VARSIZE(t, VARHDRSZ + UUID_TEXT_LEN);
	return t;
}

/*
 * Mapped column c of the row in slot as a text value (OutboxTextJob's form:
 * not compressed, not external), or NULL (SQL NULL or not mapped).  A text or
 * varchar value is the row's own datum, detoasted only if it must be; no C
 * string is made.  The slot is deformed once, up to the last mapped column
 * (slot_getsomeattrs): a heap_getattr() per column walked the row from its
 * first attribute each time (nocachegetattr, ~1,500 instructions per INSERT
 * of share_links, bench/p1_callgrind.sh).
 */
static text *
column_value(TupleTableSlot *slot, const TrackedTable *tt, TrackedColumn c,
			 const char *tblname, bool required)
{
	const ColumnReader *cr = &tt->col[c];
	bool isnull;
	Datum d;

	if (cr->attno == -1 && required)
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of tracked table \"%s\" does not exist",
					tt->names[c], tblname),
			 errhint(
				 "Run ALTER EXTENSION sharecount UPDATE: from version 1.1 the registry follows renamed columns.")));
	if (cr->attno <= 0)
		return NULL;
	d = slot_getattr(slot, cr->attno, &isnull);
	if (isnull)
		return NULL;
	switch (cr->kind)
	{
		case COLUMN_TEXT:
			return (text *) pg_detoast_datum_packed(
				(struct varlena *) DatumGetPointer(d));
		case COLUMN_UUID:
			return uuid_text(DatumGetUUIDP(d));
		case COLUMN_OTHER:
			break;
	}
	return cstring_to_text(
		OutputFunctionCall(unconstify(FmgrInfo *, &cr->out), d));
}

/*
 * Write share_created (created = true) or share_deleted for one row, with
 * timestamp ts.  Both carry the row's channel and campaign, so that a delete
 * takes the share out of its breakdowns (docs/extension.md, "Channels and
 * trends").
 */
static void
row_job(TupleTableSlot *slot, const TrackedTable *tt, const char *tblname,
		bool created, TimestampTz ts)
{
	OutboxTextJob job;

	slot_getsomeattrs(slot, tt->max_attno);
	job.content_type = column_value(slot, tt, TC_TYPE, tblname, true);
	job.content_id = column_value(slot, tt, TC_CID, tblname, true);
	if (!key_is_countable(job.content_type, job.content_id, tblname))
		return;
	job.kind = created ? SC_JOB_CREATED : SC_JOB_DELETED;
	job.ts = ts;
	job.amount = 0;
	job.share_id = column_value(slot, tt, TC_ID, tblname, true);
	job.user_id = column_value(slot, tt, TC_USER, tblname, false);
	job.channel_id = column_value(slot, tt, TC_CHANNEL, tblname, false);
	job.campaign_id = column_value(slot, tt, TC_CAMPAIGN, tblname, false);
	outbox_insert_text(&job);
}

/* Whether column c holds the same text (or NULL) in both versions of a row. */
static bool
same_text(TriggerData *td, const TrackedTable *tt, TrackedColumn c,
		  const char *tblname)
{
	bool required = (c == TC_TYPE || c == TC_CID);
	text *o = column_value(td->tg_trigslot, tt, c, tblname, required);
	text *n = column_value(td->tg_newslot, tt, c, tblname, required);

	if (o == NULL || n == NULL)
		return o == NULL && n == NULL;
	return VARSIZE_ANY_EXHDR(o) == VARSIZE_ANY_EXHDR(n) &&
		memcmp(VARDATA_ANY(o), VARDATA_ANY(n), VARSIZE_ANY_EXHDR(o)) == 0;
}

/* What count_job needs: the direction and the number of jobs written. */
typedef struct CountJobs
{
	bool increment;
	int64 jobs;
} CountJobs;

/*
 * sc_count_keys callback: share_count_update jobs carrying n for one key,
 * channel and campaign, split so that no job's amount exceeds SC_AMOUNT_MAX.
 */
static void
count_job(const char *ctype, const char *cid, const char *channel,
		  const char *campaign, int64 n, void *arg)
{
	CountJobs *cj = (CountJobs *) arg;

	while (n > 0)
	{
		int64 amount = Min(n, SC_AMOUNT_MAX);
		OutboxJob job;

		memset(&job, 0, sizeof(job));
		job.kind = SC_JOB_COUNT_UPDATE;
		job.ts = GetCurrentTimestamp();
		job.amount = cj->increment ? amount : -amount;
		job.content_type = ctype;
		job.content_id = cid;
		job.channel_id = channel;
		job.campaign_id = campaign;
		outbox_insert(&job);
		n -= amount;
		cj->jobs++;
	}
}

/*
 * Write share_count_update jobs carrying COUNT(*) per countable key, channel
 * and campaign of relid (increments or decrements), counted by sc_count_keys
 * (counts.c: as the table's owner, ONLY the table, with a fresh snapshot).
 * Caller is connected to SPI and holds a lock that keeps writers out.
 * Returns the number of jobs.
 */
static int64
enqueue_counts(Oid relid, const ScCountColumns *cols, bool increment)
{
	CountJobs cj = {increment, 0};
	int64 skipped;

	skipped = sc_count_keys(relid, cols, NULL, NULL, count_job, &cj);
	if (skipped > 0)
		ereport(
			WARNING,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg(
				 "sharecount: " INT64_FORMAT
				 " rows of \"%s\" not counted: content type must be 1 to %d bytes and content id 1 to %d bytes",
				 skipped, get_rel_name(relid), SC_CONTENT_TYPE_MAX,
				 SC_CONTENT_ID_MAX)));
	return cj.jobs;
}

/*
 * The table's registration, or an error if the trigger is not one that
 * sharecount_track() attached to a tracked table (a trigger attached by hand,
 * e.g. to a TEMP table, could otherwise forge or remove counts).
 */
static TrackedTable *
registered_trigger(TriggerData *td, const char *expected_name)
{
	TrackedTable *tt = sc_tracked_get(td->tg_relation);

	if (tt == NULL)
		ereport(
			ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("table \"%s\" is not tracked by sharecount",
					RelationGetRelationName(td->tg_relation)),
			 errhint(
				 "Only sharecount_track() attaches sharecount_trigger(); drop trigger \"%s\".",
				 td->tg_trigger->tgname)));
	if (strcmp(td->tg_trigger->tgname, expected_name) != 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg(
				 "trigger \"%s\" on \"%s\" was not attached by sharecount_track()",
				 td->tg_trigger->tgname,
				 RelationGetRelationName(td->tg_relation)),
			 errhint("Drop it; sharecount_track() attaches \"%s\" and \"%s\".",
					 SC_ROW_TRIGGER, SC_TRUNCATE_TRIGGER)));
	return tt;
}

/* TRUNCATE: decrements of COUNT(*) per key, under TRUNCATE's exclusive lock. */
static void
truncate_jobs(TriggerData *td)
{
	TrackedTable *tt;
	char names[4][NAMEDATALEN];
	ScCountColumns cols = {names[0], names[1], names[2], names[3]};

	if (!TRIGGER_FIRED_BEFORE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sharecount_trigger() must fire BEFORE TRUNCATE")));
	tt = registered_trigger(td, SC_TRUNCATE_TRIGGER);
	if (tt->col[TC_TYPE].attno <= 0 || tt->col[TC_CID].attno <= 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg(
				 "content type or id column of tracked table \"%s\" does not exist",
				 RelationGetRelationName(td->tg_relation)),
			 errhint(
				 "Run ALTER EXTENSION sharecount UPDATE: from version 1.1 the registry follows renamed columns.")));
	/* copied: the SPI work below may invalidate the cache entry */
	strlcpy(names[0], tt->names[TC_TYPE], NAMEDATALEN);
	strlcpy(names[1], tt->names[TC_CID], NAMEDATALEN);
	strlcpy(names[2],
			tt->col[TC_CHANNEL].attno > 0 ? tt->names[TC_CHANNEL] : "",
			NAMEDATALEN);
	strlcpy(names[3],
			tt->col[TC_CAMPAIGN].attno > 0 ? tt->names[TC_CAMPAIGN] : "",
			NAMEDATALEN);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	enqueue_counts(RelationGetRelid(td->tg_relation), &cols, false);
	SPI_finish();
}

/*
 * The trigger.  INSERT -> share_created, DELETE -> share_deleted, UPDATE of
 * the key, channel or campaign (compared here as the text the jobs carry) ->
 * both, any other
 * UPDATE -> nothing, TRUNCATE -> decrements of COUNT(*) per key.  The column
 * mapping comes from the registry (registry.c); the trigger's arguments, which
 * 1.0 used, are ignored.
 */
Datum
sharecount_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *tblname;
	TrackedTable *tt;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("sharecount_trigger() must be called as a trigger")));
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		truncate_jobs(td);
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(
			ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg(
				 "sharecount_trigger() must fire AFTER ... FOR EACH ROW or BEFORE TRUNCATE")));

	/* row events need no SPI: outbox_insert() writes the row directly */
	tt = registered_trigger(td, SC_ROW_TRIGGER);
	tblname = RelationGetRelationName(td->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		row_job(td->tg_trigslot, tt, tblname, true, GetCurrentTimestamp());
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		row_job(td->tg_trigslot, tt, tblname, false, GetCurrentTimestamp());
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
			 !(same_text(td, tt, TC_TYPE, tblname) &&
			   same_text(td, tt, TC_CID, tblname) &&
			   same_text(td, tt, TC_CHANNEL, tblname) &&
			   same_text(td, tt, TC_CAMPAIGN, tblname)))
	{
		/* a new key, channel or campaign moves the share (one timestamp) */
		TimestampTz ts = GetCurrentTimestamp();

		row_job(td->tg_trigslot, tt, tblname, false, ts);
		row_job(td->tg_newslot, tt, tblname, true, ts);
	}
	return PointerGetDatum(NULL);
}

/*
 * sharecount._enqueue_counts(tbl, content_type_column, content_id_column,
 * operation[, channel_id_column, campaign_id_column]): the backfill of sharecount_track() (operation 'increment') and
 * the take-back of sharecount_untrack() ('decrement'); the caller holds a lock
 * on tbl that keeps writers out.
 */
Datum
sharecount_enqueue_counts(PG_FUNCTION_ARGS)
{
	Oid relid = PG_GETARG_OID(0);
	ScCountColumns cols;
	char *op;
	bool increment;
	Relation rel;
	int64 jobs;
	int i;

	for (i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			PG_RETURN_NULL(); /* strict in its first four arguments */
	cols.ctype = NameStr(*PG_GETARG_NAME(1));
	cols.cid = NameStr(*PG_GETARG_NAME(2));
	op = text_to_cstring(PG_GETARG_TEXT_PP(3));
	/* channel and campaign columns: arguments 5 and 6 (NULL = unmapped) */
	cols.channel = PG_NARGS() > 4 && !PG_ARGISNULL(4) ?
		NameStr(*PG_GETARG_NAME(4)) :
		NULL;
	cols.campaign = PG_NARGS() > 5 && !PG_ARGISNULL(5) ?
		NameStr(*PG_GETARG_NAME(5)) :
		NULL;

	if (strcmp(op, "increment") == 0)
		increment = true;
	else if (strcmp(op, "decrement") == 0)
		increment = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("operation must be \"increment\" or \"decrement\""),
				 errhint("Pass 'increment' or 'decrement'.")));

	rel = table_open(relid, AccessShareLock);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	jobs = enqueue_counts(relid, &cols, increment);
	SPI_finish();
	table_close(rel, NoLock);
	PG_RETURN_INT64(jobs);
}
