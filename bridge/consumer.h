/*
 * consumer.h — the consumer role (docs/bridge.md "Consumer"): RabbitMQ
 * queue → batches of sharecount_apply_batch_changes() → ack → count-change
 * events (live_pub.c, docs/live.md "Publishing").  One thread, its own
 * connections (and the events thread's).
 */
#ifndef SC_CONSUMER_H
#define SC_CONSUMER_H

#include <stdint.h>

#include <libpq-fe.h>

#include "amqp.h"
#include "config.h"
#include "job.h"

/* The reserved key of the readiness probe's synthetic job (rolled back, never
 * counted); valid under the key limits of docs/extension.md. */
#define SC_PROBE_CONTENT_TYPE "sharecount-bridge-probe"
#define SC_PROBE_CONTENT_ID "probe"

/* Answer a NestJS send() request (consumer_reply.c). */
void consumer_reply(struct sc_amqp *a, PGconn *pg, const struct sc_job *job, const char *reply_to,
					const char *correlation_id, int64_t received_ms, int success);

/* Thread entry: arg is a const struct sc_config *.  Returns when sc_stop is set. */
void *consumer_main(void *arg);

#endif
