/*
 * trends_window.c: the trailing window behind sharecount_top()
 * (docs/extension.md, "Channels and trends"): sharecount.trend_window holds,
 * per key, the net shares of the history hours from
 * sharecount.trend_clock.window_start on, so that the top keys of the last
 * 24 hours are an index scan instead of a sum over every key's hours.
 *
 * The invariant, at every commit: trend_window(key) = sum of
 * history(key, hour) over hour >= window_start (rows whose sum is 0 may be
 * missing).  The apply statement (trends.c) adds a batch's history deltas to
 * trend_window only for hours >= window_start, read in the same statement.
 * Moving window_start (sc_trend_window_advance) subtracts the hours that
 * leave, under SHARE ROW EXCLUSIVE on trend_window: no apply statement is
 * between its lock and its commit meanwhile (each takes ROW EXCLUSIVE on
 * trend_window when it starts, before its snapshot), so each sees either the
 * old window_start with its delta counted by the subtraction, or the new one.
 *
 * Rules:
 * - Called by the apply path, once per batch; it does work only when this
 *   backend has not yet seen the window at the current hour, and then only
 *   if the lock is free at once (ConditionalLockRelationOid): a busy moment
 *   leaves it to the next batch.  sharecount_top() reads window_start and
 *   corrects for an hour or so of lag itself, and falls back to summing
 *   history when the clock is missing or far behind.
 * - No clock row (fresh install, restore, TRUNCATE of sharecount.counts):
 *   the window is rebuilt from history; likewise when it is over a window
 *   behind.  trend_window and trend_clock are a cache of history and are not
 *   dumped by pg_dump.
 * - Memory: palloc'd in the caller's context.  Caller is connected to SPI.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "sharecount.h"
#include "apply.h"

/* The window kept: the UTC hours overlapping the last 24 hours. */
#define SC_TREND_WINDOW_HOURS 24

/*
 * The window's first hour as this backend last saw it (cached_relid's), so
 * that a batch looks at the clock only once an hour.  Dropped on a relcache
 * invalidation of trend_window (its TRUNCATE by sharecount._trends_truncate,
 * DROP EXTENSION), so the next batch rebuilds a window emptied elsewhere.
 */
static Oid cached_relid = InvalidOid;
static TimestampTz cached_start = DT_NOBEGIN;
static bool callback_registered = false;

static void
window_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cached_relid)
		cached_relid = InvalidOid;
}

/* The UTC hour holding ts. */
TimestampTz
sc_hour_of(TimestampTz ts)
{
	TimestampTz r = ts % USECS_PER_HOUR;

	return ts - (r < 0 ? r + USECS_PER_HOUR : r);
}

/* Run sql with timestamptz arguments; expect result code want. */
static void
run_ts(const char *sql, int nargs, TimestampTz a, TimestampTz b, int want)
{
	Oid types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum values[2] = {TimestampTzGetDatum(a), TimestampTzGetDatum(b)};

	if (SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0) !=
		want)
		elog(ERROR, "trend window statement failed: %s", sql);
}

/* Rebuild the window from history, starting at start. */
static void
rebuild(TimestampTz start)
{
	run_ts("DELETE FROM sharecount.trend_window", 0, 0, 0, SPI_OK_DELETE);
	run_ts(
		"INSERT INTO sharecount.trend_window (content_type, content_id, shares) "
		"SELECT h.content_type, h.content_id, pg_catalog.sum(h.shares) "
		"FROM sharecount.history h WHERE h.hour OPERATOR(pg_catalog.>=) $1 "
		"GROUP BY 1, 2 HAVING pg_catalog.sum(h.shares) OPERATOR(pg_catalog.<>) 0",
		1, start, 0, SPI_OK_INSERT);
	run_ts(
		"INSERT INTO sharecount.trend_clock AS c (window_start) VALUES ($1) "
		"ON CONFLICT (one) DO UPDATE SET window_start = excluded.window_start",
		1, start, 0, SPI_OK_INSERT);
}

/* Move the window from from to to: subtract the hours that leave it. */
static void
advance(TimestampTz from, TimestampTz to)
{
	run_ts(
		"WITH e AS (SELECT h.content_type, h.content_id, pg_catalog.sum(h.shares) AS s "
		"FROM sharecount.history h WHERE h.hour OPERATOR(pg_catalog.>=) $1 "
		"AND h.hour OPERATOR(pg_catalog.<) $2 GROUP BY 1, 2) "
		"UPDATE sharecount.trend_window w SET shares = w.shares OPERATOR(pg_catalog.-) e.s "
		"FROM e WHERE w.content_type OPERATOR(pg_catalog.=) e.content_type "
		"AND w.content_id OPERATOR(pg_catalog.=) e.content_id "
		"AND e.s OPERATOR(pg_catalog.<>) 0",
		2, from, to, SPI_OK_UPDATE);
	run_ts(
		"DELETE FROM sharecount.trend_window w WHERE w.shares OPERATOR(pg_catalog.=) 0",
		0, 0, 0, SPI_OK_DELETE);
	run_ts("UPDATE sharecount.trend_clock SET window_start = $1", 1, to, 0,
		   SPI_OK_UPDATE);
}

void
sc_trend_window_advance(void)
{
	Oid nsp = get_namespace_oid("sharecount", false);
	Oid relid = get_relname_relid("trend_window", nsp);
	TimestampTz target = sc_hour_of(GetCurrentTransactionStartTimestamp() -
									SC_TREND_WINDOW_HOURS * USECS_PER_HOUR);
	TimestampTz start = DT_NOBEGIN;

	if (!OidIsValid(relid))
		return;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(window_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (relid == cached_relid && cached_start >= target)
		return;
	if (!ConditionalLockRelationOid(relid, ShareRowExclusiveLock))
		return; /* an apply is writing the window: the next batch retries */
	if (SPI_execute("SELECT window_start FROM sharecount.trend_clock", false,
					1) != SPI_OK_SELECT)
		elog(ERROR, "reading sharecount.trend_clock failed");
	if (SPI_processed == 1)
	{
		bool isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								1, &isnull);

		start = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
	}
	if (start == DT_NOBEGIN ||
		target - start > SC_TREND_WINDOW_HOURS * USECS_PER_HOUR)
		rebuild(target);
	else if (start < target)
		advance(start, target);
	cached_relid = relid;
	cached_start = Max(start, target);
}
