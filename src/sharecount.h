/*
 * sharecount.h: declarations shared by the sharecount extension's C files.
 *
 * Rules: everything here runs in an ordinary backend; no shared memory of our
 * own is used (the wake-up uses an advisory lock in the regular lock table).
 * Functions that return strings palloc them in the current memory context.
 */
#ifndef SHARECOUNT_H
#define SHARECOUNT_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"

/* Limits of SPEC section 4. */
#define SC_CONTENT_TYPE_MAX 64
#define SC_CONTENT_ID_MAX 256
#define SC_JOB_ID_MAX 128
#define SC_AMOUNT_MAX 1000000

/* The advisory lock of the wake-up protocol (docs/wakeup.md). */
#define SC_WAKEUP_KEY1 1935896180	/* "scnt" */
#define SC_WAKEUP_KEY2 1
#define SC_WAKEUP_CHANNEL "sharecount_wakeup"

/* Job kinds, as stored in sharecount.outbox.job. */
#define SC_JOB_CREATED 'c'		/* share_created */
#define SC_JOB_DELETED 'd'		/* share_deleted */
#define SC_JOB_COUNT_UPDATE 'u'	/* share_count_update; amount > 0 increments */

/* One job as the trigger hands it to outbox_insert(); NULL = SQL NULL. */
typedef struct OutboxJob
{
	char		kind;			/* SC_JOB_* */
	unsigned char job_id[16];	/* a v4 UUID */
	TimestampTz ts;				/* the job's timestamp */
	int64		amount;			/* SC_JOB_COUNT_UPDATE only: +n or -n */
	const char *share_id;
	const char *content_type;
	const char *content_id;
	const char *user_id;
	const char *channel_id;
	const char *campaign_id;
} OutboxJob;

/* outbox.c */
extern void outbox_insert(const OutboxJob *job);

/* sharecount.c */
extern void sc_format_timestamp(char *buf, TimestampTz ts);	/* buf >= 32 bytes */
extern void sc_uuid_v4(unsigned char *b);	/* 16 bytes */
extern void sc_uuid_format(char *buf, const unsigned char *b);	/* buf >= 37 bytes */
extern Oid	sc_state_relid(const char *relname);
extern void sc_begin_as_owner(Oid relid, Oid *save_userid, int *save_sec);
extern void sc_end_as_owner(Oid save_userid, int save_sec);
extern SPIPlanPtr sc_prepare_once(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types);

/* wakeup.c */
extern void sc_wakeup_note_outbox_write(void);

#endif
