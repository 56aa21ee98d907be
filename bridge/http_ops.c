/*
 * http_ops.c — /readyz and /metrics answers of the http role (docs/http.md),
 * moved out of http.c unchanged.  Rules: no state; called on libmicrohttpd's
 * threads after the job's callback resumed the connection.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "http_ops.h"
#include "http_reply.h"
#include "log.h"
#include "metrics.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum MHD_Result
http_ops_readyz(struct MHD_Connection *conn, const struct dbpool_job *job)
{
	static const struct
	{
		enum sc_conn c;
		const char *what;
	} others[] = {
		{SC_CONN_PUBLISHER_PG, "publisher's PostgreSQL connection is down"},
		{SC_CONN_PUBLISHER_AMQP, "publisher's RabbitMQ connection is down"},
		{SC_CONN_CONSUMER_PG, "consumer's PostgreSQL connection is down"},
		{SC_CONN_CONSUMER_AMQP, "consumer's RabbitMQ connection is down"},
	};
	size_t i;

	if (job->rc != DBPOOL_OK)
	{
		http_log_db_failure("readyz", job->err);
		return http_send_error(conn, 503, "database unreachable", NULL);
	}
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (metrics_conn_used(others[i].c) && !metrics_conn_up(others[i].c))
			return http_send_error(conn, 503, others[i].what, NULL);
	return http_send_json(conn, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

/*
 * Set the outbox gauges from the sharecount_stats() answer, then render.  A
 * database failure does not fail the scrape: when the database is unreachable
 * the gauges are withdrawn (stale numbers would look healthy) and
 * connection_up shows why.  (The publisher role also refreshes them every
 * few seconds; the scrape-time value is just fresher.)
 */
enum MHD_Result
http_ops_metrics(struct MHD_Connection *conn, const struct dbpool_job *job)
{
	char *body = NULL;
	size_t len;

	if (job->rc == DBPOOL_OK)
	{
		json_error_t jerr;
		json_t *s = json_loads(job->stats, 0, &jerr);
		json_t *depth = json_object_get(s, "outbox_depth");
		json_t *age = json_object_get(s, "outbox_oldest_age_seconds");

		if (json_is_number(depth))
			metrics_set_outbox((int64_t) json_number_value(depth), json_is_number(age) ? json_number_value(age) : 0.0);
		else
		{
			log_warn("sharecount_stats() has no numeric outbox_depth");
			metrics_set_outbox(-1, 0);
		}
		json_decref(s);
	}
	else
	{
		http_log_db_failure("metrics", job->err);
		/* unreachable: any value would be stale; an SQL error (no right to
		 * sharecount_stats) leaves what the publisher role may have set */
		if (job->rc == DBPOOL_UNAVAILABLE)
			metrics_set_outbox(-1, 0);
	}
	len = metrics_render(&body);
	if (!body)
		return http_send_error(conn, 500, "out of memory", NULL);
	return http_send_body(conn, 200, body, len, METRICS_TYPE, NULL);
}
