/*
 * dedupe.c: the dedupe state of sharecount_apply*() (docs/extension.md,
 * "Dedupe"): which jobIds were applied, in structures that stay small.
 *
 * - A dense jobId ("<origin>-<n>", sharecount.h) is one bit of a
 *   sharecount.dedupe_dense (origin, block) row: a 512-byte bitmap for 4,096
 *   ids, updated in place (a fixed size: HOT updates, no growth).
 * - A foreign jobId is its 16-byte MD5 in one of 65,536 buckets: today's in
 *   sharecount.dedupe_foreign_head (a row per bucket: its day and an array
 *   of hashes, newest first); when a head is written on a later day, its
 *   hashes move as one packed sorted row (bucket, day) into
 *   sharecount.dedupe_foreign, which is partitioned by day slot and never
 *   updated, so pruning a day is a TRUNCATE of its partition.  Past days
 *   are looked up in dedupe_filter.c (a sealed day through its filter).
 * - 1.0's sharecount.applied_jobs is still read for foreign jobIds (a 1.0
 *   database's UUID jobIds may be redelivered) until sharecount_prune()
 *   empties it.
 *
 * Rules:
 * - Locks: the batch's dense block rows, then its foreign head rows, are
 *   created if missing (INSERT ... ON CONFLICT DO NOTHING) and locked FOR
 *   UPDATE in key order before anything is decided; apply.c then locks the
 *   counts rows in key order, so concurrent batches wait on each other and
 *   never deadlock.  A batch whose ids need ONE row of a kind (a hot stream's
 *   batch: one dense block) locks it first and runs the INSERT only when the
 *   lock found nothing: found, it holds what the INSERT-then-lock order would
 *   have given it (the INSERT does nothing on a row that exists); not found,
 *   it holds no row of that kind and goes on in that order.  It never holds
 *   part of a set while creating the rest (docs/performance.md, "P7 apply
 *   internals").  A head row is its bucket's lock for every day: a batch
 *   just before midnight and one just after it serialize on it.
 * - Everything else (past days, 1.0's table) is read with a snapshot taken
 *   after those locks (GetLatestSnapshot), under any isolation level, so
 *   whatever a batch that held a lock before us committed is seen.  A batch
 *   that may move a head's day into a partition takes the seal lock first
 *   (dedupe_filter.c), and never moves its hashes into a sealed day.
 * - sharecount_prune() may delete a dense block between our INSERT and our
 *   FOR UPDATE: missing rows are created again (SC_DEDUPE_LOCK_TRIES rounds).
 * - Every call first takes ROW EXCLUSIVE on sharecount.applied_jobs and then
 *   looks at the schema: the 1.0 -> 1.1 upgrade script takes ACCESS EXCLUSIVE
 *   on it, so no 1.0-style apply (sc_dedupe_legacy) overlaps a 1.1 one.
 * - Memory: palloc'd in the caller's context; plans are prepared once per
 *   backend (sc_prepare_once).  Caller is connected to SPI.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/snapmgr.h"

#include "sharecount.h"
#include "apply.h"
#include "dedupe.h"

/* A locked row: a dense block or a foreign head. */
typedef struct DedupeRow
{
	int64 k1;
	int64 k2;
	char *data;	 /* bitmap, or a head's hashes (a private copy) */
	int len;	 /* bytes of data */
	int32 n;	 /* dense: bits set */
	DateADT day; /* foreign: the head's day */
	bool changed;
	char *flush; /* foreign: a past day's hashes to move */
	int flush_len;
	DateADT flush_day;
} DedupeRow;

/* The SQL of one kind of locked row; $1 k1[], $2 k2[], $3 what a new row holds. */
typedef struct RowKind
{
	const char *ensure_sql;
	const char *lock_sql;  /* k1, k2, data, n, day in key order */
	const char *write_sql; /* $1 k1[], $2 k2[], $3 data[], $4 n[], $5 day[] */
	Oid fill_type;
	SPIPlanPtr ensure_plan;
	SPIPlanPtr lock_plan;
	SPIPlanPtr write_plan;

	/*
	 * The same for ONE row, with scalar arguments (NULL: use the array
	 * forms): a plain index scan instead of a join with unnest(), about a
	 * third of these statements' cost on a hot stream's one-block batches.
	 */
	const char *lock1_sql;	/* $1 k1, $2 k2 */
	const char *write1_sql; /* $1 k1, $2 k2, $3 data, $4 n, $5 day */
	SPIPlanPtr lock1_plan;
	SPIPlanPtr write1_plan;
} RowKind;

static RowKind dense_kind = {
	"INSERT INTO sharecount.dedupe_dense (origin, block, bits) "
	"SELECT u.a, u.b, $3 FROM unnest($1, $2) AS u(a, b) ORDER BY 1, 2 "
	"ON CONFLICT DO NOTHING",
	"SELECT d.origin, d.block, d.bits, d.n, d.day "
	"FROM sharecount.dedupe_dense d JOIN unnest($1, $2) AS u(a, b) "
	"ON d.origin OPERATOR(pg_catalog.=) u.a AND d.block OPERATOR(pg_catalog.=) u.b "
	"ORDER BY 1, 2 FOR UPDATE OF d",
	"UPDATE sharecount.dedupe_dense d SET bits = u.x, n = u.n, day = u.day "
	"FROM unnest($1, $2, $3, $4, $5) AS u(a, b, x, n, day) "
	"WHERE d.origin OPERATOR(pg_catalog.=) u.a AND d.block OPERATOR(pg_catalog.=) u.b",
	BYTEAOID,
	NULL,
	NULL,
	NULL,
	"SELECT d.origin, d.block, d.bits, d.n, d.day FROM sharecount.dedupe_dense d "
	"WHERE d.origin OPERATOR(pg_catalog.=) $1 AND d.block OPERATOR(pg_catalog.=) $2 "
	"FOR UPDATE OF d",
	"UPDATE sharecount.dedupe_dense d SET bits = $3, n = $4, day = $5 "
	"WHERE d.origin OPERATOR(pg_catalog.=) $1 AND d.block OPERATOR(pg_catalog.=) $2",
	NULL,
	NULL};

static RowKind head_kind = {
	"INSERT INTO sharecount.dedupe_foreign_head (bucket, day, hashes) "
	"SELECT u.a::pg_catalog.int4, $3, ''::pg_catalog.bytea FROM unnest($1, $2) AS u(a, b) "
	"ORDER BY 1 ON CONFLICT DO NOTHING",
	"SELECT h.bucket::pg_catalog.int8, 0::pg_catalog.int8, h.hashes, 0, h.day "
	"FROM sharecount.dedupe_foreign_head h WHERE h.bucket OPERATOR(pg_catalog.=) ANY ($1) "
	"AND $2 IS NOT NULL ORDER BY 1 FOR UPDATE OF h",
	"UPDATE sharecount.dedupe_foreign_head h SET hashes = u.x, day = u.day "
	"FROM unnest($1, $2, $3, $4, $5) AS u(a, b, x, n, day) "
	"WHERE h.bucket OPERATOR(pg_catalog.=) u.a",
	DATEOID,
	NULL,
	NULL,
	NULL,
	NULL,
	NULL,
	NULL,
	NULL};

static SPIPlanPtr flush_plan = NULL;

/* The day (UTC) this transaction started: the day foreign ids are kept under. */
DateADT
sc_dedupe_today(void)
{
	TimestampTz ts = GetCurrentTransactionStartTimestamp();
	int64 d = ts / USECS_PER_DAY;

	if (ts < 0 && ts % USECS_PER_DAY != 0)
		d--;
	return (DateADT) d;
}

/* Whether id is dense ("<16 lowercase hex>-<n>", 1 <= n <= INT64_MAX); its parts. */
static bool
parse_dense(const char *id, uint64 *origin, int64 *n)
{
	int len = strlen(id);
	int i;
	uint64 o = 0;
	int64 v = 0;

	if (len < 18 || len > 36 || id[16] != '-' || id[17] < '1' || id[17] > '9')
		return false;
	for (i = 0; i < 16; i++)
	{
		char c = id[i];

		if (c >= '0' && c <= '9')
			o = (o << 4) | (uint64) (c - '0');
		else if (c >= 'a' && c <= 'f')
			o = (o << 4) | (uint64) (c - 'a' + 10);
		else
			return false;
	}
	for (i = 17; i < len; i++)
	{
		int d = id[i] - '0';

		if (d < 0 || d > 9 || v > (PG_INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*origin = o;
	*n = v;
	return true;
}

/* Order of (k1, k2) keys: int8 order, as the lock statements' ORDER BY. */
static int
cmp_keys(int64 k1a, int64 k2a, int64 k1b, int64 k2b)
{
	if (k1a != k1b)
		return k1a < k1b ? -1 : 1;
	return k2a < k2b ? -1 : (k2a > k2b ? 1 : 0);
}

static int
cmp_id(const void *a, const void *b)
{
	const DedupeId *x = a;
	const DedupeId *y = b;
	int c = cmp_keys(x->k1, x->k2, y->k1, y->k2);

	if (c != 0)
		return c;
	if (x->bit != y->bit)
		return x->bit < y->bit ? -1 : 1;
	return memcmp(x->hash, y->hash, SC_DEDUPE_HASH_BYTES);
}

static int
cmp_row(const void *a, const void *b)
{
	const DedupeRow *x = a;
	const DedupeRow *y = b;

	return cmp_keys(x->k1, x->k2, y->k1, y->k2);
}

static DedupeRow *
find_row(DedupeRow *rows, int nrows, int64 k1, int64 k2)
{
	DedupeRow key;

	key.k1 = k1;
	key.k2 = k2;
	return bsearch(&key, rows, nrows, sizeof(DedupeRow), cmp_row);
}

static Datum
int8_array(int64 *v, int n)
{
	Datum *d = palloc(sizeof(Datum) * Max(n, 1));
	int i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(
		construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static bytea *
make_bytea(const char *data, int len)
{
	bytea *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(b), data, len);
	return b;
}

/*
 * Create the rows of keys (k1[i], k2[i]) that do not exist and lock them all
 * FOR UPDATE in key order; *nrows rows come back sorted.  fill is what a new
 * row holds (a zero bitmap, or today's date for a head).
 */
static DedupeRow *
lock_rows(RowKind *kind, int64 *k1, int64 *k2, int nkeys, Datum fill,
		  int *nrows)
{
	Oid types[3] = {INT8ARRAYOID, INT8ARRAYOID, kind->fill_type};
	Datum values[3];
	DedupeRow *rows = palloc0(sizeof(DedupeRow) * nkeys);
	int try;

	/* one row: lock it first, create it only if missing (Rules) */
	bool lock_first = nkeys == 1;
	bool one = nkeys == 1 && kind->lock1_sql != NULL;
	Oid one_types[2] = {INT8OID, INT8OID};
	Datum one_key[2] = {Int64GetDatum(k1[0]), Int64GetDatum(k2[0])};

	values[0] = int8_array(k1, nkeys);
	values[1] = int8_array(k2, nkeys);
	values[2] = fill;
	sc_prepare_once(&kind->ensure_plan, kind->ensure_sql, 3, types);
	sc_prepare_once(&kind->lock_plan, kind->lock_sql, 2, types);
	if (one)
		sc_prepare_once(&kind->lock1_plan, kind->lock1_sql, 2, one_types);
	for (try = 0; try < SC_DEDUPE_LOCK_TRIES; try++)
	{
		SPITupleTable *tt;
		uint64 r;

		if (!lock_first &&
			SPI_execute_plan(kind->ensure_plan, values, NULL, false, 0) !=
				SPI_OK_INSERT)
			elog(ERROR, "dedupe: creating rows failed");
		if (SPI_execute_plan(one ? kind->lock1_plan : kind->lock_plan,
							 one ? one_key : values, NULL, false,
							 0) != SPI_OK_SELECT)
			elog(ERROR, "dedupe: locking rows failed");
		if (SPI_processed < (uint64) nkeys)
		{
			/* missing (new, or pruned meanwhile): create them, lock again */
			if (lock_first)
				try--;
			lock_first = false;
			continue;
		}
		tt = SPI_tuptable;
		for (r = 0; r < SPI_processed; r++)
		{
			HeapTuple tup = tt->vals[r];
			bool isnull;
			bytea *b;

			rows[r].k1 =
				DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
			rows[r].k2 =
				DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 2, &isnull));
			b = DatumGetByteaPCopy(
				SPI_getbinval(tup, tt->tupdesc, 3, &isnull));
			rows[r].data = VARDATA(b);
			rows[r].len = VARSIZE(b) - VARHDRSZ;
			rows[r].n =
				DatumGetInt32(SPI_getbinval(tup, tt->tupdesc, 4, &isnull));
			rows[r].day =
				DatumGetDateADT(SPI_getbinval(tup, tt->tupdesc, 5, &isnull));
		}
		*nrows = (int) SPI_processed;
		qsort(rows, *nrows, sizeof(DedupeRow),
			  cmp_row); /* int8 order = C order */
		return rows;
	}
	elog(ERROR, "dedupe: rows kept disappearing while being locked");
	return NULL;
}

/* Write one changed row back (RowKind.write1_sql). */
static void
write_one(RowKind *kind, int64 k1, int64 k2, Datum data, Datum n, Datum day)
{
	Oid types[5] = {INT8OID, INT8OID, BYTEAOID, INT4OID, DATEOID};
	Datum values[5] = {Int64GetDatum(k1), Int64GetDatum(k2), data, n, day};

	sc_prepare_once(&kind->write1_plan, kind->write1_sql, 5, types);
	if (SPI_execute_plan(kind->write1_plan, values, NULL, false, 0) !=
			SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "dedupe: writing rows failed");
}

/* Write the changed rows back (one UPDATE for all of them). */
static void
write_rows(RowKind *kind, DedupeRow *rows, int nrows)
{
	Oid types[5] = {INT8ARRAYOID, INT8ARRAYOID, BYTEAARRAYOID, INT4ARRAYOID,
					DATEARRAYOID};
	Datum values[5];
	int64 *k1 = palloc(sizeof(int64) * nrows);
	int64 *k2 = palloc(sizeof(int64) * nrows);
	Datum *data = palloc(sizeof(Datum) * nrows);
	Datum *n = palloc(sizeof(Datum) * nrows);
	Datum *day = palloc(sizeof(Datum) * nrows);
	int i, m = 0;

	for (i = 0; i < nrows; i++)
	{
		if (!rows[i].changed)
			continue;
		k1[m] = rows[i].k1;
		k2[m] = rows[i].k2;
		data[m] = PointerGetDatum(make_bytea(rows[i].data, rows[i].len));
		n[m] = Int32GetDatum(rows[i].n);
		day[m] = DateADTGetDatum(rows[i].day);
		m++;
	}
	if (m == 0)
		return;
	if (m == 1 && kind->write1_sql != NULL)
	{
		write_one(kind, k1[0], k2[0], data[0], n[0], day[0]);
		return;
	}
	values[0] = int8_array(k1, m);
	values[1] = int8_array(k2, m);
	values[2] = PointerGetDatum(
		construct_array(data, m, BYTEAOID, -1, false, TYPALIGN_INT));
	values[3] =
		PointerGetDatum(construct_array(n, m, INT4OID, 4, true, TYPALIGN_INT));
	values[4] = PointerGetDatum(
		construct_array(day, m, DATEOID, 4, true, TYPALIGN_INT));
	sc_prepare_once(&kind->write_plan, kind->write_sql, 5, types);
	if (SPI_execute_plan(kind->write_plan, values, NULL, false, 0) !=
			SPI_OK_UPDATE ||
		SPI_processed != (uint64) m)
		elog(ERROR, "dedupe: writing rows failed");
}

/* Whether hash is in the unsorted array of a head, data[0..len). */
static bool
hash_in_head(const char *data, int len, const uint8 *hash)
{
	int i;

	for (i = 0; i + SC_DEDUPE_HASH_BYTES <= len; i += SC_DEDUPE_HASH_BYTES)
		if (memcmp(data + i, hash, SC_DEDUPE_HASH_BYTES) == 0)
			return true;
	return false;
}

static int
cmp_hash(const void *a, const void *b)
{
	return memcmp(a, b, SC_DEDUPE_HASH_BYTES);
}

/* The dense ids ds[0..nd): lock their blocks, set their bits. */
static void
dedupe_dense(DedupeId *ds, int nd)
{
	int64 *k1 = palloc(sizeof(int64) * nd);
	int64 *k2 = palloc(sizeof(int64) * nd);
	int nkeys = 0, nrows, i;
	DedupeRow *rows;
	char zeros[SC_DEDUPE_BLOCK_BYTES];
	DateADT today = sc_dedupe_today();

	for (i = 0; i < nd; i++)
		if (i == 0 || ds[i].k1 != ds[i - 1].k1 || ds[i].k2 != ds[i - 1].k2)
		{
			k1[nkeys] = ds[i].k1;
			k2[nkeys++] = ds[i].k2;
		}
	memset(zeros, 0, sizeof(zeros));
	rows =
		lock_rows(&dense_kind, k1, k2, nkeys,
				  PointerGetDatum(make_bytea(zeros, sizeof(zeros))), &nrows);
	for (i = 0; i < nd; i++)
	{
		DedupeRow *r = find_row(rows, nrows, ds[i].k1, ds[i].k2);
		uint8 *byte;

		if (r == NULL || r->len != SC_DEDUPE_BLOCK_BYTES)
			elog(ERROR,
				 "dedupe: block %lld of origin %llx is missing or malformed",
				 (long long) ds[i].k2, (unsigned long long) ds[i].k1);
		byte = (uint8 *) r->data + ds[i].bit / 8;
		if (*byte & (1 << (ds[i].bit % 8)))
			ds[i].dup = true;
		else
		{
			*byte |= (1 << (ds[i].bit % 8));
			r->n++;
			r->day = Max(r->day, today);
			r->changed = true;
		}
	}
	write_rows(&dense_kind, rows, nrows);
}

/*
 * Add the new hashes fs[from..to) to head h, in front of the ones it holds:
 * a head is unsorted, new hashes first, so that the new row version shares
 * its whole tail with the old one and a same-page (HOT) update logs little
 * more than the new hashes (heap_update's prefix/suffix compression).  A head
 * holding an earlier day first hands that day to h->flush (sorted, as a past
 * day's row is), or keeps it as a later day's when that day is sealed
 * (docs/extension.md, "Dedupe": a sealed day's filter covers all its rows).
 */
static void
add_to_head(DedupeRow *h, DedupeId *fs, int from, int to, DateADT today,
			const DedupePast *past)
{
	int newlen = (to - from) * SC_DEDUPE_HASH_BYTES;
	char *out;
	int j;

	if (h->day < today)
	{
		DateADT day = h->day;

		/* a sealed day gets no more rows: its hashes count as a later day's */
		if (h->len > 0 && sc_dedupe_day_sealed(past, day))
			day = past->max_sealed + 1;
		if (h->len > 0 && day < today)
		{
			h->flush = h->data;
			h->flush_len = h->len;
			h->flush_day = day;
			qsort(h->flush, h->flush_len / SC_DEDUPE_HASH_BYTES,
				  SC_DEDUPE_HASH_BYTES, cmp_hash);
			h->len = 0;
		}
		h->day = Max(day, today);
	}
	out = palloc((Size) newlen + h->len);
	for (j = from; j < to; j++)
		memcpy(out + (Size) (j - from) * SC_DEDUPE_HASH_BYTES, fs[j].hash,
			   SC_DEDUPE_HASH_BYTES);
	if (h->len > 0)
		memcpy(out + newlen, h->data, h->len);
	h->data = out;
	h->len += newlen;
	h->changed = true;
}

/*
 * Move the flushed heads' past days into their partitions and count them in
 * sharecount.dedupe_days (this backend's shard): one statement.
 */
static void
flush_heads(DedupeRow *heads, int nh)
{
	Oid types[5] = {INT2ARRAYOID, DATEARRAYOID, INT4ARRAYOID, BYTEAARRAYOID,
					INT4OID};
	Datum values[5];
	Datum *col[4]; /* slot, day, bucket, hashes of each moved day */
	int i, m = 0;

	for (i = 0; i < 4; i++)
		col[i] = palloc(sizeof(Datum) * Max(nh, 1));
	for (i = 0; i < nh; i++)
	{
		if (heads[i].flush == NULL)
			continue;
		col[0][m] = Int16GetDatum(sc_dedupe_day_slot(heads[i].flush_day));
		col[1][m] = DateADTGetDatum(heads[i].flush_day);
		col[2][m] = Int32GetDatum((int32) heads[i].k1);
		col[3][m] =
			PointerGetDatum(make_bytea(heads[i].flush, heads[i].flush_len));
		m++;
	}
	if (m == 0)
		return;
	values[0] = PointerGetDatum(
		construct_array(col[0], m, INT2OID, 2, true, TYPALIGN_SHORT));
	values[1] = PointerGetDatum(
		construct_array(col[1], m, DATEOID, 4, true, TYPALIGN_INT));
	values[2] = PointerGetDatum(
		construct_array(col[2], m, INT4OID, 4, true, TYPALIGN_INT));
	values[3] = PointerGetDatum(
		construct_array(col[3], m, BYTEAOID, -1, false, TYPALIGN_INT));
	values[4] = Int32GetDatum(MyProcPid % SC_STATS_SHARDS);
	sc_prepare_once(
		&flush_plan,
		"WITH moved AS (INSERT INTO sharecount.dedupe_foreign (slot, day, bucket, hashes) "
		"SELECT * FROM unnest($1, $2, $3, $4) "
		"RETURNING day, pg_catalog.octet_length(hashes) / 16 AS n) "
		"INSERT INTO sharecount.dedupe_days AS d (day, shard, records) "
		"SELECT m.day, $5, pg_catalog.sum(m.n) FROM moved m GROUP BY 1 ORDER BY 1 "
		"ON CONFLICT (day, shard) DO UPDATE SET records = d.records + excluded.records",
		5, types);
	if (SPI_execute_plan(flush_plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "dedupe: moving a day to its partition failed");
}

/* The foreign ids fs[0..nf) (sorted by bucket, hash). */
static void
dedupe_foreign(DedupeId *fs, int nf, char **ids)
{
	int64 *k1 = palloc(sizeof(int64) * nf);
	int64 *k2 = palloc0(sizeof(int64) * nf);
	int nkeys = 0, nh, i, from;
	DateADT today = sc_dedupe_today();
	DedupeRow *heads;
	DedupePast past;
	bool flushing = false;

	for (i = 0; i < nf; i++)
		if (i == 0 || fs[i].k1 != fs[i - 1].k1)
			k1[nkeys++] = fs[i].k1;
	heads = lock_rows(&head_kind, k1, k2, nkeys, DateADTGetDatum(today), &nh);
	for (i = 0; i < nh; i++)
		if (heads[i].day < today && heads[i].len > 0)
			flushing = true; /* a head may move a day into its partition */
	sc_dedupe_find_past(fs, nf, ids, flushing, &past);

	for (from = 0; from < nf; from = i)
	{
		DedupeRow *h = find_row(heads, nh, fs[from].k1, 0);
		int to = from;

		if (h == NULL)
			elog(ERROR, "dedupe: head of bucket %lld is missing",
				 (long long) fs[from].k1);
		/* the bucket's new hashes, compacted to fs[from..to) */
		for (i = from; i < nf && fs[i].k1 == fs[from].k1; i++)
		{
			if (!fs[i].dup && hash_in_head(h->data, h->len, fs[i].hash))
				fs[i].dup = true;
			if (!fs[i].dup && to > from &&
				memcmp(fs[to - 1].hash, fs[i].hash, SC_DEDUPE_HASH_BYTES) == 0)
				fs[i].dup = true; /* an MD5 collision inside the batch */
			if (!fs[i].dup)
			{
				DedupeId t = fs[to];

				fs[to++] = fs[i];
				fs[i] = t;
			}
		}
		if (to > from)
			add_to_head(h, fs, from, to, today, &past);
	}
	write_rows(&head_kind, heads, nh);
	flush_heads(heads, nh);
}

/* The batch's distinct jobIds, dense ones first, each part sorted. */
static DedupeId *
classify(char **ids, int n, int *ndense)
{
	DedupeId *all = palloc0(sizeof(DedupeId) * Max(n, 1));
	DedupeId *foreign = palloc0(sizeof(DedupeId) * Max(n, 1));
	int nd = 0, nf = 0, i;

	for (i = 0; i < n; i++)
	{
		uint64 origin;
		int64 seq;
		const char *err = NULL;

		if (parse_dense(ids[i], &origin, &seq))
		{
			all[nd].idx = i;
			all[nd].k1 = (int64) origin;
			all[nd].k2 = seq / SC_DEDUPE_BLOCK_IDS;
			all[nd++].bit = (int) (seq % SC_DEDUPE_BLOCK_IDS);
			continue;
		}
		foreign[nf].idx = i;
		if (!pg_md5_binary(ids[i], strlen(ids[i]), foreign[nf].hash, &err))
			elog(ERROR, "dedupe: md5 failed: %s", err ? err : "?");
		foreign[nf].k1 = (foreign[nf].hash[0] << 8) | foreign[nf].hash[1];
		nf++;
	}
	qsort(all, nd, sizeof(DedupeId), cmp_id);
	qsort(foreign, nf, sizeof(DedupeId), cmp_id);
	memcpy(all + nd, foreign, sizeof(DedupeId) * nf);
	*ndense = nd;
	return all;
}

bool
sc_dedupe_1_1(char **ids, int n, bool *applied)
{
	DedupeId *all;
	int nd, i;

	if (!sc_dedupe_schema_1_1())
		return false;
	if (n == 0)
		return true;
	all = classify(ids, n, &nd);
	if (nd > 0)
		dedupe_dense(all, nd);
	if (n - nd > 0)
		dedupe_foreign(all + nd, n - nd, ids);
	for (i = 0; i < n; i++)
		applied[all[i].idx] = !all[i].dup;
	return true;
}
