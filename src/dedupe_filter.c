/*
 * dedupe_filter.c: the past days of foreign jobIds (docs/extension.md,
 * "Dedupe"): which of a batch's foreign ids an earlier day (or 1.0's table)
 * holds, and sealing a day that has ended.
 *
 * - A past day's hashes are packed rows (bucket, day) in its partition of
 *   sharecount.dedupe_foreign.  A SEALED day (a row in
 *   sharecount.dedupe_sealed) also has a Bloom filter per group of 16
 *   buckets in sharecount.dedupe_filter (same day partitions), built from all
 *   of the day's rows: a lookup reads the small filter row, and the day's
 *   row only when the filter says "maybe" (a false positive costs a read,
 *   never a wrong answer).  Unsealed past days are read directly.
 * - sharecount._dedupe_seal(day), called by sharecount_prune(), seals a day
 *   that has ended.
 *
 * Rules:
 * - A sealed day never gets another row: a head whose day is sealed moves
 *   its hashes to the day after the latest sealed one (dedupe.c).  The
 *   decision needs the seal lock: a batch that may move a head's day into a
 *   partition takes ROW EXCLUSIVE on sharecount.dedupe_sealed (after its head
 *   row locks, before its snapshot); sealing takes SHARE ROW EXCLUSIVE on it
 *   (so it waits for those batches to commit and they wait for it) before its
 *   snapshot.  So a filter covers every row its day will ever have.
 * - Reads use one snapshot taken after the caller's locks (GetLatestSnapshot),
 *   under any isolation level.  The past days are those of
 *   sharecount.dedupe_days (written by the statement that writes a day's
 *   rows, deleted with them) and sharecount.dedupe_sealed.
 * - Memory: palloc'd in the caller's context (sealing: ~5.5 MB of filters
 *   for a day of 4.3M hashes, in the function's context); plans are
 *   prepared once per backend (sc_prepare_once).  Caller is connected to SPI
 *   (sealing connects itself).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "sharecount.h"
#include "apply.h"
#include "dedupe.h"

PG_FUNCTION_INFO_V1(sharecount_dedupe_seal);

static SPIPlanPtr days_plan = NULL;
static SPIPlanPtr filter_plan = NULL;
static SPIPlanPtr rows_plan = NULL;
static SPIPlanPtr seal_size_plan = NULL;
static SPIPlanPtr seal_read_plan = NULL;
static SPIPlanPtr seal_write_plan = NULL;

/* A filter row the batch read. */
typedef struct FilterRow
{
	int32 grp;
	DateADT day;
	const uint8 *bits;
	int len;
} FilterRow;

/* (bucket or group, day, slot) keys of the rows to read. */
typedef struct RowKeys
{
	int n;
	Datum *k;
	Datum *day;
	Datum *slot;
} RowKeys;

/* The partition of sharecount.dedupe_foreign (and _filter) that holds day. */
int16
sc_dedupe_day_slot(DateADT day)
{
	return (int16) (((day % SC_DEDUPE_SLOTS) + SC_DEDUPE_SLOTS) %
					SC_DEDUPE_SLOTS);
}

static int32
filter_group(const uint8 *hash)
{
	return (hash[0] << 4) | (hash[1] >> 4);
}

/* Probe i of hash in a filter of nbits bits (double hashing of bytes 4-11). */
static uint64
filter_probe(const uint8 *hash, int i, uint64 nbits)
{
	uint64 h1 =
		((uint64) hash[4] << 24) | (hash[5] << 16) | (hash[6] << 8) | hash[7];
	uint64 h2 = ((uint64) hash[8] << 24) | (hash[9] << 16) | (hash[10] << 8) |
		hash[11] | 1;

	return (h1 + (uint64) i * h2) % nbits;
}

static void
filter_add(uint8 *bits, int len, const uint8 *hash)
{
	int i;

	for (i = 0; i < SC_DEDUPE_FILTER_PROBES; i++)
	{
		uint64 p = filter_probe(hash, i, (uint64) len * 8);

		bits[p / 8] |= (uint8) (1 << (p % 8));
	}
}

static bool
filter_maybe(const uint8 *bits, int len, const uint8 *hash)
{
	int i;

	for (i = 0; i < SC_DEDUPE_FILTER_PROBES; i++)
	{
		uint64 p = filter_probe(hash, i, (uint64) len * 8);

		if ((bits[p / 8] & (1 << (p % 8))) == 0)
			return false;
	}
	return true;
}

/* Whether hash is in the sorted array of a past day, data[0..len). */
bool
sc_dedupe_hash_in(const char *data, int len, const uint8 *hash)
{
	int lo = 0, hi = len / SC_DEDUPE_HASH_BYTES - 1;

	while (lo <= hi)
	{
		int mid = (lo + hi) / 2;
		int c = memcmp(data + (Size) mid * SC_DEDUPE_HASH_BYTES, hash,
					   SC_DEDUPE_HASH_BYTES);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

bool
sc_dedupe_day_sealed(const DedupePast *past, DateADT day)
{
	int i;

	for (i = 0; i < past->ndays; i++)
		if (past->days[i] == day)
			return past->sealed[i];
	return false;
}

/* Run a read-only statement (prepared once into *plan) with snap. */
static void
run_read(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
		 Datum *values, Snapshot snap, const char *what)
{
	sc_prepare_once(plan, sql, nargs, types);
	if (SPI_execute_snapshot(*plan, values, NULL, snap, InvalidSnapshot, true,
							 false, 0) != SPI_OK_SELECT)
		elog(ERROR, "dedupe: reading %s failed", what);
}

static void
keys_add(RowKeys *keys, int32 k, DateADT day)
{
	keys->k[keys->n] = Int32GetDatum(k);
	keys->day[keys->n] = DateADTGetDatum(day);
	keys->slot[keys->n++] = Int16GetDatum(sc_dedupe_day_slot(day));
}

static RowKeys
keys_new(int max)
{
	RowKeys keys;

	keys.n = 0;
	keys.k = palloc(sizeof(Datum) * Max(max, 1));
	keys.day = palloc(sizeof(Datum) * Max(max, 1));
	keys.slot = palloc(sizeof(Datum) * Max(max, 1));
	return keys;
}

/* Run plan (keys as $1 int4[], $2 date[], $3 int2[]) with snap. */
static void
keys_run(SPIPlanPtr *plan, const char *sql, RowKeys *keys, Snapshot snap)
{
	Oid types[3] = {INT4ARRAYOID, DATEARRAYOID, INT2ARRAYOID};
	Datum values[3];

	values[0] = PointerGetDatum(
		construct_array(keys->k, keys->n, INT4OID, 4, true, TYPALIGN_INT));
	values[1] = PointerGetDatum(
		construct_array(keys->day, keys->n, DATEOID, 4, true, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(keys->slot, keys->n, INT2OID,
												2, true, TYPALIGN_SHORT));
	run_read(plan, sql, 3, types, values, snap, "past days");
}

/* The past days, and which are sealed, as of snap. */
static void
read_days(Snapshot snap, DedupePast *past)
{
	SPITupleTable *tt;
	uint64 r;

	run_read(
		&days_plan,
		"SELECT d.day, EXISTS (SELECT FROM sharecount.dedupe_sealed s "
		"WHERE s.day OPERATOR(pg_catalog.=) d.day) FROM (SELECT day FROM "
		"sharecount.dedupe_days UNION SELECT day FROM sharecount.dedupe_sealed) d",
		0, NULL, NULL, snap, "the past days");
	tt = SPI_tuptable;
	past->ndays = (int) SPI_processed;
	past->days = palloc(sizeof(DateADT) * Max(past->ndays, 1));
	past->sealed = palloc(sizeof(bool) * Max(past->ndays, 1));
	past->max_sealed = DATEVAL_NOBEGIN;
	for (r = 0; r < SPI_processed; r++)
	{
		bool isnull;

		past->days[r] = DatumGetDateADT(
			SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
		past->sealed[r] =
			DatumGetBool(SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull));
		if (past->sealed[r])
			past->max_sealed = Max(past->max_sealed, past->days[r]);
	}
}

static int
cmp_filter(const void *a, const void *b)
{
	const FilterRow *x = a;
	const FilterRow *y = b;

	if (x->grp != y->grp)
		return x->grp < y->grp ? -1 : 1;
	return x->day < y->day ? -1 : (x->day > y->day ? 1 : 0);
}

/*
 * The filter rows of the groups of fs[0..nf), sorted (of sealed days only:
 * filters are written with their day's mark).  One index probe per group and
 * partition: cheaper than a probe per (group, day) pair.
 */
static FilterRow *
read_filters(DedupeId *fs, int nf, const DedupePast *past, Snapshot snap,
			 int *nrows)
{
	Oid types[1] = {INT4ARRAYOID};
	Datum values[1];
	Datum *groups = palloc(sizeof(Datum) * Max(nf, 1));
	FilterRow *rows;
	int i, n = 0;
	uint64 r;

	*nrows = 0;
	if (past->max_sealed == DATEVAL_NOBEGIN)
		return NULL; /* no sealed day */
	for (i = 0; i < nf; i++)
	{
		int32 g = filter_group(fs[i].hash);

		/* sorted by bucket, so by group */
		if (n == 0 || DatumGetInt32(groups[n - 1]) != g)
			groups[n++] = Int32GetDatum(g);
	}
	values[0] = PointerGetDatum(
		construct_array(groups, n, INT4OID, 4, true, TYPALIGN_INT));
	run_read(&filter_plan,
			 "SELECT f.grp, f.day, f.bits FROM sharecount.dedupe_filter f "
			 "WHERE f.grp OPERATOR(pg_catalog.=) ANY ($1)",
			 1, types, values, snap, "the filters");
	rows = palloc(sizeof(FilterRow) * Max(SPI_processed, 1));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple tup = SPI_tuptable->vals[r];
		TupleDesc td = SPI_tuptable->tupdesc;
		bool isnull;
		bytea *b;

		rows[r].grp = DatumGetInt32(SPI_getbinval(tup, td, 1, &isnull));
		rows[r].day = DatumGetDateADT(SPI_getbinval(tup, td, 2, &isnull));
		b = DatumGetByteaPP(SPI_getbinval(tup, td, 3, &isnull));
		rows[r].bits = (const uint8 *) VARDATA_ANY(b);
		rows[r].len = VARSIZE_ANY_EXHDR(b);
	}
	*nrows = (int) SPI_processed;
	qsort(rows, *nrows, sizeof(FilterRow), cmp_filter);
	return rows;
}

/*
 * The (bucket, day) rows to read: every bucket of fs[0..nf) on every
 * unsealed day, and on each sealed day whose filter says a hash may be there.
 */
static RowKeys
rows_to_read(DedupeId *fs, int nf, const DedupePast *past, FilterRow *filters,
			 int nfilters)
{
	RowKeys keys = keys_new(nf * past->ndays);
	int i, d;

	for (i = 0; i < nf; i++)
	{
		bool first = (i == 0 || fs[i - 1].k1 != fs[i].k1);

		for (d = 0; d < past->ndays; d++)
		{
			FilterRow key;
			FilterRow *f;

			if (!past->sealed[d])
			{
				if (first)
					keys_add(&keys, (int32) fs[i].k1, past->days[d]);
				continue;
			}
			key.grp = filter_group(fs[i].hash);
			key.day = past->days[d];
			f = nfilters > 0 ? bsearch(&key, filters, nfilters,
									   sizeof(FilterRow), cmp_filter) :
							   NULL;
			/* no row: no hash of the group that day */
			if (f != NULL && filter_maybe(f->bits, f->len, fs[i].hash))
				keys_add(&keys, (int32) fs[i].k1, past->days[d]);
		}
	}
	return keys;
}

/* The index of the first of fs[0..nf) (sorted) in bucket, or nf. */
static int
bucket_start(const DedupeId *fs, int nf, int64 bucket)
{
	int lo = 0, hi = nf;

	while (lo < hi)
	{
		int mid = (lo + hi) / 2;

		if (fs[mid].k1 < bucket)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Mark fs[0..nf) found in the day rows keys name. */
static void
read_rows(DedupeId *fs, int nf, RowKeys *keys, Snapshot snap)
{
	SPITupleTable *tt;
	uint64 r;
	int i;

	if (keys->n == 0)
		return;
	keys_run(
		&rows_plan,
		"SELECT f.bucket::pg_catalog.int8, f.hashes FROM ROWS FROM ("
		"pg_catalog.unnest($1), pg_catalog.unnest($2), "
		"pg_catalog.unnest($3)) AS u(b, d, s) JOIN sharecount.dedupe_foreign f ON "
		"f.bucket OPERATOR(pg_catalog.=) u.b AND f.day "
		"OPERATOR(pg_catalog.=) u.d AND f.slot OPERATOR(pg_catalog.=) u.s",
		keys, snap);
	tt = SPI_tuptable;
	for (r = 0; r < SPI_processed; r++)
	{
		bool isnull;
		int64 bucket =
			DatumGetInt64(SPI_getbinval(tt->vals[r], tt->tupdesc, 1, &isnull));
		bytea *h = DatumGetByteaPP(
			SPI_getbinval(tt->vals[r], tt->tupdesc, 2, &isnull));

		for (i = bucket_start(fs, nf, bucket); i < nf && fs[i].k1 == bucket;
			 i++)
			if (!fs[i].dup &&
				sc_dedupe_hash_in(VARDATA_ANY(h), VARSIZE_ANY_EXHDR(h),
								  fs[i].hash))
				fs[i].dup = true;
	}
}

void
sc_dedupe_find_past(DedupeId *fs, int nf, char **ids, bool flushing,
					DedupePast *past)
{
	char **fids = palloc(sizeof(char *) * Max(nf, 1));
	bool *seen = palloc0(sizeof(bool) * Max(nf, 1));
	Snapshot snap;
	int nfilters, i;
	FilterRow *filters;
	RowKeys keys;

	if (flushing)
		(void) RangeVarGetRelid(
			makeRangeVar("sharecount", "dedupe_sealed", -1), RowExclusiveLock,
			false);
	snap = RegisterSnapshot(GetLatestSnapshot());
	read_days(snap, past);
	filters = read_filters(fs, nf, past, snap, &nfilters);
	keys = rows_to_read(fs, nf, past, filters, nfilters);
	read_rows(fs, nf, &keys, snap);
	UnregisterSnapshot(snap);

	/* 1.0's records (kept until pruned) */
	for (i = 0; i < nf; i++)
		fids[i] = ids[fs[i].idx];
	sc_dedupe_legacy_seen(fids, nf, seen);
	for (i = 0; i < nf; i++)
		if (seen[i])
			fs[i].dup = true;
}

/* The number of hashes day holds (0: none) and whether it is sealed. */
static int64
day_size(DateADT day, Snapshot snap, bool *sealed)
{
	Oid types[1] = {DATEOID};
	Datum values[1];
	bool isnull;
	Datum n;

	values[0] = DateADTGetDatum(day);
	run_read(&seal_size_plan,
			 "SELECT EXISTS (SELECT FROM sharecount.dedupe_sealed s WHERE "
			 "s.day OPERATOR(pg_catalog.=) $1), (SELECT "
			 "pg_catalog.sum(d.records)::pg_catalog.int8 FROM "
			 "sharecount.dedupe_days d WHERE d.day OPERATOR(pg_catalog.=) $1)",
			 1, types, values, snap, "the size of a day");
	if (SPI_processed != 1)
		elog(ERROR, "dedupe: the size of a day is not one row");
	*sealed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	n = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
					  &isnull);
	return isnull ? 0 : DatumGetInt64(n);
}

/*
 * Add every hash of day's rows (read with snap) to the filters of their
 * groups, filters[g * bytes ..], marking used[g].  Returns the hash count.
 */
static int64
fill_filters(DateADT day, Snapshot snap, uint8 *filters, int bytes, bool *used)
{
	Oid types[2] = {INT2OID, DATEOID};
	Datum values[2];
	Portal portal;
	int64 count = 0;

	values[0] = Int16GetDatum(sc_dedupe_day_slot(day));
	values[1] = DateADTGetDatum(day);
	sc_prepare_once(&seal_read_plan,
					"SELECT f.hashes FROM sharecount.dedupe_foreign f WHERE "
					"f.slot OPERATOR(pg_catalog.=) $1 AND f.day "
					"OPERATOR(pg_catalog.=) $2",
					2, types);
	PushActiveSnapshot(snap);
	portal = SPI_cursor_open(NULL, seal_read_plan, values, NULL, true);
	for (;;)
	{
		uint64 r;

		SPI_cursor_fetch(portal, true, SC_DEDUPE_SEAL_FETCH);
		if (SPI_processed == 0)
			break;
		for (r = 0; r < SPI_processed; r++)
		{
			bool isnull;
			bytea *h = DatumGetByteaPP(SPI_getbinval(
				SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			const uint8 *p = (const uint8 *) VARDATA_ANY(h);
			int len = VARSIZE_ANY_EXHDR(h), j;

			for (j = 0; j + SC_DEDUPE_HASH_BYTES <= len;
				 j += SC_DEDUPE_HASH_BYTES)
			{
				int32 g = filter_group(p + j);

				filter_add(filters + (Size) g * bytes, bytes, p + j);
				used[g] = true;
				count++;
			}
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	PopActiveSnapshot();
	return count;
}

/* Write the used groups' filters of day and mark it sealed. */
static void
write_filters(DateADT day, uint8 *filters, int bytes, bool *used, int64 count)
{
	Oid types[5] = {INT2OID, DATEOID, INT4ARRAYOID, BYTEAARRAYOID, INT8OID};
	Datum values[5];
	Datum *grp = palloc(sizeof(Datum) * SC_DEDUPE_FILTER_GROUPS);
	Datum *bits = palloc(sizeof(Datum) * SC_DEDUPE_FILTER_GROUPS);
	int g, m = 0;

	for (g = 0; g < SC_DEDUPE_FILTER_GROUPS; g++)
	{
		bytea *b;

		if (!used[g])
			continue;
		b = palloc(VARHDRSZ + bytes);
		SET_VARSIZE(b, VARHDRSZ + bytes);
		memcpy(VARDATA(b), filters + (Size) g * bytes, bytes);
		grp[m] = Int32GetDatum(g);
		bits[m++] = PointerGetDatum(b);
	}
	values[0] = Int16GetDatum(sc_dedupe_day_slot(day));
	values[1] = DateADTGetDatum(day);
	values[2] = PointerGetDatum(
		construct_array(grp, m, INT4OID, 4, true, TYPALIGN_INT));
	values[3] = PointerGetDatum(
		construct_array(bits, m, BYTEAOID, -1, false, TYPALIGN_INT));
	values[4] = Int64GetDatum(count);
	sc_prepare_once(
		&seal_write_plan,
		"WITH f AS (INSERT INTO sharecount.dedupe_filter (slot, day, grp, bits) "
		"SELECT $1, $2, u.g, u.b FROM ROWS FROM (pg_catalog.unnest($3), "
		"pg_catalog.unnest($4)) AS u(g, b)) "
		"INSERT INTO sharecount.dedupe_sealed (day, hashes) VALUES ($2, $5)",
		5, types);
	if (SPI_execute_plan(seal_write_plan, values, NULL, false, 0) !=
		SPI_OK_INSERT)
		elog(ERROR, "dedupe: writing a day's filters failed");
}

/*
 * sharecount._dedupe_seal(day date) RETURNS bigint: build the filters of a
 * day that has ended (UTC) and mark it sealed; the number of its hashes (0
 * when it holds none or was sealed already).
 */
Datum
sharecount_dedupe_seal(PG_FUNCTION_ARGS)
{
	DateADT day = PG_GETARG_DATEADT(0);
	Snapshot snap;
	bool sealed;
	int64 size, count = 0;
	int bytes;

	if (day >= sc_dedupe_today())
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("only a day that has ended (UTC) can be sealed"),
			 errhint(
				 "Only a day before the current UTC date can be sealed.")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	(void) RangeVarGetRelid(makeRangeVar("sharecount", "dedupe_sealed", -1),
							ShareRowExclusiveLock, false);
	snap = RegisterSnapshot(GetLatestSnapshot());
	size = day_size(day, snap, &sealed);
	if (!sealed && size > 0)
	{
		/* SC_DEDUPE_FILTER_BITS per hash, in whole 64-bit words */
		int64 bits =
			(size * SC_DEDUPE_FILTER_BITS + SC_DEDUPE_FILTER_GROUPS - 1) /
			SC_DEDUPE_FILTER_GROUPS;
		uint8 *filters;
		bool *used = palloc0(sizeof(bool) * SC_DEDUPE_FILTER_GROUPS);

		bytes = (int) Min((bits + 63) / 64 * 8,
						  MaxAllocSize / SC_DEDUPE_FILTER_GROUPS);
		bytes = Max(bytes, SC_DEDUPE_FILTER_MIN_BYTES);
		filters = palloc0((Size) bytes * SC_DEDUPE_FILTER_GROUPS);
		count = fill_filters(day, snap, filters, bytes, used);
		write_filters(day, filters, bytes, used, count);
	}
	UnregisterSnapshot(snap);
	SPI_finish();
	PG_RETURN_INT64(count);
}
