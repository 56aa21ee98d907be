/*
 * wakeup.c: the wake-up protocol between writers and an idle publisher
 * (docs/wakeup.md).  A NOTIFY from every writing transaction would serialise
 * commits (docs/wakeup.md, "Why not simply NOTIFY"), so a writer notifies
 * only when a publisher is asleep, which it learns from one lock:
 *
 * - sharecount_publisher_sleep(): an idle publisher takes the lock
 *   (wakeup_tag) in ExclusiveLock mode at session level.
 * - A transaction that wrote outbox rows looks at the same lock at PRE_COMMIT
 *   without taking it: if any session holds it (LockWaiterCount() counts the
 *   holders and waiters of a tag, under the tag's lock-partition LWLock, as
 *   LockAcquire() does), a publisher sleeps, so queue NOTIFY sharecount_wakeup
 *   (sent at commit, never on abort).  Otherwise nothing: a busy publisher
 *   will claim again anyway.  Only publishers ever hold the lock.
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
 * a publisher holds the sleep lock.  This costs one look into the shared lock
 * table per writing commit (no local lock entry, nothing created or removed
 * in shared memory) instead of the commit-serialising NOTIFY.
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
			if (LockWaiterCount(&tag) > 0)
				Async_Notify(SC_WAKEUP_CHANNEL, NULL);
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
 * session does.  Writers never hold the lock (they only look at it), so the
 * only other holder can be a publisher that sleeps: no retry.
 */
Datum
sharecount_publisher_sleep(PG_FUNCTION_ARGS)
{
	LOCKTAG tag;
	LockAcquireResult r;

	wakeup_tag(&tag);
	r = LockAcquire(&tag, ExclusiveLock, true, true);
	if (r == LOCKACQUIRE_NOT_AVAIL)
		PG_RETURN_BOOL(false);
	/* already ours: keep one reference, not two */
	if (r == LOCKACQUIRE_ALREADY_HELD || r == LOCKACQUIRE_ALREADY_CLEAR)
		LockRelease(&tag, ExclusiveLock, true);
	PG_RETURN_BOOL(true);
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
