/*
 * consumer_int.h — the consumer role's private state, shared by its files:
 * consumer.c (deliveries in, the batch settled, the thread's loop) and
 * consumer_apply.c (one batch applied, failures judged, retried, split).
 *
 * Rules: everything here belongs to the one consumer thread (no locking).
 * A delivery owns its strings and its envelope until batch_clear().
 */
#ifndef SC_CONSUMER_INT_H
#define SC_CONSUMER_INT_H

#include <stdint.h>

#include <libpq-fe.h>

#include "amqp.h"
#include "config.h"
#include "job.h"
#include "live_event.h"
#include "live_pub.h"
#include "metrics.h"
#include "pace.h"
#include "pgconn.h"

enum dstatus
{
	D_PENDING = 0,
	D_APPLIED,
	D_DUPLICATE,
	D_INVALID,
	D_REJECTED,
	D_REQUEUE
};

struct delivery
{
	uint64_t tag;
	struct sc_job job;
	enum dstatus status;
	char reason[320]; /* why rejected / invalid */
	char *reply_to;	  /* NestJS send(): where to answer */
	char *correlation_id;
	enum sc_job_kind kind;
	int64_t received_ms; /* clock_now_ms() */
	int attempts;		 /* failures applying it alone (in memory) */
	int prior;			 /* x-delivery-count: earlier returns (quorum) */
	amqp_envelope_t env; /* as received (for the dead letter); owned */
};

struct consumer
{
	const struct sc_config *cfg;
	struct sc_amqp amqp;
	struct sc_amqp dl; /* dead letters: opened per settle that has some */
	int quorum;		   /* queue_type = quorum: attempts counted by the broker */
	PGconn *pg;
	struct pgconn_prep prep; /* the statements prepared on pg (zeroed with every new connection) */
	int pg_backoff_ms;
	struct delivery *batch;
	int n;
	struct sc_pace pace; /* deliveries collected per second (consumer_linger_ms) */
	int64_t next_depth_ms;
	int not_ready_ms;	   /* next pause while the database is not ready */
	unsigned probe_seq;	   /* makes each probe's jobId unique */
	char last_sqlstate[6]; /* of the last failed apply ("" if none) */
	/* count-change events (docs/live.md "Publishing") */
	struct live_pub *events;	 /* NULL: publish_events = 0, or its thread could not start */
	struct live_count *changes;	 /* keys changed by this batch's committed applies */
	int nchanges, changes_cap;	 /* offered to events after the batch is settled */
	int64_t changes_fn_retry_ms; /* sharecount_apply_batch_changes unusable until then (0: usable) */
	int64_t json_fn_retry_ms;	 /* sharecount_apply_json unusable until then (0: usable) */
};

/* consumer.c: (re)connect to PostgreSQL (0, or -1 logged), and close it. */
int consumer_pg_ensure(struct consumer *c);
void consumer_pg_drop(struct consumer *c);

/*
 * consumer_apply.c: apply every pending, parsed delivery of the batch.  0
 * when each has a final status; -1 if the batch must be abandoned unsettled
 * (stopping while the database is down or a retry is pending; the broker
 * redelivers).
 */
int consumer_apply_all(struct consumer *c);

#endif
