/*
 * read.c: sharecount_get(), sharecount_get_many() and
 * sharecount_get_versioned(), the hot read path.
 *
 * A read is one primary-key probe of sharecount.counts done directly with the
 * index (systable_beginscan with the query's snapshot): no SPI, no planning,
 * no SQL-function overhead.  A SQL function could not be inlined here (STRICT
 * plus coalesce), and would be re-planned on every execution.
 *
 * Rules: the keys are COLLATE "C", so the scan keys use texteq with the C
 * collation (ScanKeyInit's default).  The result is greatest(stored, 0): a
 * stored value may be negative for a moment when a delete is applied before
 * its create.  No privilege on schema sharecount is needed: EXECUTE on these
 * functions is the read permission (REVOKE it to restrict reads).
 * Relation OIDs (and the version column's number) are cached in fn_extra,
 * i.e. for one query at most.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "sharecount.h"

PG_FUNCTION_INFO_V1(sharecount_get);
PG_FUNCTION_INFO_V1(sharecount_get_many);
PG_FUNCTION_INFO_V1(sharecount_get_versioned);

/* Column of sharecount.counts holding the count (1.0 layout, never moves). */
#define COUNTS_ATT_SHARE_COUNT 3

typedef struct CountsRel
{
	Oid relid;
	Oid indexid;
	AttrNumber version_att; /* InvalidAttrNumber under the 1.0 schema */
} CountsRel;

static CountsRel *
counts_rel(FunctionCallInfo fcinfo)
{
	CountsRel *cr = (CountsRel *) fcinfo->flinfo->fn_extra;

	if (cr == NULL)
	{
		Oid nsp;

		cr = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(CountsRel));
		cr->relid = sc_state_relid("counts");
		nsp = get_rel_namespace(cr->relid);
		cr->indexid = get_relname_relid("counts_pkey", nsp);
		if (!OidIsValid(cr->indexid))
			ereport(
				ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("index \"sharecount.counts_pkey\" does not exist")));
		cr->version_att = get_attnum(cr->relid, "version");
		fcinfo->flinfo->fn_extra = cr;
	}
	return cr;
}

/*
 * The clamped count of one key in an open counts relation (0 if unknown),
 * and its version in *version if that is not NULL (0 if unknown).
 */
static int64
lookup(Relation rel, const CountsRel *cr, text *ctype, text *cid,
	   int64 *version)
{
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple tup;
	int64 count = 0;

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(ctype));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(cid));
	if (version != NULL)
		*version = 0;
	scan = systable_beginscan(rel, cr->indexid, true, GetActiveSnapshot(), 2,
							  key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool isnull;
		Datum d = heap_getattr(tup, COUNTS_ATT_SHARE_COUNT,
							   RelationGetDescr(rel), &isnull);

		if (!isnull)
			count = DatumGetInt64(d);
		if (version != NULL && cr->version_att != InvalidAttrNumber)
		{
			d = heap_getattr(tup, cr->version_att, RelationGetDescr(rel),
							 &isnull);
			if (!isnull)
				*version = DatumGetInt64(d);
		}
	}
	systable_endscan(scan);
	return Max(count, 0);
}

Datum
sharecount_get(PG_FUNCTION_ARGS)
{
	text *ctype = PG_GETARG_TEXT_PP(0);
	text *cid = PG_GETARG_TEXT_PP(1);
	CountsRel *cr = counts_rel(fcinfo);
	Relation rel;
	int64 count;

	rel = table_open(cr->relid, AccessShareLock);
	count = lookup(rel, cr, ctype, cid, NULL);
	table_close(rel, AccessShareLock);
	PG_RETURN_INT64(count);
}

/*
 * The rows of sharecount_get_many and sharecount_get_versioned: one row per
 * asked id, in the order asked (an id asked twice appears twice; a NULL id
 * gives a row of NULLs); content_id, share_count, version, of which the
 * caller's result type takes the first two or all three.
 */
static Datum
get_many(FunctionCallInfo fcinfo)
{
	text *ctype = PG_GETARG_TEXT_PP(0);
	ArrayType *ids = PG_GETARG_ARRAYTYPE_P(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CountsRel *cr;
	Relation rel;
	Datum *elems;
	bool *nulls;
	int n, i;

	InitMaterializedSRF(fcinfo, 0);
	sc_array_elements(ids, TEXTOID, "content_ids", &elems, &nulls, &n);

	cr = counts_rel(fcinfo);
	rel = table_open(cr->relid, AccessShareLock);
	for (i = 0; i < n; i++)
	{
		Datum values[3] = {0, 0, 0};
		bool vnulls[3] = {true, true, true};
		int64 version;

		if (!nulls[i])
		{
			values[0] = elems[i];
			values[1] = Int64GetDatum(
				lookup(rel, cr, ctype,
					   (text *) PG_DETOAST_DATUM_PACKED(elems[i]), &version));
			values[2] = Int64GetDatum(version);
			vnulls[0] = vnulls[1] = vnulls[2] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 vnulls);
	}
	table_close(rel, AccessShareLock);
	return (Datum) 0;
}

/* sharecount_get_many(content_type, content_ids) -> TABLE(content_id, share_count) */
Datum
sharecount_get_many(PG_FUNCTION_ARGS)
{
	return get_many(fcinfo);
}

/*
 * sharecount_get_versioned(content_type, content_ids) -> TABLE(content_id,
 * share_count, version): as sharecount_get_many, with each key's version
 * (0 for an unknown key), for caches that keep the highest (docs/sql.md).
 */
Datum
sharecount_get_versioned(PG_FUNCTION_ARGS)
{
	return get_many(fcinfo);
}
