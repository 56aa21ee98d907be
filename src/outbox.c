/*
 * outbox.c: the outbox row, written.
 *
 * A job is stored in sharecount.outbox as columns (kind, origin, timestamp,
 * key, user, channel, campaign, amount), not as its JSON: the row is written
 * by every tracked INSERT/DELETE in the application's transaction, where each
 * byte is paid again in WAL and each instruction in the application's
 * latency, while it is read once, by a publisher, off that path.  So
 * outbox_insert() writes the compact row, and render.c renders the message of
 * docs/extension.md ("Jobs") when the job is claimed.  The jobId is dense,
 * "<origin>-<id>" (origin.c): no per-row UUID is generated or stored; job_id
 * (a UUID) is set only in rows that release 1.0 wrote.  docs/extension.md
 * ("Performance") has the measurements.
 *
 * Rules:
 * - outbox_insert() writes the heap row and its index entries directly (no
 *   executor, no privilege check), see its comment for what that skips.
 * - Every rendered body is at most SC_JOB_BODY_MAX bytes (sharecount.h has the
 *   arithmetic; docs/extension.md, "Jobs").  outbox_insert() decides it: an
 *   optional field longer than SC_JOB_FIELD_MAX as JSON is stored as NULL with
 *   a WARNING, and a key outside the limits of docs/extension.md is refused
 *   (the trigger never passes one).  render.c applies the same rule to rows
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
#include "outbox.h"

/* The columns of sharecount.outbox, in outbox.h's order. */
static const char *const col_names[NCOLS] = {
	"id",	   "job",		 "job_id",		 "created_at",
	"amount",  "share_id",	 "content_type", "content_id",
	"user_id", "channel_id", "campaign_id",	 "origin"};

/*
 * OIDs of sharecount.outbox and its id sequence, looked up by name once and
 * kept until a relcache invalidation names either of them (or all relations):
 * dropping or re-creating the extension, also in the same session or in a
 * transaction that rolls back, sends one.  Two name lookups per row were a
 * measurable part of the trigger (docs/extension.md, "CPU: what changed").
 * col_attno maps our columns to the table's attribute
 * numbers, filled on the first insert after a lookup.
 */
static Oid outbox_relid = InvalidOid;
static Oid outbox_seqid = InvalidOid;
static bool outbox_callback_registered = false;
static bool col_map_valid = false;
static int col_attno[NCOLS];
static bool col_map_identity; /* attribute i + 1 is our column i, no other */

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
		int64 first = nextval_internal(seqid, false);
		HeapTuple seqtup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));

		if (!HeapTupleIsValid(seqtup))
			elog(ERROR, "cache lookup failed for sequence %u", seqid);
		id_next = first;
		id_end = first +
			Max(((Form_pg_sequence) GETSTRUCT(seqtup))->seqincrement, 1);
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
		CacheRegisterSyscacheCallback(SEQRELID, outbox_sequence_callback,
									  (Datum) 0);
		outbox_callback_registered = true;
	}
	if (!OidIsValid(outbox_relid) || !OidIsValid(outbox_seqid))
	{
		Oid r = sc_state_relid("outbox");
		Oid q = sc_state_relid("outbox_id_seq");

		outbox_relid = r;
		outbox_seqid = q;
		col_map_valid = false;
	}
	/* copies: opening the relation may process invalidations and reset them */
	*relid = outbox_relid;
	*seqid = outbox_seqid;
}

/*
 * Map our columns to attribute numbers of desc (1-based; 0 = absent: only
 * origin may be, in the outbox of release 1.0, before ALTER EXTENSION UPDATE).  Every
 * live column of the table must be one of ours: the insert gives each a value
 * and evaluates no defaults.
 */
void
outbox_map_columns(TupleDesc desc, int *attno)
{
	int i, c;

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
			elog(ERROR, "unexpected column \"%s\" in sharecount.outbox",
				 NameStr(att->attname));
		attno[c] = i + 1;
	}
	/* origin is absent only while the extension is still at 1.0 */
	for (c = 0; c < NCOLS; c++)
		if (attno[c] == 0 && c != COL_ORIGIN)
			elog(ERROR, "column \"%s\" of sharecount.outbox is missing",
				 col_names[c]);
}

/*
 * Fill col_attno for desc (the outbox, open, so invalidations are processed)
 * unless it is still valid, and check that every attribute is one of ours.
 */
static void
check_columns(TupleDesc desc)
{
	if (!col_map_valid)
	{
		int c;

		outbox_map_columns(desc, col_attno);
		col_map_identity = desc->natts == NCOLS;
		for (c = 0; c < NCOLS; c++)
			col_map_identity = col_map_identity && col_attno[c] == c + 1;
		col_map_valid = true;
	}
	if (desc->natts > NCOLS)
		elog(ERROR,
			 "sharecount.outbox has %d attributes, expected at most %d "
			 "(run VACUUM FULL after dropping columns)",
			 desc->natts, NCOLS);
}

StaticAssertDecl(SC_JOB_FRAME_MAX +
						 6 * (SC_CONTENT_TYPE_MAX + SC_CONTENT_ID_MAX) +
						 4 * SC_JOB_FIELD_MAX <=
					 SC_JOB_BODY_MAX,
				 "a job body at its field limits must fit in SC_JOB_BODY_MAX");

/*
 * The length of s[0..len) as escape_json() renders it, quotes not included:
 * a control character takes 6 bytes (\u001f) or 2 (\n, \t, \b, \f, \r),
 * '"' and '\\' take 2, every other byte 1.  Stops counting once past limit.
 */
static size_t
json_escaped_len(const char *s, size_t len, size_t limit)
{
	size_t n = 0;
	size_t i;

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
bool
outbox_field_fits(const char *s, size_t len)
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

void
outbox_warn_field_left_out(int col, const char *job_name, size_t len,
						   const char *ctype, const char *cid)
{
	ereport(
		WARNING,
		(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
		 errmsg(
			 "sharecount: %s left out of a %s job: its %zu bytes take more than %d bytes as JSON",
			 field_names[col][0], job_name, len, SC_JOB_FIELD_MAX),
		 errdetail(
			 "The share of content type \"%s\", content id \"%s\" is counted all the same.",
			 ctype, cid),
		 errhint(
			 "Up to %d bytes always fit (up to %d without control characters, quotes or backslashes): shorten the value, or track the table with %s => '' to leave the column out of every job.",
			 SC_JOB_FIELD_RAW_SAFE, SC_JOB_FIELD_MAX, field_names[col][1])));
}

/*
 * Set values[col]/nulls[col] from an optional field t of job: NULL if absent
 * or if it does not fit (with a WARNING).
 */
static void
set_optional(Datum *values, bool *nulls, int col, const text *t,
			 const OutboxTextJob *job)
{
	size_t len;

	nulls[col] = true;
	values[col] = (Datum) 0;
	if (t == NULL)
		return;
	len = VARSIZE_ANY_EXHDR(t);
	if (!outbox_field_fits(VARDATA_ANY(t), len))
	{
		outbox_warn_field_left_out(col, outbox_job_name(job->kind), len,
								   text_to_cstring(job->content_type),
								   text_to_cstring(job->content_id));
		return;
	}
	nulls[col] = false;
	values[col] = PointerGetDatum(t);
}

/* Whether a content key is within the limits of docs/extension.md. */
bool
outbox_key_fits(size_t ctype_len, size_t cid_len)
{
	return ctype_len >= 1 && ctype_len <= SC_CONTENT_TYPE_MAX &&
		cid_len >= 1 && cid_len <= SC_CONTENT_ID_MAX;
}

/*
 * The outbox columns of job, in our column order, with the job body's bounds
 * applied (see the file header).  The text values are job's own (not copied).
 */
static void
job_values(const OutboxTextJob *job, int64 id, Datum *values, bool *nulls)
{
	if (job->content_type == NULL || job->content_id == NULL ||
		!outbox_key_fits(VARSIZE_ANY_EXHDR(job->content_type),
						 VARSIZE_ANY_EXHDR(job->content_id)))
		elog(
			ERROR,
			"sharecount: outbox job with a NULL or out-of-limits content key");

	nulls[COL_ID] = false;
	values[COL_ID] = Int64GetDatum(id);
	nulls[COL_JOB] = false;
	values[COL_JOB] = CharGetDatum(job->kind);
	if (col_attno[COL_ORIGIN] != 0)
	{
		/* the jobId is dense: origin and id */
		nulls[COL_JOB_ID] = true;
		values[COL_JOB_ID] = (Datum) 0;
		nulls[COL_ORIGIN] = false;
		values[COL_ORIGIN] = Int64GetDatum(sc_origin());
	}
	else
	{
		/* a 1.0 outbox, not updated yet: a UUID, as 1.0 wrote */
		pg_uuid_t *uuid = palloc(sizeof(pg_uuid_t));

		sc_uuid_v4(uuid->data);
		nulls[COL_JOB_ID] = false;
		values[COL_JOB_ID] = UUIDPGetDatum(uuid);
		nulls[COL_ORIGIN] = true;
	}
	nulls[COL_CREATED_AT] = false;
	values[COL_CREATED_AT] = TimestampTzGetDatum(job->ts);
	nulls[COL_AMOUNT] = (job->kind != SC_JOB_COUNT_UPDATE);
	values[COL_AMOUNT] = Int64GetDatum(job->amount);
	nulls[COL_CONTENT_TYPE] = false;
	values[COL_CONTENT_TYPE] = PointerGetDatum(job->content_type);
	nulls[COL_CONTENT_ID] = false;
	values[COL_CONTENT_ID] = PointerGetDatum(job->content_id);
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
 * pushes) for every row, more than the rest of the trigger together under
 * callgrind (docs/extension.md, "CPU: what changed").  Instead the row
 * is formed here and written with simple_heap_insert() and index_insert() on
 * each index of the outbox, the way CatalogTupleInsert() writes catalog rows.
 * What the executor would add does not apply to this table: it has no
 * triggers, CHECK constraints, rules, row security or partitions (the
 * extension owns it; anything of that kind added by hand is not honoured), and
 * every column gets a value here, so column defaults are not evaluated: id
 * takes nextval() of its own sequence.  No privilege is checked (as before,
 * when SPI ran as the outbox's owner), so the application's role needs none on
 * schema sharecount.  The text values go into the row as they are:
 * heap_form_tuple() stores a short value with a 1-byte header whichever header
 * it came with, so the row's bytes do not depend on where a value came from.
 */
void
outbox_insert_text(const OutboxTextJob *job)
{
	Oid relid, seqid;
	Relation rel;
	TupleDesc desc;
	Datum values[NCOLS];
	bool nulls[NCOLS];
	Datum row_values[NCOLS];
	bool row_nulls[NCOLS];
	HeapTuple tup;
	int i;

	outbox_lookup(&relid, &seqid);
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	check_columns(desc);
	job_values(job, outbox_next_id(seqid), values, nulls);

	/* our column order -> the table's attribute order (dropped columns NULL) */
	for (i = 0; i < desc->natts; i++)
		row_nulls[i] = true;
	for (i = 0; i < NCOLS; i++)
	{
		if (col_attno[i] == 0)
			continue;
		row_values[col_attno[i] - 1] = values[i];
		row_nulls[col_attno[i] - 1] = nulls[i];
	}

	tup = heap_form_tuple(desc, row_values, row_nulls);
	outbox_insert_tuple(rel, tup);
	heap_freetuple(tup);
	table_close(rel, NoLock);
	sc_wakeup_note_outbox_write();
}

/* s as a text value, or NULL for NULL. */
static text *
text_or_null(const char *s)
{
	return s == NULL ? NULL : cstring_to_text(s);
}

/*
 * Insert one job given with C strings (the COUNT(*) jobs of trigger.c):
 * outbox_insert_text() with the strings as text.
 */
void
outbox_insert(const OutboxJob *job)
{
	OutboxTextJob tj;

	tj.kind = job->kind;
	tj.ts = job->ts;
	tj.amount = job->amount;
	tj.share_id = text_or_null(job->share_id);
	tj.content_type = text_or_null(job->content_type);
	tj.content_id = text_or_null(job->content_id);
	tj.user_id = text_or_null(job->user_id);
	tj.channel_id = text_or_null(job->channel_id);
	tj.campaign_id = text_or_null(job->campaign_id);
	outbox_insert_text(&tj);
}

/*
 * Write tup (a row of sharecount.outbox, rel opened RowExclusiveLock) into the
 * heap and every index of the outbox: outbox_insert(), and the claim putting
 * back rows that were not confirmed (claim.c).
 */
void
outbox_insert_tuple(Relation rel, HeapTuple tup)
{
	List *indexoids;
	ListCell *lc;
	TupleTableSlot *slot = NULL;

	simple_heap_insert(rel, tup);
	indexoids = RelationGetIndexList(rel);
	foreach (lc, indexoids)
	{
		Relation idx = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo *ii = BuildIndexInfo(idx);
		Datum ivalues[INDEX_MAX_KEYS];
		bool inulls[INDEX_MAX_KEYS];

		/* an index still being built (CREATE INDEX CONCURRENTLY) is skipped, as by the executor */
		if (!ii->ii_ReadyForInserts)
		{
			index_close(idx, NoLock);
			continue;
		}
		if (ii->ii_Expressions != NIL || ii->ii_Predicate != NIL ||
			!idx->rd_index->indimmediate)
			elog(ERROR, "unexpected index \"%s\" on sharecount.outbox",
				 RelationGetRelationName(idx));
		if (slot == NULL)
		{
			slot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
											&TTSOpsHeapTuple);
			ExecStoreHeapTuple(tup, slot, false);
		}
		FormIndexDatum(ii, slot, NULL, ivalues, inulls);
		index_insert(idx, ivalues, inulls, &tup->t_self, rel,
					 idx->rd_index->indisunique ? UNIQUE_CHECK_YES :
												  UNIQUE_CHECK_NO,
					 false, ii);
		index_close(idx, NoLock);
	}
	if (slot != NULL)
		ExecDropSingleTupleTableSlot(slot);
	list_free(indexoids);
}

/* The OID of sharecount.outbox (cached, see outbox_lookup). */
Oid
outbox_relation(void)
{
	Oid relid, seqid;

	outbox_lookup(&relid, &seqid);
	return relid;
}

/*
 * The columns of tup, a row of rel (sharecount.outbox, open), in our column
 * order.
 */
void
outbox_deform(Relation rel, HeapTuple tup, Datum *values, bool *nulls)
{
	TupleDesc desc = RelationGetDescr(rel);
	Datum all_values[NCOLS];
	bool all_nulls[NCOLS];
	int c;

	check_columns(desc);
	if (col_map_identity) /* every install's order (claim.c reads each row) */
	{
		heap_deform_tuple(tup, desc, values, nulls);
		return;
	}
	heap_deform_tuple(tup, desc, all_values, all_nulls);
	for (c = 0; c < NCOLS; c++)
	{
		values[c] = col_attno[c] ? all_values[col_attno[c] - 1] : (Datum) 0;
		nulls[c] = col_attno[c] ? all_nulls[col_attno[c] - 1] : true;
	}
}
