/*
 * trends.c: the apply path's part of channels and trends (docs/extension.md,
 * "Channels and trends"): per batch, the applied jobs' deltas per (key,
 * dimension, value) go to sharecount.breakdown and their net shares per (key,
 * UTC hour of the job's timestamp) to sharecount.history, aggregated here so
 * that each row is written once per batch, in one statement.
 *
 * What counts where:
 * - Breakdowns: every applied job, under its channelId and campaignId (absent
 *   or null = unattributed, value NULL; a value too long for a job field, see
 *   outbox_field_fits, also counts as unattributed), except legacy jobs: a
 *   UUID jobId (release 1.0's trigger) with a timestamp before
 *   sharecount.trends_state.legacy_before, whose row the upgrade's backfill
 *   already counted.
 * - History: share_created (+1) and share_deleted (-1), legacy ones too;
 *   share_count_update (backfills, resets, other counters) changes counts and
 *   breakdowns only.  A timestamp PostgreSQL cannot represent has no hour.
 *   The same deltas go to sharecount.trend_window for the hours it covers
 *   (trends_window.c).
 *
 * Rules:
 * - Runs inside sharecount_apply*() after the counts upsert (apply.c), which
 *   locked the batch's keys in sorted order; every breakdown or history row
 *   written here belongs to one of those keys, so concurrent batches are
 *   already serialised on their common keys and cannot deadlock here.  Rows
 *   are written sorted all the same.
 * - Under the 1.0 schema (no sharecount.breakdown) nothing is written: the
 *   upgrade's backfill starts the breakdowns.
 * - The breakdown relation's OID and legacy_before are cached per backend,
 *   re-read when the OID changes (DROP/CREATE EXTENSION, upgrade);
 *   legacy_before is read with the latest snapshot, like the catalog.
 * - Memory: palloc'd in the caller's context.  Caller is connected to SPI.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "sharecount.h"
#include "apply.h"
#include "outbox.h"

#define UUID_TEXT_LEN 36 /* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx */
#define TRENDS_NARGS 11	 /* 5 breakdown, 4 history, 2 window arrays */

static SPIPlanPtr trends_plan = NULL;
static Oid cached_relid = InvalidOid;		   /* sharecount.breakdown */
static TimestampTz legacy_before = DT_NOBEGIN; /* of cached_relid's database */

/* One (key, dimension, value) or (key, hour) delta of the batch. */
typedef struct TrendDelta
{
	const char *ctype;
	const char *cid;
	const char *dim;   /* breakdown: "channel" or "campaign" */
	const char *value; /* breakdown: NULL = unattributed */
	TimestampTz hour;  /* history */
	int64 delta;
} TrendDelta;

/*
 * sharecount.breakdown's OID, or InvalidOid under the 1.0 schema; reads
 * legacy_before when the OID is new.
 */
static Oid
trends_relation(void)
{
	Oid nsp = get_namespace_oid("sharecount", true);
	Oid relid =
		OidIsValid(nsp) ? get_relname_relid("breakdown", nsp) : InvalidOid;
	SPIPlanPtr plan;

	if (!OidIsValid(relid) || relid == cached_relid)
		return relid;
	/*
	 * With the latest snapshot, not the statement's: the catalog already shows
	 * the breakdown relation when a statement that started before the upgrade
	 * committed (and waited for its locks) gets here, and its own snapshot
	 * would not see trends_state's row, so legacy jobs would count in the
	 * breakdowns twice, and be cached so (isolation spec upgrade_legacy).
	 */
	plan = SPI_prepare("SELECT legacy_before FROM sharecount.trends_state", 0,
					   NULL);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(),
							 InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading sharecount.trends_state failed");
	SPI_freeplan(plan);
	legacy_before = DT_NOBEGIN;
	if (SPI_processed == 1)
	{
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								1, &isnull);

		if (!isnull)
			legacy_before = DatumGetTimestampTz(d);
	}
	cached_relid = relid;
	return relid;
}

/* Whether s is a UUID as text (the jobIds of release 1.0's trigger). */
static bool
is_uuid_text(const char *s)
{
	int i;

	if (strlen(s) != UUID_TEXT_LEN)
		return false;
	for (i = 0; i < UUID_TEXT_LEN; i++)
	{
		bool dash = (i == 8 || i == 13 || i == 18 || i == 23);

		if (dash ? s[i] != '-' : !isxdigit((unsigned char) s[i]))
			return false;
	}
	return true;
}

/* A job whose row the upgrade's breakdown backfill already counted. */
static bool
is_legacy(const ScJob *job)
{
	return legacy_before != DT_NOBEGIN && job->ts_valid &&
		job->ts < legacy_before && is_uuid_text(job->job_id);
}

/* NULL-first string order. */
static int
cmp_nullable(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int
cmp_delta(const void *pa, const void *pb)
{
	const TrendDelta *a = (const TrendDelta *) pa;
	const TrendDelta *b = (const TrendDelta *) pb;
	int c;

	if ((c = strcmp(a->ctype, b->ctype)) != 0 ||
		(c = strcmp(a->cid, b->cid)) != 0 ||
		(c = cmp_nullable(a->dim, b->dim)) != 0 ||
		(c = cmp_nullable(a->value, b->value)) != 0)
		return c;
	return a->hour < b->hour ? -1 : (a->hour > b->hour ? 1 : 0);
}

/* Sort d[0..n), sum equal entries, drop zero sums; returns the new n. */
static int
merge_deltas(TrendDelta *d, int n)
{
	int out = 0;
	int i;

	if (n == 0)
		return 0;
	qsort(d, n, sizeof(TrendDelta), cmp_delta);
	for (i = 0; i < n; i++)
	{
		if (out > 0 && cmp_delta(&d[out - 1], &d[i]) == 0)
			d[out - 1].delta += d[i].delta;
		else
		{
			if (out > 0 && d[out - 1].delta == 0)
				out--;
			d[out++] = d[i];
		}
	}
	if (d[out - 1].delta == 0)
		out--;
	return out;
}

/* A job field as a breakdown value: NULL when absent or too long. */
static const char *
breakdown_value(const char *v)
{
	return v != NULL && outbox_field_fits(v, strlen(v)) ? v : NULL;
}

/* A text[] of n strings, NULL entries as SQL NULLs. */
static Datum
text_array_nulls(const char **strs, int n)
{
	Datum *d = palloc(sizeof(Datum) * Max(n, 1));
	bool *nulls = palloc(sizeof(bool) * Max(n, 1));
	int dims[1] = {n};
	int lbs[1] = {1};
	int i;

	for (i = 0; i < n; i++)
	{
		nulls[i] = strs[i] == NULL;
		d[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(strs[i]);
	}
	return PointerGetDatum(construct_md_array(d, nulls, 1, dims, lbs, TEXTOID,
											  -1, false, TYPALIGN_INT));
}

/* An int8[] (or timestamptz[]) of the deltas' field. */
static Datum
int8_array(const TrendDelta *d, int n, bool hours)
{
	Datum *v = palloc(sizeof(Datum) * Max(n, 1));
	int i;

	for (i = 0; i < n; i++)
		v[i] =
			hours ? TimestampTzGetDatum(d[i].hour) : Int64GetDatum(d[i].delta);
	return PointerGetDatum(construct_array(v, n,
										   hours ? TIMESTAMPTZOID : INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* A text[] of the string field at offset off of each delta. */
static Datum
field_array(const TrendDelta *d, int n, size_t off)
{
	const char **s = palloc(sizeof(char *) * Max(n, 1));
	int i;

	for (i = 0; i < n; i++)
		s[i] = *(const char *const *) ((const char *) &d[i] + off);
	return text_array_nulls(s, n);
}

/* values[0..]: the arrays of the deltas' columns (with dim/value or hour). */
static void
delta_arrays(const TrendDelta *d, int n, bool breakdown, Datum *values)
{
	int k = 0;

	values[k++] = field_array(d, n, offsetof(TrendDelta, ctype));
	values[k++] = field_array(d, n, offsetof(TrendDelta, cid));
	if (breakdown)
	{
		values[k++] = field_array(d, n, offsetof(TrendDelta, dim));
		values[k++] = field_array(d, n, offsetof(TrendDelta, value));
	}
	else
		values[k++] = int8_array(d, n, true);
	values[k] = int8_array(d, n, false);
}

/*
 * What each history entry (sorted, merged) gives the trailing window: its
 * key's previous hour (DT_NOBEGIN, -infinity, for the key's first) and the
 * sum of its key's deltas from its hour on.  For the window's first hour ws,
 * a key's window delta is the sum of the entry with prev < ws <= hour, and no
 * entry of a key with no hour >= ws has one; so the statement picks one row
 * per key or none, with no grouping.
 */
static TrendDelta *
window_deltas(const TrendDelta *hr, int nhr)
{
	TrendDelta *w = palloc(sizeof(TrendDelta) * Max(nhr, 1));
	int i;

	for (i = nhr - 1; i >= 0; i--)
	{
		bool same_next = i + 1 < nhr &&
			strcmp(hr[i].cid, hr[i + 1].cid) == 0 &&
			strcmp(hr[i].ctype, hr[i + 1].ctype) == 0;
		bool same_prev = i > 0 && strcmp(hr[i].cid, hr[i - 1].cid) == 0 &&
			strcmp(hr[i].ctype, hr[i - 1].ctype) == 0;

		w[i] = hr[i];
		w[i].hour = same_prev ? hr[i - 1].hour : DT_NOBEGIN;
		w[i].delta = hr[i].delta + (same_next ? w[i + 1].delta : 0);
	}
	return w;
}

/*
 * Write the merged deltas: one statement for breakdown, history and the
 * trailing window (trends_window.c).
 */
static void
write_deltas(const TrendDelta *bd, int nbd, const TrendDelta *hr, int nhr)
{
	Oid types[TRENDS_NARGS] = {
		TEXTARRAYOID, TEXTARRAYOID,		   TEXTARRAYOID, TEXTARRAYOID,
		INT8ARRAYOID, TEXTARRAYOID,		   TEXTARRAYOID, TIMESTAMPTZARRAYOID,
		INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID};
	Datum values[TRENDS_NARGS];
	const TrendDelta *w = window_deltas(hr, nhr);

	delta_arrays(bd, nbd, true, values);
	delta_arrays(hr, nhr, false, values + 5);
	values[9] = int8_array(w, nhr, true);
	values[10] = int8_array(w, nhr, false);
	sc_prepare_once(
		&trends_plan,
		"WITH b AS (INSERT INTO sharecount.breakdown AS b "
		"(content_type, content_id, dimension, value, share_count) "
		"SELECT pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
		"pg_catalog.unnest($4), pg_catalog.unnest($5) "
		"ON CONFLICT ON CONSTRAINT breakdown_key DO UPDATE "
		"SET share_count = b.share_count + excluded.share_count), "
		"w AS (INSERT INTO sharecount.trend_window AS w (content_type, content_id, shares) "
		"SELECT u.t, u.i, u.s FROM (SELECT pg_catalog.unnest($6) AS t, pg_catalog.unnest($7) AS i, "
		"pg_catalog.unnest($8) AS h, pg_catalog.unnest($10) AS p, pg_catalog.unnest($11) AS s) u "
		"WHERE (SELECT c.window_start FROM sharecount.trend_clock c) "
		"OPERATOR(pg_catalog.<@) pg_catalog.tstzrange(u.p, u.h, '(]') "
		"ON CONFLICT (content_type, content_id) DO UPDATE "
		"SET shares = w.shares + excluded.shares) "
		"INSERT INTO sharecount.history AS h (content_type, content_id, hour, shares) "
		"SELECT pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8), "
		"pg_catalog.unnest($9) "
		"ON CONFLICT (content_type, content_id, hour) DO UPDATE "
		"SET shares = h.shares + excluded.shares",
		TRENDS_NARGS, types);
	if (SPI_execute_plan(trends_plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "breakdown and history upsert failed");
}

/*
 * Whether job b adds to the same breakdown entries as job a (same key,
 * legacy status and values), and to the same history entry (same_hour).
 */
static bool
same_entries(const ScJob *a, const ScJob *b, bool *same_hour)
{
	if (strcmp(a->cid, b->cid) != 0 || strcmp(a->ctype, b->ctype) != 0 ||
		cmp_nullable(a->channel, b->channel) != 0 ||
		cmp_nullable(a->campaign, b->campaign) != 0 ||
		is_legacy(a) != is_legacy(b))
		return false;
	*same_hour = a->kind != SC_JOB_COUNT_UPDATE && a->ts_valid &&
		b->kind != SC_JOB_COUNT_UPDATE && b->ts_valid &&
		sc_hour_of(a->ts) == sc_hour_of(b->ts);
	return true;
}

/*
 * The applied jobs' deltas into bd (two per job) and hr (one per job), not
 * yet merged.  A job with the previous applied job's key and values adds to
 * that job's entries (a hot stream's batch is mostly such jobs, so
 * merge_deltas sorts a few entries, not three per job); any other job appends
 * entries, which merge_deltas sums.
 */
static void
collect_deltas(const BatchItem *items, int n, TrendDelta *bd, int *nbd,
			   TrendDelta *hr, int *nhr)
{
	const ScJob *prev = NULL;
	int ibd = -1; /* prev's channel entry (the campaign one follows), or -1 */
	int ihr = -1; /* prev's history entry, or -1 */
	int i;

	for (i = 0; i < n; i++)
	{
		const ScJob *job = &items[i].job;
		bool same_hour = false;
		bool has_hour = job->kind != SC_JOB_COUNT_UPDATE && job->ts_valid;

		if (items[i].status != ST_APPLIED)
			continue;
		if (prev == NULL || !same_entries(prev, job, &same_hour))
		{
			ibd = -1;
			if (!is_legacy(job))
			{
				ibd = *nbd;
				bd[(*nbd)++] =
					(TrendDelta){job->ctype, job->cid,
								 "channel",	 breakdown_value(job->channel),
								 0,			 0};
				bd[(*nbd)++] =
					(TrendDelta){job->ctype, job->cid,
								 "campaign", breakdown_value(job->campaign),
								 0,			 0};
			}
		}
		if (ibd >= 0)
		{
			bd[ibd].delta += job->delta;
			bd[ibd + 1].delta += job->delta;
		}
		if (!same_hour)
			ihr = -1;
		if (has_hour && ihr < 0)
		{
			ihr = *nhr;
			hr[(*nhr)++] = (TrendDelta){
				job->ctype, job->cid, NULL, NULL, sc_hour_of(job->ts), 0};
		}
		if (has_hour)
			hr[ihr].delta += job->delta;
		prev = job;
	}
}

void
sc_trends_apply(const BatchItem *items, int n)
{
	TrendDelta *bd;
	TrendDelta *hr;
	int nbd = 0;
	int nhr = 0;

	if (!OidIsValid(trends_relation()))
		return;
	bd = palloc(sizeof(TrendDelta) * Max(2 * n, 1));
	hr = palloc(sizeof(TrendDelta) * Max(n, 1));
	collect_deltas(items, n, bd, &nbd, hr, &nhr);
	nbd = merge_deltas(bd, nbd);
	nhr = merge_deltas(hr, nhr);
	sc_trend_window_advance();
	if (nbd > 0 || nhr > 0)
		write_deltas(bd, nbd, hr, nhr);
}
