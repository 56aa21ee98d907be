/*
 * origin.c: the origin of this database's job stream, the first half of a
 * dense jobId "<origin>-<outbox id>" (docs/extension.md, "Jobs").
 *
 * The outbox id alone is not unique beyond one database and one history: two
 * databases sharing a broker both count from 1, and a database restored from
 * a backup (physical or pg_dump) rewinds its sequence and hands out again ids
 * that the old stream already published, which the consumer's dedupe would
 * then drop as duplicates.  So every job carries the origin of the server
 * life that wrote it: a 64-bit hash of
 *   - the cluster's system identifier (differs between clusters, also after
 *     pg_dump into another one),
 *   - the WAL timeline (a promoted standby or a point-in-time recovery is on a
 *     new one),
 *   - the database OID (databases of one cluster; a pg_dump restore into the
 *     same cluster creates a new database, hence a new OID),
 *   - the postmaster's start time (PgStartTime): every start of a server,
 *     including one started from a copy of the data directory, begins a new
 *     stream, so no copy can continue the ids of another.
 * The origin is stored in each outbox row when the row is written (column
 * origin), so a job keeps its jobId across restarts, failovers, dumps and
 * restores and every redelivery of it is recognised; only new jobs get the
 * new origin.
 *
 * Rules: computed once per backend on the first job it writes (all four inputs
 * are fixed for a backend's life once it may write: a standby's backends write
 * nothing before promotion, and the timeline does not change afterwards);
 * never called during recovery.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "outbox.h"

PG_FUNCTION_INFO_V1(sharecount_origin);

static bool origin_known = false;
static int64 origin_value = 0;

/* The origin stamped on the jobs this backend writes. */
int64
sc_origin(void)
{
	struct
	{
		uint64 sysid;
		TimestampTz started;
		TimeLineID timeline;
		Oid dboid;
	} in;

	if (origin_known)
		return origin_value;
	if (RecoveryInProgress())
		elog(ERROR, "sharecount: no job origin during recovery");
	memset(&in, 0, sizeof(in)); /* no padding bytes of chance in the hash */
	in.sysid = GetSystemIdentifier();
	in.started = PgStartTime;
	in.timeline = GetWALInsertionTimeLine();
	in.dboid = MyDatabaseId;
	origin_value = (int64) hash_bytes_extended((const unsigned char *) &in,
											   sizeof(in), 0);
	origin_known = true;
	return origin_value;
}

/* The origin as 16 lowercase hex characters. */
void
sc_origin_format(char *buf, int64 origin)
{
	snprintf(buf, 17, "%016" INT64_MODIFIER "x", (uint64) origin);
}

/*
 * sharecount._origin() -> text: the origin this session's jobs get, or NULL
 * on a standby (no jobs are written there).
 */
Datum
sharecount_origin(PG_FUNCTION_ARGS)
{
	char buf[17];

	if (RecoveryInProgress())
		PG_RETURN_NULL();
	sc_origin_format(buf, sc_origin());
	PG_RETURN_TEXT_P(cstring_to_text(buf));
}
