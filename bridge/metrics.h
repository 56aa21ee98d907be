/*
 * metrics.h — process-wide counters, gauges and histograms (docs/http.md "GET /metrics"), fed by
 * every role and rendered in Prometheus text format by the http role.
 *
 * Rules: every function here is thread-safe and lock-free (C11 atomics), so
 * the publisher, consumer and HTTP threads may call them on hot paths.
 */
#ifndef SC_METRICS_H
#define SC_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum sc_job_kind
{
	SC_JOB_SHARE_CREATED = 0,
	SC_JOB_SHARE_DELETED,
	SC_JOB_SHARE_COUNT_UPDATE,
	SC_JOB_OTHER, /* unknown or unparsable job name */
	SC_JOB_KINDS
};

enum sc_counter
{
	SC_M_PUBLISHED = 0, /* confirmed by the broker */
	SC_M_CONSUMED,		/* deliveries received */
	SC_M_APPLIED,		/* applied (counted) */
	SC_M_DUPLICATE,		/* jobId already applied */
	SC_M_DEAD_LETTERED, /* rejected without requeue */
	SC_M_FAILED,		/* transient failures (will be retried) */
	SC_M_NACKED,		/* publishes nacked by the broker (published again) */
	SC_M_COUNTERS
};

enum sc_conn
{
	SC_CONN_PUBLISHER_PG = 0,
	SC_CONN_PUBLISHER_AMQP,
	SC_CONN_CONSUMER_PG,
	SC_CONN_CONSUMER_AMQP,
	SC_CONN_HTTP_PG,
	SC_CONNS
};

void metrics_init(void);
enum sc_job_kind metrics_job_kind(const char *job_name);

void metrics_count(enum sc_counter c, enum sc_job_kind k, uint64_t n);

void metrics_observe_apply_seconds(double s); /* one apply transaction */
void metrics_observe_lag_seconds(double s);	  /* job timestamp -> applied */

void metrics_set_conn(enum sc_conn c, int up);
int metrics_conn_up(enum sc_conn c);
/* AMQP connections: 1 while connection.blocked is in force (sharecount_connection_blocked) */
void metrics_set_blocked(enum sc_conn c, int blocked);
/* a claimed batch published while another publisher slot waited (sharecount_publisher_overlapped_claims_total) */
void metrics_count_overlapped_claim(void);
/*
 * Count-change events (docs/live.md "Publishing"): handed to the broker by
 * the events publisher (sharecount_events_published_total), and dropped,
 * by reason (sharecount_events_dropped_total{reason}).
 */
enum sc_event_drop
{
	SC_EVENT_DROP_QUEUE_FULL = 0, /* the events queue was full: the broker is slow, blocked or away */
	SC_EVENT_DROP_BROKER,		  /* the publish failed: the connection broke under it */
	SC_EVENT_DROPS
};
void metrics_count_events_published(uint64_t n);
void metrics_count_events_dropped(enum sc_event_drop why, uint64_t n);
/* Which connections the running roles use; /readyz looks only at those. */
void metrics_use_conn(enum sc_conn c);
int metrics_conn_used(enum sc_conn c);

void metrics_set_queue_depth(int64_t depth); /* -1: unknown */
void metrics_set_outbox(int64_t depth, double oldest_age_s);
void metrics_http_status(int status);
/*
 * The http role's read server (docs/bridge.md, "Read replicas"): whether the
 * replica serves reads (else the primary), and the replica's lag in seconds
 * (0 when no replica is configured).  Rendered once either has been set.
 */
void metrics_set_read_source(int replica);
void metrics_set_replica_lag(double seconds);

/*
 * Another part's own section of /metrics (the http role's pool): render is
 * called at each scrape, after the built-in metrics, and appends its lines
 * with metrics_printf.  Register at start-up, before the first scrape; at
 * most METRICS_SECTIONS_MAX sections.
 */
#define METRICS_SECTIONS_MAX 4
struct metrics_out;
void metrics_add_section(void (*render)(struct metrics_out *out));
void metrics_printf(struct metrics_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Render everything in Prometheus text exposition format 0.0.4 into a
 * malloc'ed, NUL-terminated buffer (*out, caller frees); returns its length.
 */
size_t metrics_render(char **out);

#endif
