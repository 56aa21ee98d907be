/*
 * apply.c: sharecount_apply(), sharecount_apply_batch(),
 * sharecount_apply_batch_changes() and sharecount_apply_json() (the
 * consumer's, the batch as JSON text, jobjson.c), the consumer side: validate jobs
 * (jobcheck.c), dedupe them by jobId (dedupe.c), and add their deltas to the
 * counts.
 *
 * A job is validated completely before anything is written; a malformed job
 * is SQLSTATE 22023 in sharecount_apply() and status 'invalid' in a batch, and
 * changes nothing.  Per batch: the dedupe state's statements (dedupe.c), one
 * upsert of the deltas aggregated per key, one upsert of the stats shard.
 * Under 1.1 the counts upsert also adds 1 to the version of every key whose
 * net delta is not 0, and returns the new rows (the changes the bridge
 * publishes as events, docs/live.md); under the 1.0 schema (the library
 * updated, ALTER EXTENSION UPDATE not yet run) it writes what 1.0 wrote.
 * The result rows of the batch functions are written by apply_rows.c.
 *
 * Rules:
 * - The dedupe rows are locked first (dedupe.c), then the keys in sorted
 *   order, so that concurrent batches sharing jobs or keys wait on each other
 *   instead of deadlocking; a batch that waits on another's uncommitted jobId
 *   sees it as a duplicate once the other commits (or applies it if the other
 *   rolls back).
 * - Plans are prepared once per backend (SPI_keepplan).  These functions are
 *   SECURITY DEFINER with search_path = pg_catalog, pg_temp, so the plans run
 *   as the extension owner under a fixed path.
 * - Memory: everything is palloc'd in the function's context and freed with it;
 *   what must outlive SPI_finish (the changes) is SPI_palloc'd.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"

#include "sharecount.h"
#include "apply.h"

PG_FUNCTION_INFO_V1(sharecount_apply);
PG_FUNCTION_INFO_V1(sharecount_apply_batch);
PG_FUNCTION_INFO_V1(sharecount_apply_batch_changes);
PG_FUNCTION_INFO_V1(sharecount_apply_json);

/* An entry of the batch's jobId set. */
typedef struct JobIdEntry
{
	char job_id[SC_JOB_ID_MAX + 1];
} JobIdEntry;

typedef struct KeyEntry
{
	struct
	{
		char ctype[SC_CONTENT_TYPE_MAX + 1];
		char cid[SC_CONTENT_ID_MAX + 1];
	} key;
	int64 delta;
} KeyEntry;

/* The changes of one apply (SPI_palloc'd: they outlive SPI_finish). */
typedef struct ApplyChanges
{
	KeyChange *v;
	int n;
} ApplyChanges;

/*
 * The 1.1 counts upsert (add_counts) of the rows u(t, i, d): type, id,
 * delta; it bumps the versions and returns the rows.
 */
#define COUNTS_UPSERT(rows) \
	"INSERT INTO sharecount.counts AS c (content_type, content_id, share_count, updated_at, version) " \
	"SELECT u.t, u.i, u.d, pg_catalog.clock_timestamp(), CASE WHEN u.d <> 0 THEN 1 ELSE 0 END " \
	"FROM " rows " AS u(t, i, d) " \
	"ON CONFLICT (content_type, content_id) DO UPDATE " \
	"SET share_count = c.share_count + excluded.share_count, " \
	"updated_at = excluded.updated_at, version = c.version + excluded.version " \
	"RETURNING c.content_type, c.content_id, c.share_count, c.version"

static SPIPlanPtr counts_plan = NULL;	  /* 1.1, arrays: unnest() */
static SPIPlanPtr counts_one_plan = NULL; /* 1.1, one key: scalars */
static SPIPlanPtr counts_legacy_plan =
	NULL; /* the 1.0 schema: no version column */
static SPIPlanPtr stats_plan = NULL;
static SPIPlanPtr stats_legacy_plan = NULL;

static int
cmp_key(const void *a, const void *b)
{
	const KeyEntry *x = *(KeyEntry *const *) a;
	const KeyEntry *y = *(KeyEntry *const *) b;
	int c = strcmp(x->key.ctype, y->key.ctype);

	return c != 0 ? c : strcmp(x->key.cid, y->key.cid);
}

Datum
sc_text_array(char **strs, int n)
{
	Datum *d = palloc(sizeof(Datum) * Max(n, 1));
	int i;

	for (i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(strs[i]);
	return PointerGetDatum(
		construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* A hash table for one batch of n items, in the current memory context. */
static HTAB *
batch_hash(const char *name, Size keysize, Size entrysize, int n, int keykind)
{
	HASHCTL ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, Max(n, 16), &ctl,
					   HASH_ELEM | keykind | HASH_CONTEXT);
}

/*
 * Whether the pending items' jobIds increase strictly in the batch's order,
 * shorter first, then bytewise (as a publisher's "<origin>-<seq>" jobIds
 * come): then no two are equal, and no set of them is needed.
 */
static bool
ids_increase(const BatchItem *items, int n)
{
	const char *prev = NULL;
	size_t prev_len = 0;
	int i;

	for (i = 0; i < n; i++)
	{
		const char *id = items[i].job.job_id;
		size_t len;

		if (items[i].status != ST_PENDING)
			continue;
		len = strlen(id);
		if (prev != NULL &&
			(len < prev_len ||
			 (len == prev_len && memcmp(prev, id, len) >= 0)))
			return false;
		prev = id;
		prev_len = len;
	}
	return true;
}

/*
 * Mark the pending items whose jobId came earlier in the batch as duplicates
 * and return the distinct jobIds (*ids) with the item carrying each (*owner).
 */
static int
distinct_ids(BatchItem *items, int n, char ***ids, int **owner)
{
	HTAB *seen;
	int nids = 0;
	int i;

	*ids = palloc(sizeof(char *) * Max(n, 1));
	*owner = palloc(sizeof(int) * Max(n, 1));
	if (ids_increase(items, n))
	{
		for (i = 0; i < n; i++)
			if (items[i].status == ST_PENDING)
			{
				(*ids)[nids] = items[i].job.job_id;
				(*owner)[nids++] = i;
			}
		return nids;
	}
	seen = batch_hash("sharecount batch jobIds", SC_JOB_ID_MAX + 1,
					  sizeof(JobIdEntry), n, HASH_STRINGS);
	for (i = 0; i < n; i++)
	{
		bool found;

		if (items[i].status != ST_PENDING)
			continue;
		(void) hash_search(seen, items[i].job.job_id, HASH_ENTER, &found);
		if (found)
			items[i].status = ST_DUPLICATE;
		else
		{
			(*ids)[nids] = items[i].job.job_id;
			(*owner)[nids++] = i;
		}
	}
	return nids;
}

/*
 * The applied items' deltas summed per key, in a hash (for the upsert's
 * returned rows) and as a list sorted by key (the lock order); *nkeys keys.
 */
static KeyEntry **
sum_keys(BatchItem *items, int n, HTAB **keys, int *nkeys)
{
	KeyEntry **klist;
	KeyEntry *ke;
	HASH_SEQ_STATUS seq;
	int i;

	KeyEntry *last = NULL; /* the previous applied item's key */

	*keys = batch_hash("sharecount batch keys", sizeof(((KeyEntry *) 0)->key),
					   sizeof(KeyEntry), n, HASH_BLOBS);
	*nkeys = 0;
	for (i = 0; i < n; i++)
	{
		KeyEntry k;
		bool found;

		if (items[i].status != ST_APPLIED)
			continue;
		/* a batch's jobs mostly repeat the previous one's key: no lookup */
		if (last != NULL && strcmp(last->key.cid, items[i].job.cid) == 0 &&
			strcmp(last->key.ctype, items[i].job.ctype) == 0)
		{
			last->delta += items[i].job.delta;
			continue;
		}
		memset(&k, 0, sizeof(k));
		strlcpy(k.key.ctype, items[i].job.ctype, sizeof(k.key.ctype));
		strlcpy(k.key.cid, items[i].job.cid, sizeof(k.key.cid));
		ke = hash_search(*keys, &k.key, HASH_ENTER, &found);
		if (!found)
		{
			ke->delta = 0;
			(*nkeys)++;
		}
		ke->delta += items[i].job.delta;
		last = ke;
	}
	klist = palloc(sizeof(KeyEntry *) * Max(*nkeys, 1));
	i = 0;
	hash_seq_init(&seq, *keys);
	while ((ke = hash_seq_search(&seq)) != NULL)
		klist[i++] = ke;
	qsort(klist, *nkeys, sizeof(KeyEntry *), cmp_key);
	return klist;
}

static char *
upper_strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *d = SPI_palloc(len);

	memcpy(d, s, len);
	return d;
}

static int
cmp_change(const void *a, const void *b)
{
	const KeyChange *x = a;
	const KeyChange *y = b;
	int c = strcmp(x->ctype, y->ctype);

	return c != 0 ? c : strcmp(x->cid, y->cid);
}

/*
 * The rows the 1.1 counts upsert returned (content_type, content_id,
 * share_count, version) whose key's net delta is not 0, sorted by key.
 */
static void
collect_changes(HTAB *keys, ApplyChanges *out)
{
	TupleDesc td = SPI_tuptable->tupdesc;
	uint64 i;

	out->n = 0;
	out->v = SPI_palloc(sizeof(KeyChange) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple t = SPI_tuptable->vals[i];
		KeyEntry k;
		KeyEntry *ke;
		KeyChange *ch;
		bool isnull;

		memset(&k, 0, sizeof(k));
		strlcpy(k.key.ctype, SPI_getvalue(t, td, 1), sizeof(k.key.ctype));
		strlcpy(k.key.cid, SPI_getvalue(t, td, 2), sizeof(k.key.cid));
		ke = hash_search(keys, &k.key, HASH_FIND, NULL);
		if (ke == NULL)
			elog(ERROR, "the counts upsert returned a key not in the batch");
		if (ke->delta == 0)
			continue;
		ch = &out->v[out->n++];
		ch->ctype = upper_strdup(k.key.ctype);
		ch->cid = upper_strdup(k.key.cid);
		ch->delta = ke->delta;
		ch->count = DatumGetInt64(SPI_getbinval(t, td, 3, &isnull));
		ch->version = DatumGetInt64(SPI_getbinval(t, td, 4, &isnull));
	}
	qsort(out->v, out->n, sizeof(KeyChange), cmp_change);
}

/*
 * Add the applied items' deltas to the counts: one upsert, keys sorted.
 * Under 1.1 (v1_1) each key with a net delta other than 0 gets version + 1,
 * and, if changes is not NULL, those keys' new rows are returned in it.
 */
static void
add_counts(BatchItem *items, int n, bool v1_1, ApplyChanges *changes)
{
	HTAB *keys;
	KeyEntry **klist;
	int nkeys;
	int i;
	char **kt;
	char **ki;
	Datum *kd;
	Oid types[3] = {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum values[3];
	SPIPlanPtr plan;

	klist = sum_keys(items, n, &keys, &nkeys);
	if (nkeys == 0)
		return;
	kt = palloc(sizeof(char *) * nkeys);
	ki = palloc(sizeof(char *) * nkeys);
	kd = palloc(sizeof(Datum) * nkeys);
	for (i = 0; i < nkeys; i++)
	{
		kt[i] = klist[i]->key.ctype;
		ki[i] = klist[i]->key.cid;
		kd[i] = Int64GetDatum(klist[i]->delta);
	}
	if (v1_1 && nkeys == 1)
	{
		/* one key (a hot key's batch): no unnest() to start per batch */
		Oid one_types[3] = {TEXTOID, TEXTOID, INT8OID};

		values[0] = CStringGetTextDatum(kt[0]);
		values[1] = CStringGetTextDatum(ki[0]);
		values[2] = kd[0];
		plan = sc_prepare_once(&counts_one_plan,
							   COUNTS_UPSERT("(VALUES ($1, $2, $3))"), 3,
							   one_types);
	}
	else
	{
		values[0] = sc_text_array(kt, nkeys);
		values[1] = sc_text_array(ki, nkeys);
		values[2] = PointerGetDatum(construct_array(
			kd, nkeys, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		plan = v1_1 ?
			sc_prepare_once(&counts_plan, COUNTS_UPSERT("unnest($1, $2, $3)"),
							3, types) :
			sc_prepare_once(
				&counts_legacy_plan,
				"INSERT INTO sharecount.counts AS c (content_type, content_id, share_count, updated_at) "
				"SELECT u.t, u.i, u.d, pg_catalog.clock_timestamp() "
				"FROM unnest($1, $2, $3) AS u(t, i, d) "
				"ON CONFLICT (content_type, content_id) DO UPDATE "
				"SET share_count = c.share_count + excluded.share_count, "
				"updated_at = excluded.updated_at",
				3, types);
	}
	if (SPI_execute_plan(plan, values, NULL, false, 0) !=
		(v1_1 ? SPI_OK_INSERT_RETURNING : SPI_OK_INSERT))
		elog(ERROR, "counts upsert failed");
	if (!v1_1)
		return;
	if (changes != NULL)
		collect_changes(keys, changes);
}

/*
 * Add the batch's outcome to this backend's stats shard; under 1.1 every
 * applied job is also one more dedupe record (sharecount_stats() is O(1)).
 */
static void
add_stats(BatchItem *items, int n, bool v1_1)
{
	Oid types[4] = {INT4OID, INT8OID, INT8OID, INT8OID};
	Datum values[4];
	int64 napplied = 0, ndup = 0, ninvalid = 0;
	int i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++)
	{
		if (items[i].status == ST_APPLIED)
			napplied++;
		else if (items[i].status == ST_DUPLICATE)
			ndup++;
		else
			ninvalid++;
	}
	values[0] = Int32GetDatum(MyProcPid % SC_STATS_SHARDS);
	values[1] = Int64GetDatum(napplied);
	values[2] = Int64GetDatum(ndup);
	values[3] = Int64GetDatum(ninvalid);
	if (v1_1)
		sc_prepare_once(
			&stats_plan,
			"INSERT INTO sharecount.stats AS s (shard, jobs_applied, duplicates, invalid, dedupe_records) "
			"VALUES ($1, $2, $3, $4, $2) ON CONFLICT (shard) DO UPDATE "
			"SET jobs_applied = s.jobs_applied + excluded.jobs_applied, "
			"duplicates = s.duplicates + excluded.duplicates, "
			"invalid = s.invalid + excluded.invalid, "
			"dedupe_records = s.dedupe_records + excluded.dedupe_records",
			4, types);
	else
		sc_prepare_once(
			&stats_legacy_plan,
			"INSERT INTO sharecount.stats AS s (shard, jobs_applied, duplicates, invalid) "
			"VALUES ($1, $2, $3, $4) ON CONFLICT (shard) DO UPDATE "
			"SET jobs_applied = s.jobs_applied + excluded.jobs_applied, "
			"duplicates = s.duplicates + excluded.duplicates, "
			"invalid = s.invalid + excluded.invalid",
			4, types);
	if (SPI_execute_plan(v1_1 ? stats_plan : stats_legacy_plan, values, NULL,
						 false, 0) != SPI_OK_INSERT)
		elog(ERROR, "stats upsert failed");
}

/*
 * Apply the valid items (status ST_PENDING on entry): dedupe, write counts,
 * update stats.  On return every item is ST_APPLIED, ST_DUPLICATE or
 * ST_INVALID, and changes (if not NULL) holds the keys whose count changed.
 * Caller is connected to SPI.
 */
static void
apply_items(BatchItem *items, int n, ApplyChanges *changes)
{
	char **ids;
	int *owner;
	int nids = distinct_ids(items, n, &ids, &owner);
	bool *applied = palloc0(sizeof(bool) * Max(nids, 1));
	bool v1_1;
	int i;

	v1_1 = sc_dedupe_1_1(ids, nids, applied);
	if (!v1_1)
		sc_dedupe_legacy(ids, nids, applied);
	for (i = 0; i < nids; i++)
		items[owner[i]].status = applied[i] ? ST_APPLIED : ST_DUPLICATE;
	add_counts(items, n, v1_1, changes);
	sc_trends_apply(items, n); /* breakdowns, history (docs/extension.md) */
	add_stats(items, n, v1_1);
}

/*
 * sharecount_apply(message jsonb) -> boolean: true if applied, false if its
 * jobId was applied before.  A malformed message is an error (22023).
 */
Datum
sharecount_apply(PG_FUNCTION_ARGS)
{
	Jsonb *jb = PG_GETARG_JSONB_P(0);
	BatchItem item;

	item.error = sc_validate_message(jb, &item.job);
	if (item.error != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", item.error)));
	item.status = ST_PENDING;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	apply_items(&item, 1, NULL);
	SPI_finish();
	PG_RETURN_BOOL(item.status == ST_APPLIED);
}

/*
 * Apply the batch's items (validated: ST_PENDING or ST_INVALID) and return
 * one status row per message, in order (invalid messages never abort the
 * others), then, with_changes, one row per key whose count changed.  Without
 * applied_rows: no status row for an applied message, and a last row with
 * their number (apply_rows.c).
 */
static Datum
apply_items_srf(FunctionCallInfo fcinfo, BatchItem *items, int n,
				bool with_changes, bool applied_rows)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ApplyChanges changes = {NULL, 0};
	int64 napplied;
	int i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	apply_items(items, n, with_changes ? &changes : NULL);
	SPI_finish();

	napplied = sc_put_statuses(rsinfo, items, n, applied_rows);
	for (i = 0; i < changes.n; i++)
		sc_put_change(rsinfo, &changes.v[i]);
	if (!applied_rows)
		sc_put_applied_count(rsinfo, napplied);
	return (Datum) 0;
}

/* The two jsonb[] batch functions. */
static Datum
apply_batch(FunctionCallInfo fcinfo, bool with_changes)
{
	ArrayType *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum *elems;
	bool *nulls;
	int n;
	int i;
	BatchItem *items;

	InitMaterializedSRF(fcinfo, 0);
	sc_array_elements(arr, JSONBOID, "messages", &elems, &nulls, &n);

	items = palloc0(sizeof(BatchItem) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
		{
			items[i].status = ST_INVALID;
			items[i].error = pstrdup("invalid job: the message is null");
			continue;
		}
		items[i].error =
			sc_validate_message(DatumGetJsonbP(elems[i]), &items[i].job);
		items[i].status = items[i].error ? ST_INVALID : ST_PENDING;
	}
	return apply_items_srf(fcinfo, items, n, with_changes, true);
}

/*
 * sharecount_apply_batch(messages jsonb[]) -> TABLE(ord, status, error):
 * one row per message, in order; invalid messages never abort the others.
 */
Datum
sharecount_apply_batch(PG_FUNCTION_ARGS)
{
	return apply_batch(fcinfo, false);
}

/*
 * sharecount_apply_batch_changes(messages jsonb[]) -> TABLE(ord, status,
 * error, content_type, content_id, share_count, delta, version): the rows of
 * sharecount_apply_batch(), then one row per key whose count the batch
 * changed (ord NULL, status 'changed'), sorted by key (docs/sql.md).
 */
Datum
sharecount_apply_batch_changes(PG_FUNCTION_ARGS)
{
	return apply_batch(fcinfo, true);
}

/*
 * sharecount_apply_json(messages text, with_changes boolean, applied_rows
 * boolean DEFAULT true) -> the rows of sharecount_apply_batch_changes() (the
 * change rows only with_changes; without applied_rows, none for an applied
 * message and a last row with their number), for the messages of one JSON
 * array given as text: what the consumer sends, read without building a jsonb
 * (jobjson.c, docs/sql.md).  A declaration with two arguments (a 1.1 script
 * from before applied_rows) gets every row.
 */
Datum
sharecount_apply_json(PG_FUNCTION_ARGS)
{
	text *json = PG_GETARG_TEXT_PP(0);
	bool with_changes = PG_GETARG_BOOL(1);
	bool applied_rows = PG_NARGS() < 3 || PG_GETARG_BOOL(2);
	BatchItem *items;
	int n;

	InitMaterializedSRF(fcinfo, 0);
	items = sc_parse_batch(json, &n);
	return apply_items_srf(fcinfo, items, n, with_changes, applied_rows);
}
