/*
 * wakeup.c: the wake-up protocol between writers and an idle publisher
 * (docs/wakeup.md).  A NOTIFY from every writing transaction would serialise
 * commits (docs/wakeup.md, "Why not simply NOTIFY"), so a writer notifies
 * only when a publisher is asleep, which it learns from one lock:
 *
 * - sharecount_publisher_sleep(): an idle publisher takes the lock
 *   (wakeup_tag) in ExclusiveLock mode at session level.
 * - A transaction that wrote outbox rows tries, at PRE_COMMIT, to take the same
 *   lock in ShareLock mode without waiting.  Not available: a publisher sleeps,
 *   so queue NOTIFY sharecount_wakeup (sent at commit, never on abort).
 *   Available: release it at once; a busy publisher will claim again anyway.
 * - sharecount_publisher_wake(): the publisher releases the lock.
 *
 * Rules: the lock's tag is one that no SQL-callable function can take
 * (sharecount.h, SC_WAKEUP_KEY_KIND): only the roles granted
 * sharecount_publisher_sleep() can hold it, so no other role can make every
 * tracked commit NOTIFY.  The flag "this transaction wrote outbox rows" is
 * per backend and is reset on every transaction end (commit, abort, prepare).
 * The XactCallback is registered once per backend, on the first outbox write.
 * Prepared transactions never notify (PostgreSQL forbids NOTIFY in them); the
 * publisher's poll picks their jobs up.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"

#include "sharecount.h"

PG_FUNCTION_INFO_V1(sharecount_publisher_sleep);
PG_FUNCTION_INFO_V1(sharecount_publisher_wake);

static bool wrote_outbox = false;
static bool callback_registered = false;

/*
 * The wake-up lock: an advisory tag whose fourth field is SC_WAKEUP_KEY_KIND,
 * where pg_advisory_lock() and its kin always put 1 or 2.  Release 1.0 used 2
 * (the key pg_advisory_lock(1935896180, 1) takes), so any role could squat it.
 */
static void
wakeup_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, SC_WAKEUP_KEY1, SC_WAKEUP_KEY2,
						 SC_WAKEUP_KEY_KIND);
}

/*
 * At PRE_COMMIT of a transaction that wrote the outbox: NOTIFY if and only if
 * a publisher holds the sleep lock.  This costs one lock-table probe per
 * writing commit instead of the commit-serialising NOTIFY.
 */
static void
wakeup_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT)
	{
		if (wrote_outbox)
		{
			LOCKTAG tag;

			wrote_outbox = false;
			wakeup_tag(&tag);
			if (LockAcquire(&tag, ShareLock, false, true) ==
				LOCKACQUIRE_NOT_AVAIL)
				Async_Notify(SC_WAKEUP_CHANNEL, NULL);
			else
				LockRelease(&tag, ShareLock, false);
		}
	}
	else if (event != XACT_EVENT_PARALLEL_PRE_COMMIT)
		wrote_outbox = false;
}

void
sc_wakeup_note_outbox_write(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(wakeup_xact_callback, NULL);
		callback_registered = true;
	}
	wrote_outbox = true;
}

/*
 * sharecount_publisher_sleep() -> boolean: true if this session now holds the
 * sleep lock (it is the publisher that writers will wake), false if another
 * session does.  A committing writer holds the lock in share mode for a
 * moment, so retry for about 10 ms before concluding another publisher has it.
 */
Datum
sharecount_publisher_sleep(PG_FUNCTION_ARGS)
{
	LOCKTAG tag;
	int i;

	wakeup_tag(&tag);
	for (i = 0; i < 10; i++)
	{
		LockAcquireResult r = LockAcquire(&tag, ExclusiveLock, true, true);

		if (r != LOCKACQUIRE_NOT_AVAIL)
		{
			/* already ours: keep one reference, not two */
			if (r == LOCKACQUIRE_ALREADY_HELD ||
				r == LOCKACQUIRE_ALREADY_CLEAR)
				LockRelease(&tag, ExclusiveLock, true);
			PG_RETURN_BOOL(true);
		}
		CHECK_FOR_INTERRUPTS();
		pg_usleep(1000L);
	}
	PG_RETURN_BOOL(false);
}

/* sharecount_publisher_wake(): release the sleep lock if this session holds it. */
Datum
sharecount_publisher_wake(PG_FUNCTION_ARGS)
{
	LOCKTAG tag;

	wakeup_tag(&tag);
	while (LockHeldByMe(&tag, ExclusiveLock))
		LockRelease(&tag, ExclusiveLock, true);
	PG_RETURN_VOID();
}
