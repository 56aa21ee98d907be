/*
 * dlq.h — dead letters with their reason (docs/bridge.md, "Dead letters"):
 * the consumer publishes a message it gives up on to the dead-letter exchange
 * itself, with x-sharecount-* headers, and the `sharecount-bridge dlq`
 * command lists, replays and purges the dead-letter queue.
 */
#ifndef SC_DLQ_H
#define SC_DLQ_H

#include <amqp.h>

#include "amqp.h"

/* Headers a dead letter carries (docs/bridge.md, "Dead letters"). */
#define SC_HDR_PREFIX "x-sharecount-"
#define SC_HDR_ERROR "x-sharecount-error"		/* the reason (longstr) */
#define SC_HDR_ATTEMPTS "x-sharecount-attempts" /* failed attempts (int) */
#define SC_HDR_DEAD_AT "x-sharecount-dead-at"	/* UTC, ISO 8601 (longstr) */
#define SC_HDR_JOB "x-sharecount-job"			/* job name, when known */
#define SC_HDR_JOB_ID "x-sharecount-job-id"		/* jobId, when known */
#define SC_HDR_EXCHANGE "x-sharecount-exchange" /* where it was first published */
#define SC_HDR_ROUTING_KEY "x-sharecount-routing-key"
/* `dlq list` without N prints this many. */
#define SC_DLQ_LIST_DEFAULT 20

/* What the consumer knows about a delivery it gives up on. */
struct sc_dead_letter
{
	const amqp_envelope_t *env; /* the delivery as received */
	const char *reason;
	int attempts;
	const char *job_name; /* "" if unknown */
	const char *job_id;	  /* NULL if unknown */
};

/*
 * Publish d to dead_letter_exchange on a (a connection with no consumer)
 * with the original body and properties plus the x-sharecount-* headers,
 * persistent, and wait for the confirm.  0 confirmed; -1 (why in buf).
 */
int dlq_publish(struct sc_amqp *a, const struct sc_dead_letter *d, char *why, size_t len);

/*
 * Settle delivery tag of consumer's channel 1 as a dead letter: publish d
 * through dl (opened if closed; closed again on failure), then ack the
 * original.  If the publish fails, the original is rejected without requeue
 * instead (the queue's x-dead-letter-exchange takes it, without the headers):
 * never lost, never looping.  0, or -1 if the consumer's connection broke.
 */
int dlq_settle(struct sc_amqp *dl, struct sc_amqp *consumer, uint64_t tag, const struct sc_dead_letter *d);

/* RabbitMQ's x-delivery-count header of a quorum-queue delivery (earlier
 * returns of this message to the queue); 0 if absent. */
int dlq_delivery_count(const amqp_basic_properties_t *p);

/* `sharecount-bridge dlq ...`: argv[0] is "dlq".  Exit code 0, 1 or 2. */
int dlq_main(int argc, char **argv);

#endif
