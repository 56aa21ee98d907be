/*
 * registry.c: a tracked table's registration (sharecount.tracked), as the
 * trigger needs it: whether the table is tracked at all, and how each mapped
 * column is read from its rows.
 *
 * Rules:
 * - The registry row is found by a direct scan of the registry's primary key
 *   index (no SPI, no privilege check: the application's role has no right
 *   on schema sharecount), with the latest snapshot, so a registration
 *   committed by sharecount_track() is seen by the next statement that locks
 *   the table.
 * - Columns are looked up by the names the registry holds; the registry
 *   follows ALTER TABLE ... RENAME COLUMN (the event trigger
 *   sharecount_follow_columns, docs/extension.md "Renaming and dropping
 *   columns").
 * - The result is cached per backend by table OID and dropped on a relcache
 *   invalidation of that table (CREATE/DROP TRIGGER, which track and untrack
 *   do, and every ALTER TABLE send one) or of the registry itself.  An
 *   unregistered table is not cached (the trigger raises an error for it).
 * - Memory: the cache and the output functions' FmgrInfo live in
 *   TopMemoryContext; the scan's allocations in the caller's context.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "sharecount.h"
#include "track.h"

/* The registry's mapping columns, in TrackedColumn order. */
static const char *const registry_cols[TC_NCOLS] = {
	"id_column",	  "content_type_column", "content_id_column",
	"user_id_column", "channel_id_column",	 "campaign_id_column"};

static HTAB *tracked_cache = NULL;
/*
 * The entry sc_tracked_get() returned last (NULL: none), checked before the
 * hash: a backend that writes one tracked table looks it up once per row.
 * Reset when its entry is removed; an invalidated entry is not valid, so the
 * check falls through to the hash and the registry.
 */
static TrackedTable *tracked_last = NULL;
static Oid registry_relid =
	InvalidOid; /* sharecount.tracked, once looked up */

static void
tracked_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS st;
	TrackedTable *tt;
	bool all = (relid == InvalidOid || relid == registry_relid);

	if (all)
		registry_relid = InvalidOid;
	hash_seq_init(&st, tracked_cache);
	while ((tt = hash_seq_search(&st)) != NULL)
		if (all || tt->relid == relid)
			tt->valid = false;
}

/*
 * Read relid's registry row into names[]; false if the table is not tracked.
 */
static bool
registry_read(Oid relid, char names[TC_NCOLS][NAMEDATALEN])
{
	Relation reg;
	Oid pkey;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple tup;
	Snapshot snap;
	bool found = false;

	registry_relid = sc_state_relid("tracked");
	reg = table_open(registry_relid, AccessShareLock);
	pkey = RelationGetPrimaryKeyIndex(reg);
	if (!OidIsValid(pkey))
		elog(ERROR, "sharecount.tracked has no primary key");
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(reg, pkey, true, snap, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc desc = RelationGetDescr(reg);
		int c;

		for (c = 0; c < TC_NCOLS; c++)
		{
			int attno = SPI_fnumber(desc, registry_cols[c]);
			bool isnull;
			Datum d;

			if (attno <= 0)
				elog(ERROR, "sharecount.tracked has no column \"%s\"",
					 registry_cols[c]);
			d = heap_getattr(tup, attno, desc, &isnull);
			strlcpy(names[c], isnull ? "" : NameStr(*DatumGetName(d)),
					NAMEDATALEN);
		}
		found = true;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(reg, AccessShareLock);
	return found;
}

/* How the column called name is read from rel's rows. */
static void
resolve_column(ColumnReader *cr, TupleDesc desc, const char *name)
{
	Oid typid;

	cr->kind = COLUMN_TEXT;
	if (name[0] == '\0')
	{
		cr->attno = 0;
		return;
	}
	cr->attno = SPI_fnumber(desc, name);
	if (cr->attno <= 0)
	{
		cr->attno = -1; /* system columns are not job fields either */
		return;
	}
	typid = TupleDescAttr(desc, cr->attno - 1)->atttypid;
	if (typid == TEXTOID || typid == VARCHAROID)
		cr->kind = COLUMN_TEXT;
	else if (typid == UUIDOID)
		cr->kind = COLUMN_UUID;
	else
	{
		Oid outfunc;
		bool isvarlena;

		cr->kind = COLUMN_OTHER;
		getTypeOutputInfo(typid, &outfunc, &isvarlena);
		fmgr_info_cxt(outfunc, &cr->out, TopMemoryContext);
	}
}

/*
 * rel's registration, or NULL if rel is not tracked.  Resolving the columns
 * by name and their output functions on every row was about 2,500
 * instructions of the ~35,000 that tracking adds to an INSERT
 * (bench/p1_callgrind.sh); a cached entry costs one hash lookup.
 */
TrackedTable *
sc_tracked_get(Relation rel)
{
	Oid relid = RelationGetRelid(rel);
	TrackedTable *tt;
	bool found;
	char names[TC_NCOLS][NAMEDATALEN];
	int c;

	if (tracked_cache == NULL)
	{
		HASHCTL ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TrackedTable);
		tracked_cache = hash_create("sharecount tracked tables", 16, &ctl,
									HASH_ELEM | HASH_BLOBS);
		CacheRegisterRelcacheCallback(tracked_invalidate, (Datum) 0);
	}
	if (tracked_last != NULL && tracked_last->relid == relid &&
		tracked_last->valid)
		return tracked_last;
	tt = hash_search(tracked_cache, &relid, HASH_FIND, NULL);
	if (tt != NULL && tt->valid)
		return tracked_last = tt;

	/* not cached: read the registry before creating the entry */
	if (!registry_read(relid, names))
	{
		if (tt != NULL)
			hash_search(tracked_cache, &relid, HASH_REMOVE, NULL);
		tracked_last = NULL;
		return NULL;
	}
	tt = hash_search(tracked_cache, &relid, HASH_ENTER, &found);
	tt->valid = false;
	tt->max_attno = 0;
	for (c = 0; c < TC_NCOLS; c++)
	{
		memcpy(tt->names[c], names[c], NAMEDATALEN);
		resolve_column(&tt->col[c], RelationGetDescr(rel), names[c]);
		tt->max_attno = Max(tt->max_attno, tt->col[c].attno);
	}
	tt->valid = true;
	return tracked_last = tt;
}
