/*
 * publisher_int.h — the publisher role's private state, shared by its four
 * files: publisher.c (slots, claims, the event loop), publisher_rows.c (the
 * claim statement and its rows), publisher_confirm.c (AMQP frames: confirms,
 * returns, nacks and what repeated nacks lead to) and publisher_idle.c (the
 * wake-up protocol of docs/wakeup.md, outbox gauges).
 *
 * Rules: everything here belongs to the one publisher thread (no locking).
 * A slot's rows point into its claim PGresult and are valid only while the
 * slot is busy; a packed claim's value is split in place (its tabs and
 * newlines become NULs, publisher_rows.c), so it is read only through them.  Delivery tags are those of channel 1 of p->amqp.conn; they
 * restart at 1 with every new connection, which is only opened with no slot
 * in flight.
 */
#ifndef SC_PUBLISHER_INT_H
#define SC_PUBLISHER_INT_H

#include <stdint.h>

#include <libpq-fe.h>

#include "amqp.h"
#include "config.h"
#include "pace.h"
#include "pgconn.h"
#include "publisher_rows.h"

struct slot
{
	PGconn *pg;
	struct pgconn_prep prep; /* statements prepared on pg (zeroed with every new connection) */
	int busy;				 /* a claim transaction is open */
	PGresult *claim;		 /* its rows (busy only) */
	struct pub_row *rows;	 /* publish_batch entries */
	int n;					 /* rows claimed */
	int sent;				 /* rows published: tags base .. base + sent - 1 */
	uint64_t base;
	int64_t deadline; /* give up on the confirms at this time (clock_now_ms) */
};

struct publisher
{
	const struct sc_config *cfg;
	struct sc_amqp amqp;
	struct slot slots[SC_MAX_PIPELINE];
	int nslots;
	int pg_backoff_ms;
	uint64_t next_tag;			/* delivery tag of the next publish on channel 1 */
	int64_t next_stats_ms;		/* next outbox gauge refresh */
	int fail_backoff_ms;		/* pause after a failure; reset by a good claim */
	int64_t retry_at_ms;		/* no claim before this time (failure, nack) */
	int64_t gap_until_ms;		/* no claim before this while a slot is in flight */
	int empty_claims;			/* consecutive empty claims while slots were in flight */
	struct sc_pace pace;		/* rows claimed per second (publisher_partial_gap_ms) */
	int nacked_claims;			/* claims in a row settled with nacks and no ack */
	int nack_backoff_ms;		/* pause before the next nack reconnect */
	long nack_reconnects;		/* fresh connections opened because of nacks */
	int64_t packed_fn_retry_ms; /* sharecount_outbox_claim_packed unusable until then (0: usable) */
};

/* publisher.c */
void publisher_slot_drop(struct slot *s);
int publisher_slot_ok(const struct slot *s);
void publisher_fail_backoff(struct publisher *p);
int publisher_claim(struct publisher *p, struct slot *s);

/* publisher_rows.c */
/* Run the claim in s's open transaction (*packed: which statement answered); NULL if the connection broke. */
PGresult *publisher_run_claim(struct publisher *p, struct slot *s, const char *const *params, int *packed);
/* Point s->rows into s->claim (at most max): the number of rows, or -1 if the result is malformed (logged). */
int publisher_claimed_rows(struct slot *s, int packed, int max);

/* publisher_confirm.c */
int publisher_read_frame(struct publisher *p, int timeout_ms);
int publisher_amqp_readable(struct publisher *p);
int publisher_drain_frames(struct publisher *p);
void publisher_note_nacks(struct publisher *p, const struct slot *s);
void publisher_nack_reconnect(struct publisher *p);

/* publisher_idle.c */
void publisher_refresh_outbox_gauges(struct publisher *p, struct slot *s);
void publisher_go_idle(struct publisher *p);

#endif
