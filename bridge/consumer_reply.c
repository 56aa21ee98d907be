/*
 * consumer_reply.c — the consumer's answer to a NestJS send() request
 * (docs/interop.md, "Request/reply"): {"response": ..., "isDisposed": true}
 * on reply_to through the default exchange, with the request's
 * correlation_id, after the batch committed.
 *
 * Rules: runs on the consumer thread with its own connections; best effort
 * (a failed reply is logged: the job's outcome does not depend on it).
 */
#include <stdlib.h>
#include <string.h>

#include "amqp.h"
#include "consumer.h"
#include "log.h"
#include "pgconn.h"

/* share count for a reply; -1 if unknown */
static long long
share_count(struct sc_amqp *a, PGconn *pg, const struct sc_job *job)
{
	const char *params[2] = {job->content_type, job->content_id};
	PGresult *r;
	long long v = -1;

	if (!job->content_type || !job->content_id)
		return -1;
	r = pgconn_run(pg, "SELECT sharecount_get($1, $2)", 2, params, a);
	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

void
consumer_reply(struct sc_amqp *a, PGconn *pg, const struct sc_job *job, const char *reply_to,
			   const char *correlation_id, int64_t received_ms, int success)
{
	char *body =
		sc_job_reply(job, success, (long) (clock_now_ms() - received_ms), success ? share_count(a, pg, job) : -1);
	amqp_basic_properties_t props;
	int rc;

	if (!body)
		return;
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	if (correlation_id)
	{
		props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		props.correlation_id = amqp_cstring_bytes(correlation_id);
	}
	rc = amqp_basic_publish(a->conn, SC_CH, amqp_empty_bytes, amqp_cstring_bytes(reply_to), 0, 0, &props,
							amqp_cstring_bytes(body));
	if (rc != AMQP_STATUS_OK)
		log_warn("replying to %s: %s", reply_to, amqp_error_string2(rc));
	free(body);
}
