/*
 * claim.c: sharecount_outbox_claim(), sharecount_outbox_claim_packed() and
 * sharecount_outbox_done(), the publisher's side of the outbox
 * (docs/extension.md, "Outbox"; docs/sql.md).  The two claims are one code
 * path (claim_into); they differ only in how the taken rows leave: result
 * rows through a tuplestore, or one text value (see "Packed claim" below).
 *
 * A claim TAKES its rows: it deletes each one in the claiming transaction
 * (heap_delete without waiting: a row that another open claim has already
 * taken is skipped, as FOR UPDATE SKIP LOCKED did in release 1.0), renders it
 * straight from the heap tuple (render.c) and keeps a copy of it, by id, for
 * the rest of the transaction.  sharecount_outbox_done(ids) then only marks
 * those rows confirmed; it writes nothing.  When the transaction commits (or
 * is prepared) every row taken and not confirmed is written back, with the
 * same id and origin (so the same jobId), to be claimed again; when it aborts
 * (error, ROLLBACK, lost connection, kill -9) PostgreSQL undoes the deletes.
 * So the guarantees of 1.0's "lock FOR UPDATE SKIP LOCKED at claim, DELETE at
 * done" hold, with one row write per job instead of two (the row lock and the
 * delete, each a WAL record) and no SPI or executor per claim
 * (docs/performance.md, P7).
 *
 * The outbox has no index (docs/performance.md, P1), so rows are found by
 * their place in the heap: a claim scans in physical order with a TID range
 * scan, from this session's cursor to the end and then from the start up to
 * the cursor.  The cursor moves to the block of the first row a claim takes,
 * so a claim does not re-read the pages that earlier claims emptied (their
 * dead rows stay until VACUUM) and every row is reached within one pass.
 * The part below the cursor is the whole heap behind it, dead rows
 * included, so a claim that found rows ahead and wants more looks back only
 * SC_CLAIM_LOOKBACK_BLOCKS (where rows whose insert was in progress when the
 * scan passed them are); every SC_CLAIM_FULL_WRAP_EVERY-th such claim, and
 * every claim that found nothing ahead, goes back to block 0.  So a row
 * further behind (written into space VACUUM freed, put back by an aborted
 * claim, or inserted by a long transaction) waits at most that many claims
 * while rows keep arriving ahead, and an empty claim, such as the
 * publisher's re-check before it sleeps (docs/wakeup.md), still sees every
 * row.
 *
 * Rules:
 * - The cursor is per backend.  The map of taken rows (id -> copies of the
 *   rows, flattened: no TOAST pointers) lives in TopTransactionContext; the
 *   transaction callback writes back unconfirmed rows at PRE_COMMIT /
 *   PRE_PREPARE and forgets the map at every transaction end.  Copies, not
 *   the rows' places in the heap: a TRUNCATE (or any rewrite) of the outbox
 *   in the claiming transaction leaves the deleted rows in storage that is
 *   gone at commit (regress test claim_writeback).
 * - The result rows are copied by the tuplestore from the claim's buffers
 *   (ClaimOut); the job names' text values live in TopMemoryContext, one per
 *   kind, for the backend's life.  The packed claim's value is built in the
 *   caller's memory context and returned as it is (no copy).
 * - Subtransactions: a row remembers the subtransaction that took it and the
 *   one that confirmed it; rolling back a subtransaction forgets the rows it
 *   took (their deletes are undone) and un-confirms those it confirmed;
 *   committing one hands both to its parent.
 * - A claim needs a read-write transaction (it deletes), like the SELECT ...
 *   FOR UPDATE of 1.0; ids that this transaction did not claim are deleted
 *   by sharecount_outbox_done() through SPI (correct, just slower).
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/itemptr.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "sharecount.h"
#include "outbox.h"

PG_FUNCTION_INFO_V1(sharecount_outbox_claim);
PG_FUNCTION_INFO_V1(sharecount_outbox_claim_packed);
PG_FUNCTION_INFO_V1(sharecount_outbox_done);

/* The kinds of job outbox_job_name() names: c, d and u (sharecount.h). */
#define SC_JOB_KINDS 3

/* Where the next claim of this session starts scanning. */
static BlockNumber claim_cursor = 0;
/* Claims since this session's last full pass below the cursor. */
static int claims_since_full_wrap = 0;

/*
 * One row taken by a claim of the current transaction.  Rows sharing an id
 * (only possible for rows inserted by hand) are chained through dup.
 */
typedef struct TakenRow
{
	int64 id;	   /* hash key */
	HeapTuple tup; /* copy of the row, to write back */
	SubTransactionId taken_by;
	SubTransactionId done_by; /* InvalidSubTransactionId: not confirmed */
	struct TakenRow *dup;
} TakenRow;

static HTAB *taken = NULL;
static Oid taken_relid = InvalidOid; /* the outbox the rows came from */
static bool callbacks_registered = false;

/* Write back the rows taken and not confirmed (at PRE_COMMIT / PRE_PREPARE). */
static void
put_back_unconfirmed(void)
{
	HASH_SEQ_STATUS seq;
	TakenRow *tr;
	Relation rel = NULL;

	hash_seq_init(&seq, taken);
	while ((tr = hash_seq_search(&seq)) != NULL)
	{
		TakenRow *r;

		for (r = tr; r != NULL; r = r->dup)
		{
			if (r->done_by != InvalidSubTransactionId)
				continue;
			if (rel == NULL)
				rel = try_table_open(taken_relid, RowExclusiveLock);
			if (rel == NULL)
			{
				/* the outbox was dropped in this transaction: nothing to keep */
				hash_seq_term(&seq);
				return;
			}
			outbox_insert_tuple(rel, r->tup);
		}
	}
	if (rel != NULL)
		table_close(rel, NoLock);
}

static void
taken_xact_callback(XactEvent event, void *arg)
{
	if (taken == NULL)
		return;
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
	{
		/* an error here aborts the transaction: its deletes are undone */
		put_back_unconfirmed();
		taken = NULL;
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
			 event == XACT_EVENT_PREPARE ||
			 event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_PARALLEL_ABORT)
		taken = NULL; /* freed with TopTransactionContext */
}

/*
 * Subtransaction sub rolled back: the rows it took are in the outbox again
 * (PostgreSQL undid their deletes), so forget them, in head's chain.
 */
static void
forget_taken_by(TakenRow *head, SubTransactionId sub)
{
	TakenRow **link = &head->dup;

	while (*link != NULL)
	{
		if ((*link)->taken_by == sub)
			*link = (*link)->dup;
		else
			link = &(*link)->dup;
	}
	if (head->taken_by != sub)
		return;
	if (head->dup == NULL)
		hash_search(taken, &head->id, HASH_REMOVE,
					NULL); /* allowed during a seq scan */
	else
	{
		TakenRow *next = head->dup;

		head->tup = next->tup;
		head->taken_by = next->taken_by;
		head->done_by = next->done_by;
		head->dup = next->dup;
	}
}

static void
taken_subxact_callback(SubXactEvent event, SubTransactionId sub,
					   SubTransactionId parent, void *arg)
{
	HASH_SEQ_STATUS seq;
	TakenRow *tr;

	if (taken == NULL ||
		(event != SUBXACT_EVENT_ABORT_SUB &&
		 event != SUBXACT_EVENT_COMMIT_SUB))
		return;
	hash_seq_init(&seq, taken);
	while ((tr = hash_seq_search(&seq)) != NULL)
	{
		TakenRow *r;

		for (r = tr; r != NULL; r = r->dup)
		{
			if (event == SUBXACT_EVENT_COMMIT_SUB)
			{
				if (r->taken_by == sub)
					r->taken_by = parent;
				if (r->done_by == sub)
					r->done_by = parent;
			}
			else if (r->done_by == sub)
				r->done_by =
					InvalidSubTransactionId; /* its confirmation is undone */
		}
		if (event == SUBXACT_EVENT_ABORT_SUB)
			forget_taken_by(tr, sub);
	}
}

/*
 * The map's hash of an id: its halves folded and mixed by murmurhash32(),
 * instead of tag_hash() over 8 bytes (~60 instructions, twice per job: the
 * claim's insert and outbox_done's look-up).
 */
static uint32
taken_hash(const void *key, Size keysize)
{
	uint64 k = *(const uint64 *) key;

	Assert(keysize == sizeof(int64));
	return murmurhash32((uint32) k ^ (uint32) (k >> 32));
}

/* The map of this transaction's taken rows, created on first use. */
static HTAB *
taken_map(void)
{
	HASHCTL ctl;

	if (taken != NULL)
		return taken;
	if (!callbacks_registered)
	{
		RegisterXactCallback(taken_xact_callback, NULL);
		RegisterSubXactCallback(taken_subxact_callback, NULL);
		callbacks_registered = true;
	}
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(TakenRow);
	ctl.hash = taken_hash; /* keys compared with memcmp() */
	ctl.hcxt = TopTransactionContext;
	taken = hash_create("sharecount taken rows", 1024, &ctl,
						HASH_ELEM | HASH_FUNCTION | HASH_CONTEXT);
	return taken;
}

/* Remember tup (a row just deleted by this transaction) under its id. */
static void
remember(Relation rel, HeapTuple tup, int64 id)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	HeapTuple copy = HeapTupleHasExternal(tup) ?
		toast_flatten_tuple(tup, RelationGetDescr(rel)) :
		heap_copytuple(tup);
	bool found;
	TakenRow *tr = hash_search(taken_map(), &id, HASH_ENTER, &found);

	if (found)
	{
		TakenRow *dup = palloc(sizeof(TakenRow));

		*dup = *tr;
		tr->dup = dup;
	}
	else
		tr->dup = NULL;
	tr->tup = copy;
	tr->taken_by = GetCurrentSubTransactionId();
	tr->done_by = InvalidSubTransactionId;
	MemoryContextSwitchTo(old);
}

/*
 * The job's name as a text value, made once per backend for each kind
 * (outbox_job_name() returns one literal per kind), instead of a new text
 * per row.
 */
static const text *
job_name_text(const char *name)
{
	static struct
	{
		const char *name;
		text *value;
	} names[SC_JOB_KINDS];
	int i;

	for (i = 0; i < SC_JOB_KINDS; i++)
	{
		if (names[i].name == name)
			return names[i].value;
		if (names[i].name == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			names[i].value = cstring_to_text(name);
			names[i].name = name;
			MemoryContextSwitchTo(old);
			return names[i].value;
		}
	}
	elog(ERROR, "more job names than job kinds");
	return NULL; /* keep compiler quiet */
}

/*
 * Packed claim: one line per job, "<id>\t<body>\t<job_name>\t<job_id>\n", in
 * the order they are rendered (the jobId is known once the body is).  No
 * field can hold a tab or a newline: id is digits and a sign; the body is
 * JSON from render.c, whose strings go through append_json() (a byte below
 * 0x20 is escaped, as escape_json() does: \t, \n or \u00XX) and whose other
 * parts are literals, numbers and the timestamp; job_name is one of three
 * literals (outbox_job_name); the jobId is a UUID, "<16 hex>-<id>" or
 * "nojobid-<id>-<microseconds>" (render_job_id).  No server encoding has a
 * byte below 0x80 inside a multi-byte character.  Regress test claim_packed.
 * A claim stops taking rows once its value could pass SC_CLAIM_PACKED_MAX
 * bytes with one more line, so it returns fewer than max jobs then.
 */
#define SC_CLAIM_PACKED_MAX (16 * 1024 * 1024)
#define SC_CLAIM_LINE_MAX (24 + SC_JOB_BODY_MAX + 24 + SC_JOB_ID_TEXT)

/*
 * What a claim writes its result with: the rows go into rsinfo's tuplestore
 * (tuplestore_putvalues), or, for the packed claim (rsinfo NULL), are
 * appended to packed, a text value being built (varlena header first); body
 * is the rendering buffer of the rows, reused from row to row (a fresh 1 KiB
 * StringInfo per row was ~550 instructions of the claim's ~13,000 per job,
 * bench/p1_callgrind.sh claim); rowcxt is reset after each row.
 */
typedef struct ClaimOut
{
	ReturnSetInfo *rsinfo; /* NULL: packed */
	StringInfo packed;
	MemoryContext rowcxt;
	StringInfoData body; /* a text value: varlena header, then the body */
} ClaimOut;

static void
claim_out_init(ClaimOut *out, ReturnSetInfo *rsinfo, StringInfo packed)
{
	out->rsinfo = rsinfo;
	out->packed = packed;
	out->rowcxt = AllocSetContextCreate(
		CurrentMemoryContext, "sharecount claim row", ALLOCSET_SMALL_SIZES);
	if (packed == NULL)
		initStringInfo(&out->body);
}

/* Whether the packed value could pass SC_CLAIM_PACKED_MAX with one more line. */
static inline bool
claim_out_full(const ClaimOut *out)
{
	return out->packed != NULL &&
		out->packed->len > SC_CLAIM_PACKED_MAX - SC_CLAIM_LINE_MAX;
}

/* Append the line of the row given as its columns to the packed value. */
static void
emit_packed(const Datum *cols, const bool *cnulls, StringInfo buf)
{
	char job_id[SC_JOB_ID_TEXT];
	const char *name;
	int name_len, id_len;

	enlargeStringInfo(buf, 24);
	buf->len += pg_lltoa(DatumGetInt64(cols[COL_ID]), buf->data + buf->len);
	buf->data[buf->len++] = '\t';
	name = outbox_render(cols, cnulls, buf, job_id);
	name_len = strlen(name);
	id_len = strlen(job_id);
	enlargeStringInfo(buf, name_len + id_len + 3);
	buf->data[buf->len++] = '\t';
	memcpy(buf->data + buf->len, name, name_len);
	buf->len += name_len;
	buf->data[buf->len++] = '\t';
	memcpy(buf->data + buf->len, job_id, id_len);
	buf->len += id_len;
	buf->data[buf->len++] = '\n';
	buf->data[buf->len] = '\0';
}

/* Put the result row (id, job_name, job_id, body) into the tuplestore. */
static void
put_row(ClaimOut *out, Datum id, const text *name, const text *job_id,
		const text *body)
{
	Datum values[4];
	bool nulls[4] = {false, false, false, false};

	values[0] = id;
	values[1] = PointerGetDatum(name);
	values[2] = PointerGetDatum(job_id);
	values[3] = PointerGetDatum(body);
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values,
						 nulls);
}

/*
 * Render a taken row into the claim's result.  The body is rendered after a
 * varlena header that out->body keeps in front of it, and the jobId after
 * one on the stack, so both are text values as rendered, with no copy.
 */
static void
emit(Relation rel, HeapTuple tup, ClaimOut *out, int64 *id)
{
	Datum cols[NCOLS];
	bool cnulls[NCOLS];
	union
	{
		int32 align; /* SET_VARSIZE() writes a 4-byte header */
		char data[VARHDRSZ + SC_JOB_ID_TEXT];
	} job_id;
	StringInfo body = &out->body;
	const char *name;

	outbox_deform(rel, tup, cols, cnulls);
	if (cnulls[COL_ID])
		elog(ERROR, "outbox row without an id");
	*id = DatumGetInt64(cols[COL_ID]);
	if (out->packed != NULL)
	{
		emit_packed(cols, cnulls, out->packed);
		return;
	}
	resetStringInfo(body);
	body->len = VARHDRSZ; /* the header; the buffer holds at least 1 KiB */
	name = outbox_render(cols, cnulls, body, job_id.data + VARHDRSZ);
	SET_VARSIZE(body->data, body->len);
	SET_VARSIZE(job_id.data, VARHDRSZ + strlen(job_id.data + VARHDRSZ));
	put_row(out, cols[COL_ID], job_name_text(name), (text *) job_id.data,
			(text *) body->data);
}

/*
 * Whether tup, a row the claim's snapshot sees, is being taken by another
 * transaction: its xmax is a deleter that was in progress when the snapshot
 * was taken (another open claim).  heap_delete() would refuse it too, after
 * locking its page exclusively; with two claims in flight (the publisher's
 * pipeline) that was one refused delete per job taken (docs/performance.md,
 * P7).  Read from the pinned page without its content lock, as a hint: a
 * torn or stale answer only decides whether heap_delete() is asked, and a
 * row skipped wrongly (its deleter has just rolled back) stays in the outbox
 * for the next claim, which sees the rollback.
 */
static bool
taken_by_another(HeapTuple tup)
{
	uint16 infomask = tup->t_data->t_infomask;
	TransactionId xmax = HeapTupleHeaderGetRawXmax(tup->t_data);

	if ((infomask & (HEAP_XMAX_INVALID | HEAP_XMAX_IS_MULTI)) != 0 ||
		HEAP_XMAX_IS_LOCKED_ONLY(infomask))
		return false;
	return TransactionIdIsNormal(xmax) &&
		!TransactionIdIsCurrentTransactionId(xmax);
}

/*
 * One pass of a claim: take up to max rows with lo <= ctid <= hi, render
 * them into the result, remember them.  Returns the number taken; *first is
 * the block of the first.
 */
static int
take_range(Relation rel, ItemPointer lo, ItemPointer hi, int max,
		   ClaimOut *out, BlockNumber *first)
{
	TableScanDesc scan =
		table_beginscan_tidrange(rel, GetActiveSnapshot(), lo, hi);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	CommandId cid = GetCurrentCommandId(true);
	int n = 0;

	while (n < max && !claim_out_full(out) &&
		   table_scan_getnextslot_tidrange(scan, ForwardScanDirection, slot))
	{
		ItemPointerData tid = slot->tts_tid;
		TM_FailureData tmfd;
		MemoryContext old;
		HeapTuple tup;
		bool should_free;
		int64 id;

		/* not waiting: a row another claim holds (or took) is skipped */
		tup = ExecFetchSlotHeapTuple(slot, false, &should_free);
		if (taken_by_another(tup) ||
			heap_delete(rel, &tid, cid, InvalidSnapshot, false, &tmfd,
						false) != TM_Ok)
			continue;
		old = MemoryContextSwitchTo(out->rowcxt);
		emit(rel, tup, out, &id);
		remember(rel, tup, id);
		if (n++ == 0)
			*first = ItemPointerGetBlockNumber(&tid);
		MemoryContextSwitchTo(old);
		MemoryContextReset(out->rowcxt);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	return n;
}

/*
 * Where the pass below the cursor starts, for a claim that took got rows
 * ahead of it (see the file header): block 0 if got is 0 or a full pass is
 * due, else SC_CLAIM_LOOKBACK_BLOCKS below the cursor.
 */
static BlockNumber
wrap_start(int got)
{
	if (got > 0 && claim_cursor > SC_CLAIM_LOOKBACK_BLOCKS &&
		++claims_since_full_wrap < SC_CLAIM_FULL_WRAP_EVERY)
		return claim_cursor - SC_CLAIM_LOOKBACK_BLOCKS;
	claims_since_full_wrap = 0;
	return 0;
}

/*
 * Take up to max jobs (see the file header) into out; fn names the SQL
 * function for messages.  Both claims' one code path.
 */
static void
claim_into(int32 max, ClaimOut *out, const char *fn)
{
	ItemPointerData lo, hi;
	BlockNumber first = InvalidBlockNumber;
	Relation rel;
	Oid relid;
	int got;

	if (max < 1)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("max must be at least 1"),
			 errdetail(
				 "It is the largest number of outbox rows one claim returns.")));
	PreventCommandIfReadOnly(fn);
	PreventCommandDuringRecovery(fn);
	relid = outbox_relation();
	rel = table_open(relid, RowExclusiveLock);
	if (OidIsValid(taken_relid) && taken_relid != relid && taken != NULL)
		elog(
			ERROR,
			"sharecount.outbox was re-created in this transaction after a claim");
	taken_relid = relid;

	ItemPointerSet(&lo, claim_cursor, FirstOffsetNumber);
	ItemPointerSet(&hi, MaxBlockNumber, MaxOffsetNumber);
	got = take_range(rel, &lo, &hi, max, out, &first);
	if (got < max && claim_cursor > 0 && !claim_out_full(out))
	{
		BlockNumber below_first = InvalidBlockNumber;
		BlockNumber from =
			wrap_start(got); /* ItemPointerSet evaluates twice */

		ItemPointerSet(&hi, claim_cursor - 1, MaxOffsetNumber);
		ItemPointerSet(&lo, from, FirstOffsetNumber);
		if (take_range(rel, &lo, &hi, max - got, out, &below_first) > 0 &&
			got == 0)
			first = below_first;
	}
	if (out->packed == NULL)
		pfree(out->body.data);
	MemoryContextDelete(out->rowcxt);
	table_close(rel, NoLock);
	/* nothing found: start from the beginning next time */
	claim_cursor = BlockNumberIsValid(first) ? first : 0;
}

/*
 * sharecount_outbox_claim(max int) -> TABLE(id, job_name, job_id, body):
 * take up to max jobs (see the file header).
 */
Datum
sharecount_outbox_claim(PG_FUNCTION_ARGS)
{
	int32 max = PG_GETARG_INT32(0);
	ClaimOut out;

	InitMaterializedSRF(fcinfo, 0);
	claim_out_init(&out, (ReturnSetInfo *) fcinfo->resultinfo, NULL);
	claim_into(max, &out, "sharecount_outbox_claim()");
	return (Datum) 0;
}

/*
 * sharecount_outbox_claim_packed(max int) -> text: the same claim, its jobs
 * as one value of lines (see "Packed claim" above); '' when it took none.
 */
Datum
sharecount_outbox_claim_packed(PG_FUNCTION_ARGS)
{
	StringInfoData packed;
	ClaimOut out;

	initStringInfo(&packed);
	packed.len = VARHDRSZ; /* the header, set at the end */
	claim_out_init(&out, NULL, &packed);
	claim_into(PG_GETARG_INT32(0), &out, "sharecount_outbox_claim_packed()");
	SET_VARSIZE(packed.data, packed.len);
	PG_RETURN_TEXT_P((text *) packed.data);
}

/* Delete the rows with these ids that this transaction did not claim. */
static int64
delete_by_id(Datum *ids, int n)
{
	static SPIPlanPtr plan = NULL;
	Datum args[1];
	Oid argtypes[1] = {INT8ARRAYOID};
	int rc;
	int64 deleted;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = PointerGetDatum(
		construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	rc = SPI_execute_plan(
		sc_prepare_once(
			&plan, "DELETE FROM sharecount.outbox o WHERE o.id = ANY ($1)", 1,
			argtypes),
		args, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "outbox delete failed: %s", SPI_result_code_string(rc));
	deleted = (int64) SPI_processed; /* SPI_finish() restores the caller's */
	SPI_finish();
	return deleted;
}

/*
 * sharecount_outbox_done(ids bigint[]) -> bigint: the given jobs are done
 * (published and confirmed): confirm the ones this transaction claimed,
 * delete the others; return how many rows that removed.
 */
Datum
sharecount_outbox_done(PG_FUNCTION_ARGS)
{
	ArrayType *ids = PG_GETARG_ARRAYTYPE_P(0);
	Datum *elems;
	bool *elem_nulls;
	int nelems, i, nslow = 0;
	Datum *slow_ids;
	int64 done = 0;

	if (ARR_NDIM(ids) > 1)
		ereport(
			ERROR,
			(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
			 errmsg("ids must be a one-dimensional array"),
			 errdetail(
				 "sharecount_outbox_done() takes the ids returned by sharecount_outbox_claim() as a bigint[].")));
	deconstruct_array(ids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &elem_nulls, &nelems);
	slow_ids = palloc(sizeof(Datum) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
	{
		TakenRow *tr;

		if (elem_nulls[i])
			continue;
		tr = taken ? hash_search(taken, &elems[i], HASH_FIND, NULL) : NULL;
		if (tr == NULL)
		{
			slow_ids[nslow++] = elems[i];
			continue;
		}
		for (; tr != NULL; tr = tr->dup)
			if (tr->done_by == InvalidSubTransactionId)
			{
				tr->done_by = GetCurrentSubTransactionId();
				done++;
			}
	}
	if (nslow > 0)
		done += delete_by_id(slow_ids, nslow);
	PG_RETURN_INT64(done);
}
