/*
 * sharecount.c: module entry and small helpers shared by the trigger, the
 * apply functions and the readers: ISO-8601 timestamps, UUIDs, locating the
 * state tables, running SPI as their owner, and one-dimensional array
 * arguments.
 *
 * Rules: state tables are found by name (schema "sharecount"); a caller that
 * keeps an OID across transactions must drop it on relcache invalidation (the
 * trigger does, see outbox_lookup in trigger.c), so DROP/CREATE EXTENSION in
 * one session is safe.  Switching to the owner follows the RI triggers'
 * pattern: the previous user is restored explicitly on success and by
 * transaction/subtransaction abort on error.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "sharecount.h"

PG_MODULE_MAGIC;

/*
 * Render ts as ISO-8601 UTC with milliseconds: 2026-11-27T20:15:03.123Z
 * (SC_TS_LEN bytes and a NUL into buf).
 *
 * Written digit by digit: this runs once per claimed job, and snprintf() with
 * seven conversions cost about 2,000 instructions.  The date of the last day
 * rendered is kept (per backend, in statics): the rows of a claim are mostly
 * from one day, and timestamp2tm() was about 300 instructions a row.  Within
 * that day the time of day is split as timestamp2tm()'s dt2time() splits it
 * (hours, minutes, seconds, then microseconds, truncated to milliseconds).
 * Only a day in range (year 0 to 9999) is kept, so a timestamp inside it is
 * finite and in range.
 */
void
sc_format_timestamp(char *buf, TimestampTz ts)
{
	static TimestampTz day_start;
	static bool day_valid = false;
	static char day[SC_TS_DATE_LEN];
	int64 t;
	int hour, min, sec, ms;

#define SC_DIGITS2(p, v) ((p)[0] = '0' + (v) / 10, (p)[1] = '0' + (v) % 10)
	if (!day_valid || ts < day_start || ts >= day_start + USECS_PER_DAY)
	{
		struct pg_tm tm;
		fsec_t fsec;

		if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 ||
			tm.tm_year < 0 || tm.tm_year > 9999)
			elog(ERROR, "timestamp out of range");
		SC_DIGITS2(day, tm.tm_year / 100);
		SC_DIGITS2(day + 2, tm.tm_year % 100);
		day[4] = '-';
		SC_DIGITS2(day + 5, tm.tm_mon);
		day[7] = '-';
		SC_DIGITS2(day + 8, tm.tm_mday);
		day[10] = 'T';
		t = ts % USECS_PER_DAY;
		day_start = ts - (t < 0 ? t + USECS_PER_DAY : t);
		day_valid = true;
	}
	t = ts - day_start;
	hour = (int) (t / USECS_PER_HOUR);
	t -= hour * USECS_PER_HOUR;
	min = (int) (t / USECS_PER_MINUTE);
	t -= min * USECS_PER_MINUTE;
	sec = (int) (t / USECS_PER_SEC);
	ms = (int) ((t - sec * USECS_PER_SEC) / 1000);
	memcpy(buf, day, SC_TS_DATE_LEN);
	SC_DIGITS2(buf + 11, hour);
	buf[13] = ':';
	SC_DIGITS2(buf + 14, min);
	buf[16] = ':';
	SC_DIGITS2(buf + 17, sec);
	buf[19] = '.';
	buf[20] = '0' + ms / 100;
	SC_DIGITS2(buf + 21, ms % 100);
	buf[23] = 'Z';
	buf[SC_TS_LEN] = '\0';
#undef SC_DIGITS2
}

/*
 * A random (version 4) UUID, as the 16 bytes of a uuid datum.
 *
 * jobIds must be unique, not secret, so the bits come from a per-backend
 * xoshiro256** generator (pg_prng) seeded once from pg_strong_random(): with
 * 122 random bits, collisions are out of reach, and it avoids OpenSSL's
 * RAND_bytes, which costs locks and a parameter lookup per call (measured at
 * several percent of a tracked INSERT).  The outbox stores the bytes; the
 * text form is rendered when the job is claimed (sharecount.job_body).
 */
void
sc_uuid_v4(unsigned char *b)
{
	static pg_prng_state prng;
	static bool seeded = false;
	uint64 r1, r2;

	if (!seeded)
	{
		if (!pg_prng_strong_seed(&prng))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values")));
		seeded = true;
	}
	r1 = pg_prng_uint64(&prng);
	r2 = pg_prng_uint64(&prng);
	memcpy(b, &r1, 8);
	memcpy(b + 8, &r2, 8);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
}

/* "00".."ff": the two lowercase hex digits of each byte, filled once. */
static char hex_pairs[256][2];
static bool hex_pairs_ready = false;

/*
 * The canonical text form of a 16-byte UUID, as uuid_out() writes it
 * (lowercase, four hyphens), two digits per table look-up; buf >= 37 bytes.
 */
void
sc_uuid_format(char *buf, const unsigned char *b)
{
	int i, o = 0;

	if (!hex_pairs_ready)
	{
		static const char hex[] = "0123456789abcdef";

		for (i = 0; i < 256; i++)
		{
			hex_pairs[i][0] = hex[i >> 4];
			hex_pairs[i][1] = hex[i & 0x0f];
		}
		hex_pairs_ready = true;
	}
	for (i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		memcpy(buf + o, hex_pairs[b[i]], 2);
		o += 2;
	}
	buf[o] = '\0';
}

/*
 * OID of sharecount.<relname>; a clear error if the extension's schema is
 * gone (e.g. the extension was dropped while a trigger survived).
 */
Oid
sc_state_relid(const char *relname)
{
	Oid nsp = get_namespace_oid("sharecount", true);
	Oid relid = InvalidOid;

	if (OidIsValid(nsp))
		relid = get_relname_relid(relname, nsp);
	if (!OidIsValid(relid))
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("relation \"sharecount.%s\" does not exist", relname),
			 errhint(
				 "Is the sharecount extension installed in this database?")));
	return relid;
}

/*
 * Run what follows as the owner of relid.  The trigger uses this so that the
 * application's role needs no privilege on schema sharecount: like the
 * foreign-key triggers, the work is done with the rights of the object's
 * owner, in a restricted security context.
 */
void
sc_begin_as_owner(Oid relid, Oid *save_userid, int *save_sec)
{
	HeapTuple tup;
	Oid owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(save_userid, save_sec);
	SetUserIdAndSecContext(owner,
						   *save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
}

void
sc_end_as_owner(Oid save_userid, int save_sec)
{
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * A plan prepared on first use and kept for the backend's life.  Kept plans
 * are revalidated by the plan cache, so they survive DROP/CREATE EXTENSION in
 * the same session (names are re-resolved; all our SQL is schema-qualified).
 * The plan is generic (CURSOR_OPT_GENERIC_PLAN): planned once, not for each
 * call's parameters.  Left to the plan cache, statements over unnest() of
 * array parameters were planned again at every call (the custom plan always
 * looked cheaper), a fifth of the consumer's CPU per job (docs/performance.md,
 * P7).  Call while connected to SPI.
 */
SPIPlanPtr
sc_prepare_once(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr plan =
			SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

/*
 * The elements of a one-dimensional array argument whose element type is a
 * varlena with int alignment (text, jsonb).  A multi-dimensional array is a
 * user error naming the argument: "<what> must be a one-dimensional array".
 */
void
sc_array_elements(ArrayType *arr, Oid elemtype, const char *what,
				  Datum **elems, bool **nulls, int *n)
{
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(arr, elemtype, -1, false, TYPALIGN_INT, elems, nulls, n);
}
