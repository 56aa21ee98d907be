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

/* Limits of SPEC section 4. */
#define SC_CONTENT_TYPE_MAX 64
#define SC_CONTENT_ID_MAX 256
#define SC_JOB_ID_MAX 128
#define SC_AMOUNT_MAX 1000000

/* The advisory lock of the wake-up protocol (docs/wakeup.md). */
#define SC_WAKEUP_KEY1 1935896180	/* "scnt" */
#define SC_WAKEUP_KEY2 1
#define SC_WAKEUP_CHANNEL "sharecount_wakeup"

/* sharecount.c */
extern void sc_format_timestamp(char *buf, TimestampTz ts);	/* buf >= 32 bytes */
extern void sc_uuid_v4(char *buf);	/* buf >= 37 bytes */
extern Oid	sc_state_relid(const char *relname);
extern void sc_begin_as_owner(Oid relid, Oid *save_userid, int *save_sec);
extern void sc_end_as_owner(Oid save_userid, int save_sec);

/* wakeup.c */
extern void sc_wakeup_note_outbox_write(void);

#endif
