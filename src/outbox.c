/*
 * outbox.c: the outbox row, written and read.
 *
 * A job is stored in sharecount.outbox as columns (kind, jobId as uuid,
 * timestamp, key, user, channel, campaign, amount), not as its JSON: the row
 * is written by every tracked INSERT/DELETE in the application's transaction,
 * where each byte is paid again in WAL and each instruction in the
 * application's latency, while it is read once, by a publisher, off that path.
 * So outbox_insert() writes the compact row, and sharecount.job_body(row)
 * renders the exact message of SPEC section 5 when the job is claimed
 * ({"pattern":"<job>","data":{...}}, fields in the order of SPEC section 4, no
 * spaces, optional fields omitted when NULL; userId and shareId are null when
 * NULL).  docs/extension.md ("Performance") has the measurements.
 *
 * Rules:
 * - outbox_insert() writes the heap row and its index entries directly (no
 *   executor, no privilege check), see its comment for what that skips.
 * - Every rendered body is at most SC_JOB_BODY_MAX bytes (sharecount.h has the
 *   arithmetic; docs/extension.md, "Jobs").  outbox_insert() decides it: an
 *   optional field longer than SC_JOB_FIELD_MAX as JSON is stored as NULL with
 *   a WARNING, and a key outside the limits of docs/extension.md is refused
 *   (the trigger never passes one).  job_body() applies the same rule to rows
 *   it did not write (older releases, hand-made), so the bound holds for any
 *   row of the outbox.
 * - The OIDs of the outbox and its sequence, and the outbox's column numbers,
 *   are cached per backend and dropped on relcache invalidation
 *   (outbox_lookup), so DROP/CREATE EXTENSION in one session is safe.
 * - Memory: everything is palloc'd in the caller's (per-tuple or per-call)
 *   context.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_sequence.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

#include "sharecount.h"

PG_FUNCTION_INFO_V1(sharecount_job_name);
PG_FUNCTION_INFO_V1(sharecount_job_body);

static const char *job_name_of(char kind);

/* The columns of sharecount.outbox, by name (see the install script). */
enum
{
	COL_ID, COL_JOB, COL_JOB_ID, COL_CREATED_AT, COL_AMOUNT, COL_SHARE_ID,
	COL_CONTENT_TYPE, COL_CONTENT_ID, COL_USER_ID, COL_CHANNEL_ID, COL_CAMPAIGN_ID,
	NCOLS
};

static const char *const col_names[NCOLS] = {
	"id", "job", "job_id", "created_at", "amount", "share_id",
	"content_type", "content_id", "user_id", "channel_id", "campaign_id"
};

/*
 * OIDs of sharecount.outbox and its id sequence, looked up by name once and
 * kept until a relcache invalidation names either of them (or all relations):
 * dropping or re-creating the extension, also in the same session or in a
 * transaction that rolls back, sends one.  Two name lookups per row were about
 * 2,000 instructions.  col_attno maps our columns to the table's attribute
 * numbers, filled on the first insert after a lookup.
 */
static Oid	outbox_relid = InvalidOid;
static Oid	outbox_seqid = InvalidOid;
static bool outbox_callback_registered = false;
static bool col_map_valid = false;
static int	col_attno[NCOLS];

/*
 * The outbox ids this backend may still hand out, [id_next, id_end).  The
 * sequence steps by 64 (see the install script), so one nextval() reserves a
 * block of 64 ids: a nextval_internal() call per row was about 1,600
 * instructions (relation lock, hash lookup), most of the cost of an id.  The
 * block is the sequence's increment as nextval() saw it, and any change to the
 * sequence (ALTER SEQUENCE sends a pg_sequence invalidation, DROP a relcache
 * one) drops the block, so a new increment or a re-created sequence is asked
 * again before the next id.
 */
static int64 id_next = 0;
static int64 id_end = 0;

static void
outbox_sequence_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	id_next = id_end = 0;
}

/* The next outbox id; call with the outbox open (invalidations processed). */
static int64
outbox_next_id(Oid seqid)
{
	if (id_next >= id_end)
	{
		int64		first = nextval_internal(seqid, false);
		HeapTuple	seqtup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));

		if (!HeapTupleIsValid(seqtup))
			elog(ERROR, "cache lookup failed for sequence %u", seqid);
		id_next = first;
		id_end = first + Max(((Form_pg_sequence) GETSTRUCT(seqtup))->seqincrement, 1);
		ReleaseSysCache(seqtup);
	}
	return id_next++;
}

static void
outbox_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == outbox_relid || relid == outbox_seqid)
	{
		outbox_relid = InvalidOid;
		outbox_seqid = InvalidOid;
		col_map_valid = false;
		id_next = id_end = 0;
	}
}

static void
outbox_lookup(Oid *relid, Oid *seqid)
{
	if (!outbox_callback_registered)
	{
		CacheRegisterRelcacheCallback(outbox_relcache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(SEQRELID, outbox_sequence_callback, (Datum) 0);
		outbox_callback_registered = true;
	}
	if (!OidIsValid(outbox_relid) || !OidIsValid(outbox_seqid))
	{
		Oid			r = sc_state_relid("outbox");
		Oid			q = sc_state_relid("outbox_id_seq");

		outbox_relid = r;
		outbox_seqid = q;
		col_map_valid = false;
	}
	/* copies: opening the relation may process invalidations and reset them */
	*relid = outbox_relid;
	*seqid = outbox_seqid;
}

/*
 * Map our columns to attribute numbers of desc (1-based; 0 = absent).  Every
 * live column of the table must be one of ours: the insert gives each a value
 * and evaluates no defaults.
 */
static void
map_columns(TupleDesc desc, int *attno)
{
	int			i,
				c;

	for (c = 0; c < NCOLS; c++)
		attno[c] = 0;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		for (c = 0; c < NCOLS; c++)
			if (strcmp(NameStr(att->attname), col_names[c]) == 0)
				break;
		if (c == NCOLS)
			elog(ERROR, "unexpected column \"%s\" in sharecount.outbox", NameStr(att->attname));
		attno[c] = i + 1;
	}
	for (c = 0; c < NCOLS; c++)
		if (attno[c] == 0)
			elog(ERROR, "column \"%s\" of sharecount.outbox is missing", col_names[c]);
}

StaticAssertDecl(SC_JOB_FRAME_MAX + 6 * (SC_CONTENT_TYPE_MAX + SC_CONTENT_ID_MAX) +
				 4 * SC_JOB_FIELD_MAX <= SC_JOB_BODY_MAX,
				 "a job body at its field limits must fit in SC_JOB_BODY_MAX");

/*
 * The length of s[0..len) as escape_json() renders it, quotes not included:
 * a control character takes 6 bytes (\u001f) or 2 (\n, \t, \b, \f, \r),
 * '"' and '\\' take 2, every other byte 1.  Stops counting once past limit.
 */
static size_t
json_escaped_len(const char *s, size_t len, size_t limit)
{
	size_t		n = 0;
	size_t		i;

	for (i = 0; i < len && n <= limit; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' ||
			c == '\r' || c == '\t')
			n += 2;
		else if (c < ' ')
			n += 6;
		else
			n += 1;
	}
	return n;
}

/*
 * Whether an optional field of len bytes fits in a job: at most
 * SC_JOB_FIELD_MAX bytes once JSON-escaped.  The common case (a short value)
 * costs one comparison; only a value between SC_JOB_FIELD_RAW_SAFE and
 * SC_JOB_FIELD_MAX bytes is scanned.
 */
static bool
field_fits(const char *s, size_t len)
{
	if (len <= SC_JOB_FIELD_RAW_SAFE)
		return true;
	return len <= SC_JOB_FIELD_MAX &&
		json_escaped_len(s, len, SC_JOB_FIELD_MAX) <= SC_JOB_FIELD_MAX;
}

/* The job field name and its sharecount_track() argument, for messages. */
static const char *const field_names[NCOLS][2] = {
	[COL_SHARE_ID] = {"shareId", "id_column"},
	[COL_USER_ID] = {"userId", "user_id_column"},
	[COL_CHANNEL_ID] = {"channelId", "channel_id_column"},
	[COL_CAMPAIGN_ID] = {"campaignId", "campaign_id_column"},
};

static void
warn_field_left_out(int col, const char *job_name, size_t len,
					const char *ctype, const char *cid)
{
	ereport(WARNING,
			(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
			 errmsg("sharecount: %s left out of a %s job: its %zu bytes take more than %d bytes as JSON",
					field_names[col][0], job_name, len, SC_JOB_FIELD_MAX),
			 errdetail("The share of content type \"%s\", content id \"%s\" is counted all the same.",
					   ctype, cid),
			 errhint("Up to %d bytes always fit (up to %d without control characters, quotes or backslashes): shorten the value, or track the table with %s => '' to leave the column out of every job.",
					 SC_JOB_FIELD_RAW_SAFE, SC_JOB_FIELD_MAX, field_names[col][1])));
}

/*
 * Set values[col]/nulls[col] from an optional field of job: NULL if absent or
 * if it does not fit (with a WARNING).
 */
static void
set_optional(Datum *values, bool *nulls, int col, const char *s, const OutboxJob *job)
{
	size_t		len;

	nulls[col] = true;
	values[col] = (Datum) 0;
	if (s == NULL)
		return;
	len = strlen(s);
	if (!field_fits(s, len))
	{
		warn_field_left_out(col, job_name_of(job->kind), len, job->content_type, job->content_id);
		return;
	}
	nulls[col] = false;
	values[col] = PointerGetDatum(cstring_to_text_with_len(s, len));
}

/* Whether a content key is within the limits of docs/extension.md. */
static bool
key_fits(size_t ctype_len, size_t cid_len)
{
	return ctype_len >= 1 && ctype_len <= SC_CONTENT_TYPE_MAX &&
		cid_len >= 1 && cid_len <= SC_CONTENT_ID_MAX;
}

/*
 * The outbox columns of job, in our column order, with the job body's bounds
 * applied (see the file header).
 */
static void
job_values(const OutboxJob *job, int64 id, Datum *values, bool *nulls)
{
	size_t		ctype_len = 0,
				cid_len = 0;
	pg_uuid_t  *uuid;

	if (job->content_type == NULL || job->content_id == NULL ||
		!key_fits(ctype_len = strlen(job->content_type), cid_len = strlen(job->content_id)))
		elog(ERROR, "sharecount: outbox job with a NULL or out-of-limits content key");
	uuid = palloc(sizeof(pg_uuid_t));
	memcpy(uuid->data, job->job_id, UUID_LEN);

	nulls[COL_ID] = false;
	values[COL_ID] = Int64GetDatum(id);
	nulls[COL_JOB] = false;
	values[COL_JOB] = CharGetDatum(job->kind);
	nulls[COL_JOB_ID] = false;
	values[COL_JOB_ID] = UUIDPGetDatum(uuid);
	nulls[COL_CREATED_AT] = false;
	values[COL_CREATED_AT] = TimestampTzGetDatum(job->ts);
	nulls[COL_AMOUNT] = (job->kind != SC_JOB_COUNT_UPDATE);
	values[COL_AMOUNT] = Int64GetDatum(job->amount);
	nulls[COL_CONTENT_TYPE] = false;
	values[COL_CONTENT_TYPE] = PointerGetDatum(cstring_to_text_with_len(job->content_type, ctype_len));
	nulls[COL_CONTENT_ID] = false;
	values[COL_CONTENT_ID] = PointerGetDatum(cstring_to_text_with_len(job->content_id, cid_len));
	set_optional(values, nulls, COL_SHARE_ID, job->share_id, job);
	set_optional(values, nulls, COL_USER_ID, job->user_id, job);
	set_optional(values, nulls, COL_CHANNEL_ID, job->channel_id, job);
	set_optional(values, nulls, COL_CAMPAIGN_ID, job->campaign_id, job);
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
 * takes nextval() of its own sequence.  No privilege is checked (as before,
 * when SPI ran as the outbox's owner), so the application's role needs none on
 * schema sharecount.
 */
void
outbox_insert(const OutboxJob *job)
{
	Oid			relid,
				seqid;
	Relation	rel;
	TupleDesc	desc;
	Datum		values[NCOLS];
	bool		nulls[NCOLS];
	Datum		row_values[NCOLS];
	bool		row_nulls[NCOLS];
	HeapTuple	tup;
	List	   *indexoids;
	ListCell   *lc;
	TupleTableSlot *slot = NULL;
	int			i;

	outbox_lookup(&relid, &seqid);
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	if (!col_map_valid)
	{
		map_columns(desc, col_attno);
		col_map_valid = true;
	}
	if (desc->natts > NCOLS)
		elog(ERROR, "sharecount.outbox has %d attributes, expected at most %d "
			 "(run VACUUM FULL after dropping columns)", desc->natts, NCOLS);
	job_values(job, outbox_next_id(seqid), values, nulls);

	/* our column order -> the table's attribute order (dropped columns NULL) */
	for (i = 0; i < desc->natts; i++)
		row_nulls[i] = true;
	for (i = 0; i < NCOLS; i++)
	{
		row_values[col_attno[i] - 1] = values[i];
		row_nulls[col_attno[i] - 1] = nulls[i];
	}

	tup = heap_form_tuple(desc, row_values, row_nulls);
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

/* ---------------------------------------------------------------- reading */

/*
 * The columns of one outbox row given as a composite (sharecount.outbox),
 * deformed once.  The tuple descriptor comes from the type cache, and the
 * column map is kept in fn_extra for the rest of the query, so rendering a
 * claimed batch looks names up once.
 */
typedef struct RowReader
{
	Oid			typid;
	int32		typmod;
	int			attno[NCOLS];
} RowReader;

static void
read_row(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(0);
	Oid			typid = HeapTupleHeaderGetTypeId(th);
	int32		typmod = HeapTupleHeaderGetTypMod(th);
	RowReader  *rr = (RowReader *) fcinfo->flinfo->fn_extra;
	TupleDesc	desc = lookup_rowtype_tupdesc(typid, typmod);
	HeapTupleData tuple;
	Datum	   *all_values = palloc(desc->natts * sizeof(Datum));
	bool	   *all_nulls = palloc(desc->natts * sizeof(bool));
	int			c;

	if (rr == NULL || rr->typid != typid || rr->typmod != typmod)
	{
		if (rr == NULL)
			rr = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(RowReader));
		map_columns(desc, rr->attno);
		rr->typid = typid;
		rr->typmod = typmod;
		fcinfo->flinfo->fn_extra = rr;
	}
	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	heap_deform_tuple(&tuple, desc, all_values, all_nulls);
	for (c = 0; c < NCOLS; c++)
	{
		values[c] = all_values[rr->attno[c] - 1];
		nulls[c] = all_nulls[rr->attno[c] - 1];
	}
	ReleaseTupleDesc(desc);
}

static const char *
job_name_of(char kind)
{
	switch (kind)
	{
		case SC_JOB_CREATED:
			return "share_created";
		case SC_JOB_DELETED:
			return "share_deleted";
		case SC_JOB_COUNT_UPDATE:
			return "share_count_update";
	}
	elog(ERROR, "unknown job kind '%c' in sharecount.outbox", kind);
	return NULL;				/* keep compiler quiet */
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
 * Column col of a row being rendered, as a C string; NULL if it is NULL or, as
 * outbox_insert() would have decided, too long for a job (a row that release
 * 1.0 wrote, or one made by hand): then with the same WARNING.
 */
static const char *
optional_text(const Datum *values, const bool *nulls, int col, const char *job_name,
			  const char *ctype, const char *cid)
{
	char	   *s;
	size_t		len;

	if (nulls[col])
		return NULL;
	s = TextDatumGetCString(values[col]);
	len = strlen(s);
	if (field_fits(s, len))
		return s;
	warn_field_left_out(col, job_name, len, ctype, cid);
	return NULL;
}

/*
 * sharecount.job_name(sharecount.outbox) -> text: the job's name, which is
 * also its routing key.
 */
Datum
sharecount_job_name(PG_FUNCTION_ARGS)
{
	Datum		values[NCOLS];
	bool		nulls[NCOLS];

	read_row(fcinfo, values, nulls);
	if (nulls[COL_JOB])
		elog(ERROR, "outbox row without a job kind");
	PG_RETURN_TEXT_P(cstring_to_text(job_name_of(DatumGetChar(values[COL_JOB]))));
}

/*
 * sharecount.job_body(sharecount.outbox) -> text: the message body of SPEC
 * section 5, ready to publish.
 */
Datum
sharecount_job_body(PG_FUNCTION_ARGS)
{
	Datum		values[NCOLS];
	bool		nulls[NCOLS];
	char		kind;
	const char *name;
	char		job_id[40];
	char		ts[32];
	const char *ctype;
	const char *cid;
	StringInfoData buf;

	read_row(fcinfo, values, nulls);
	if (nulls[COL_JOB] || nulls[COL_JOB_ID] || nulls[COL_CREATED_AT] ||
		nulls[COL_CONTENT_TYPE] || nulls[COL_CONTENT_ID])
		elog(ERROR, "outbox row with a NULL job, job_id, created_at, content_type or content_id");
	kind = DatumGetChar(values[COL_JOB]);
	name = job_name_of(kind);
	sc_uuid_format(job_id, DatumGetUUIDP(values[COL_JOB_ID])->data);
	sc_format_timestamp(ts, DatumGetTimestampTz(values[COL_CREATED_AT]));
	ctype = TextDatumGetCString(values[COL_CONTENT_TYPE]);
	cid = TextDatumGetCString(values[COL_CONTENT_ID]);
	if (!key_fits(strlen(ctype), strlen(cid)))
	{
		/*
		 * Not from outbox_insert(), which refuses such keys.  An empty key
		 * keeps the body bounded, and the consumer dead-letters the job as
		 * invalid, with its reason, instead of the claim failing for good.
		 */
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sharecount: outbox row %s has a content key outside the limits; rendered with an empty key",
						job_id),
				 errhint("The consumer dead-letters the job as invalid; to drop it sooner, delete the row from sharecount.outbox.")));
		ctype = cid = "";
	}

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"pattern\":\"");
	appendStringInfoString(&buf, name);
	appendStringInfoString(&buf, "\",\"data\":{\"jobId\":\"");
	appendStringInfoString(&buf, job_id);
	appendStringInfoChar(&buf, '"');
	if (kind == SC_JOB_COUNT_UPDATE)
	{
		int64		amount;

		if (nulls[COL_AMOUNT] || DatumGetInt64(values[COL_AMOUNT]) == 0)
			elog(ERROR, "share_count_update outbox row without an amount");
		amount = DatumGetInt64(values[COL_AMOUNT]);
		add_field(&buf, "contentType", ctype);
		add_field(&buf, "contentId", cid);
		appendStringInfo(&buf, ",\"operation\":\"%s\",\"amount\":" INT64_FORMAT,
						 amount > 0 ? "increment" : "decrement", amount > 0 ? amount : -amount);
	}
	else
	{
		const char *v;

		add_field(&buf, "shareId", optional_text(values, nulls, COL_SHARE_ID, name, ctype, cid));
		add_field(&buf, "contentType", ctype);
		add_field(&buf, "contentId", cid);
		add_field(&buf, "userId", optional_text(values, nulls, COL_USER_ID, name, ctype, cid));
		if (kind == SC_JOB_CREATED)
		{
			if ((v = optional_text(values, nulls, COL_CHANNEL_ID, name, ctype, cid)) != NULL)
				add_field(&buf, "channelId", v);
			if ((v = optional_text(values, nulls, COL_CAMPAIGN_ID, name, ctype, cid)) != NULL)
				add_field(&buf, "campaignId", v);
		}
	}
	appendStringInfoString(&buf, ",\"timestamp\":\"");
	appendStringInfoString(&buf, ts);
	appendStringInfoString(&buf, "\"}}");
	Assert(buf.len <= SC_JOB_BODY_MAX);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
