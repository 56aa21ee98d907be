/*
 * dedupe_legacy.c: release 1.0's dedupe table, sharecount.applied_jobs (one
 * row per jobId), as the 1.1 code still uses it (docs/extension.md, "Dedupe"):
 * - before ALTER EXTENSION UPDATE (the 1.0 schema, with this library), jobs
 *   are deduped in it exactly as 1.0 did (sc_dedupe_legacy);
 * - after it, it is only read, for foreign jobIds, until sharecount_prune()
 *   has emptied it (sc_dedupe_legacy_seen).
 *
 * Rules:
 * - sc_dedupe_schema_1_1() takes ROW EXCLUSIVE on sharecount.applied_jobs
 *   before it looks at the schema, and the 1.0 -> 1.1 upgrade script takes
 *   ACCESS EXCLUSIVE on it: an apply that decided on the 1.0 path has
 *   committed before the upgrade commits, and one that starts after the
 *   upgrade sees the 1.1 schema.
 * - Reads use a snapshot taken after the caller's dedupe locks.
 * - Memory: palloc'd in the caller's context.  Caller is connected to SPI.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "sharecount.h"
#include "apply.h"

static SPIPlanPtr legacy_read_plan = NULL;
static SPIPlanPtr legacy_plan = NULL;

/* A jobId and its index in the caller's arrays, for sorted lookups. */
typedef struct NamedId
{
	const char *s;
	int idx;
} NamedId;

static int
cmp_named(const void *a, const void *b)
{
	return strcmp(((const NamedId *) a)->s, ((const NamedId *) b)->s);
}

/* ids[0..n) sorted, each with its index, and as a text[]. */
static NamedId *
sort_named(char **ids, int n, Datum *arr)
{
	NamedId *v = palloc(sizeof(NamedId) * Max(n, 1));
	char **s = palloc(sizeof(char *) * Max(n, 1));
	int i;

	for (i = 0; i < n; i++)
	{
		v[i].idx = i;
		v[i].s = ids[i];
	}
	qsort(v, n, sizeof(NamedId), cmp_named);
	for (i = 0; i < n; i++)
		s[i] = (char *) v[i].s;
	*arr = sc_text_array(s, n);
	return v;
}

/*
 * Lock 1.0's table, then tell whether this database has the 1.1 dedupe
 * state (see Rules: the upgrade script locks the same table).
 */
bool
sc_dedupe_schema_1_1(void)
{
	Oid nsp;

	(void) RangeVarGetRelid(makeRangeVar("sharecount", "applied_jobs", -1),
							RowExclusiveLock, false);
	nsp = get_namespace_oid("sharecount", false);
	return OidIsValid(get_relname_relid("dedupe_dense", nsp));
}

/*
 * Run plan ($1 = ids[0..n) sorted, as text[]) and set mark[i] for each ids[i]
 * the statement returns in its first column; snap: InvalidSnapshot for the
 * usual one.  Returns false if it returned a jobId that is not in ids.
 */
static bool
mark_returned(SPIPlanPtr *slot, const char *sql, char **ids, int n,
			  Snapshot snap, int want_rc, bool *mark)
{
	Oid types[1] = {TEXTARRAYOID};
	Datum values[1];
	NamedId *named = sort_named(ids, n, &values[0]);
	SPITupleTable *tt;
	uint64 r;
	bool all_known = true;

	sc_prepare_once(slot, sql, 1, types);
	if (SPI_execute_snapshot(*slot, values, NULL, snap, InvalidSnapshot,
							 want_rc == SPI_OK_SELECT, false, 0) != want_rc)
		elog(ERROR, "dedupe: statement on sharecount.applied_jobs failed");
	tt = SPI_tuptable;
	for (r = 0; r < SPI_processed; r++)
	{
		NamedId key;
		NamedId *hit;

		key.s = SPI_getvalue(tt->vals[r], tt->tupdesc, 1);
		hit = bsearch(&key, named, n, sizeof(NamedId), cmp_named);
		if (hit != NULL)
			mark[hit->idx] = true;
		else
			all_known = false;
	}
	return all_known;
}

/* seen[i] = whether ids[i] is in sharecount.applied_jobs (fresh snapshot). */
void
sc_dedupe_legacy_seen(char **ids, int n, bool *seen)
{
	if (n == 0)
		return;
	(void) mark_returned(&legacy_read_plan,
						 "SELECT a.job_id FROM sharecount.applied_jobs a "
						 "WHERE a.job_id OPERATOR(pg_catalog.=) ANY ($1)",
						 ids, n, GetLatestSnapshot(), SPI_OK_SELECT, seen);
}

/*
 * The 1.0 schema (before ALTER EXTENSION UPDATE): one INSERT of the jobIds
 * into sharecount.applied_jobs, ON CONFLICT DO NOTHING RETURNING: what comes
 * back was applied.  jobIds are inserted in sorted order (no deadlock).
 */
void
sc_dedupe_legacy(char **ids, int n, bool *applied)
{
	if (n == 0)
		return;
	if (!mark_returned(&legacy_plan,
					   "INSERT INTO sharecount.applied_jobs (job_id) "
					   "SELECT u.j FROM pg_catalog.unnest($1) AS u(j) "
					   "ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
					   ids, n, InvalidSnapshot, SPI_OK_INSERT_RETURNING,
					   applied))
		elog(ERROR, "dedupe insert returned an unknown jobId");
}
