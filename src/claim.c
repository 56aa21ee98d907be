/*
 * claim.c: sharecount_outbox_claim() and sharecount_outbox_done(), the
 * publisher's side of the outbox.
 *
 * The outbox has no index (docs/performance.md, P1): an index entry was a
 * third of what tracking adds to an application's INSERT.  So rows are found
 * by their place in the heap:
 *
 * - A claim scans the outbox in physical order with a TID range scan, from
 *   this session's cursor to the end and then from the start up to the
 *   cursor, locking up to max rows FOR UPDATE SKIP LOCKED.  The cursor moves
 *   to the block of the first row a claim takes, so a claim does not re-read
 *   the pages that earlier claims emptied (their dead rows stay until VACUUM)
 *   and every row is reached within one pass.  New rows are appended, so
 *   physical order is insertion order, except for rows written into space
 *   that VACUUM freed: those are claimed on the next pass.
 * - A claim remembers, for the rest of its transaction, where each row it
 *   locked is (id -> ctid); sharecount_outbox_done() deletes those rows by
 *   ctid (a TID scan) and checks the id too.  Locked rows cannot move or be
 *   deleted by anyone else, so the ctid is right for as long as the claim's
 *   transaction lasts.  Ids the claim did not take in this transaction are
 *   deleted by a sequential scan (correct, just slower).
 *
 * Rules: the cursor and the map are per backend; the map belongs to one
 * transaction: it lives in TopTransactionContext and a transaction callback
 * forgets it when the transaction ends (commit, abort or prepare).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/itemptr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "sharecount.h"

PG_FUNCTION_INFO_V1(sharecount_outbox_claim);
PG_FUNCTION_INFO_V1(sharecount_outbox_done);

/* Where the next claim of this session starts scanning. */
static BlockNumber claim_cursor = 0;

/* id -> ctid of the rows claimed in the current transaction. */
typedef struct ClaimedRow
{
	int64		id;				/* hash key */
	ItemPointerData tid;
} ClaimedRow;

static HTAB *claimed = NULL;
static bool claimed_callback_registered = false;

static void
claimed_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		claimed = NULL;			/* freed with TopTransactionContext */
}

/* The map of this transaction's claims; created on first use if create. */
static HTAB *
claimed_map(bool create)
{
	HASHCTL		ctl;

	if (claimed != NULL || !create)
		return claimed;
	if (!claimed_callback_registered)
	{
		RegisterXactCallback(claimed_xact_callback, NULL);
		claimed_callback_registered = true;
	}
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ClaimedRow);
	ctl.hcxt = TopTransactionContext;
	claimed = hash_create("sharecount claimed rows", 1024, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return claimed;
}

/*
 * One pass of a claim: run plan (one of the CLAIM_SQL queries) for up to max
 * rows from or below from, render them into the tuplestore, remember them.
 * Returns the number of rows taken; *first_block is the block of the first.
 */
static uint64
claim_range(SPIPlanPtr plan, ItemPointerData *from, int max, ReturnSetInfo *rsinfo,
			BlockNumber *first_block)
{
	Datum		args[2];
	HTAB	   *map;
	uint64		i,
				n;
	int			rc;

	args[0] = PointerGetDatum(from);
	args[1] = Int32GetDatum(max);
	rc = SPI_execute_plan(plan, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "outbox claim query failed: %s", SPI_result_code_string(rc));
	n = SPI_processed;
	map = claimed_map(true);
	for (i = 0; i < n; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		values[4];
		bool		nulls[4];
		bool		isnull;
		ItemPointer tid;
		ClaimedRow *cr;
		int			c;

		for (c = 0; c < 4; c++)
			values[c] = SPI_getbinval(row, desc, c + 1, &nulls[c]);
		tid = (ItemPointer) DatumGetPointer(SPI_getbinval(row, desc, 5, &isnull));
		if (i == 0)
			*first_block = ItemPointerGetBlockNumber(tid);
		cr = hash_search(map, &values[0], HASH_ENTER, NULL);
		cr->tid = *tid;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return n;
}

/* The claim query: rows with ctid <op> $1, at most $2, locked then rendered. */
#define CLAIM_SQL(op) \
	"WITH c AS MATERIALIZED (SELECT o.ctid AS t, o FROM sharecount.outbox o " \
	"WHERE o.ctid " op " $1 LIMIT $2 FOR UPDATE SKIP LOCKED) " \
	"SELECT (c.o).id, sharecount.job_name(c.o), (c.o).job_id::pg_catalog.text, " \
	"sharecount.job_body(c.o), c.t FROM c"

/*
 * sharecount_outbox_claim(max int) -> TABLE(id, job_name, job_id, body):
 * see the file header.  Rows are locked first (a MATERIALIZED CTE) and
 * rendered after, so rows skipped because another bridge holds them are
 * never rendered.
 */
Datum
sharecount_outbox_claim(PG_FUNCTION_ARGS)
{
	int32		max = PG_GETARG_INT32(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static SPIPlanPtr plan_from = NULL;
	static SPIPlanPtr plan_below = NULL;
	Oid			argtypes[2] = {TIDOID, INT4OID};
	ItemPointerData from;
	BlockNumber first = InvalidBlockNumber;
	uint64		got;

	if (max < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be at least 1"),
				 errdetail("It is the largest number of outbox rows one claim returns.")));
	InitMaterializedSRF(fcinfo, 0);
	ItemPointerSet(&from, claim_cursor, FirstOffsetNumber);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	got = claim_range(sc_prepare_once(&plan_from, CLAIM_SQL(">="), 2, argtypes), &from, max, rsinfo, &first);
	if (got < (uint64) max && claim_cursor > 0)
	{
		BlockNumber below_first = InvalidBlockNumber;

		if (claim_range(sc_prepare_once(&plan_below, CLAIM_SQL("<"), 2, argtypes), &from,
						max - (int) got, rsinfo, &below_first) > 0 && got == 0)
			first = below_first;
	}
	SPI_finish();
	/* nothing found: start from the beginning next time */
	claim_cursor = BlockNumberIsValid(first) ? first : 0;
	return (Datum) 0;
}

/*
 * sharecount_outbox_done(ids bigint[]) -> bigint: delete the given jobs,
 * return how many were deleted.
 */
Datum
sharecount_outbox_done(PG_FUNCTION_ARGS)
{
	ArrayType  *ids = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems,
				i,
				nfast = 0,
				nslow = 0;
	ItemPointerData *tids;
	Datum	   *fast_ids;
	Datum	   *slow_ids;
	HTAB	   *map = claimed_map(false);
	int64		deleted = 0;
	static SPIPlanPtr plan_fast = NULL;
	static SPIPlanPtr plan_slow = NULL;

	if (ARR_NDIM(ids) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("ids must be a one-dimensional array"),
				 errdetail("sharecount_outbox_done() takes the ids returned by sharecount_outbox_claim() as a bigint[].")));
	deconstruct_array(ids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &elem_nulls, &nelems);
	if (nelems == 0)
		PG_RETURN_INT64(0);
	tids = palloc(sizeof(ItemPointerData) * nelems);
	fast_ids = palloc(sizeof(Datum) * nelems);
	slow_ids = palloc(sizeof(Datum) * nelems);
	for (i = 0; i < nelems; i++)
	{
		ClaimedRow *cr;

		if (elem_nulls[i])
			continue;
		cr = map ? hash_search(map, &elems[i], HASH_FIND, NULL) : NULL;
		if (cr != NULL)
		{
			tids[nfast] = cr->tid;
			fast_ids[nfast++] = elems[i];
			hash_search(map, &elems[i], HASH_REMOVE, NULL);
		}
		else
			slow_ids[nslow++] = elems[i];
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (nfast > 0)
	{
		Datum	   *tid_datums = palloc(sizeof(Datum) * nfast);
		Datum		args[2];
		Oid			argtypes[2] = {TIDARRAYOID, INT8ARRAYOID};
		int			rc;

		for (i = 0; i < nfast; i++)
			tid_datums[i] = PointerGetDatum(&tids[i]);
		args[0] = PointerGetDatum(construct_array(tid_datums, nfast, TIDOID, sizeof(ItemPointerData),
												  false, TYPALIGN_SHORT));
		args[1] = PointerGetDatum(construct_array(fast_ids, nfast, INT8OID, 8, FLOAT8PASSBYVAL,
												  TYPALIGN_DOUBLE));
		rc = SPI_execute_plan(sc_prepare_once(&plan_fast,
											  "DELETE FROM sharecount.outbox o WHERE o.ctid = ANY ($1) AND o.id = ANY ($2)",
											  2, argtypes), args, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "outbox delete failed: %s", SPI_result_code_string(rc));
		deleted += SPI_processed;
	}
	if (nslow > 0)
	{
		Datum		args[1];
		Oid			argtypes[1] = {INT8ARRAYOID};
		int			rc;

		args[0] = PointerGetDatum(construct_array(slow_ids, nslow, INT8OID, 8, FLOAT8PASSBYVAL,
												  TYPALIGN_DOUBLE));
		rc = SPI_execute_plan(sc_prepare_once(&plan_slow, "DELETE FROM sharecount.outbox o WHERE o.id = ANY ($1)",
											  1, argtypes), args, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "outbox delete failed: %s", SPI_result_code_string(rc));
		deleted += SPI_processed;
	}
	SPI_finish();
	PG_RETURN_INT64(deleted);
}
