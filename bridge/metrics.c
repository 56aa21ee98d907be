/*
 * metrics.c — counters, gauges and histograms of docs/http.md "GET /metrics" (see metrics.h).
 *
 * Rules: all state is static and updated with C11 atomics (relaxed order: a
 * scrape may see one counter a moment ahead of another, never a torn value).
 * Histogram sums are doubles stored as bit patterns and updated by CAS.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

static const char *const job_names[SC_JOB_KINDS] = {"share_created", "share_deleted", "share_count_update", "other"};
static const char *const counter_names[SC_M_COUNTERS] = {
	"sharecount_jobs_published_total", "sharecount_jobs_consumed_total",	  "sharecount_jobs_applied_total",
	"sharecount_jobs_duplicate_total", "sharecount_jobs_dead_lettered_total", "sharecount_jobs_failed_total",
	"sharecount_jobs_nacked_total"};
static const char *const counter_help[SC_M_COUNTERS] = {
	"Jobs published to RabbitMQ and confirmed by the broker.",
	"Deliveries received from the jobs queue.",
	"Jobs applied to the counts.",
	"Jobs whose jobId had already been applied.",
	"Messages rejected without requeue (dead-lettered).",
	"Transient apply or publish failures (retried).",
	"Publishes nacked by the broker (the job stays in the outbox and is published again)."};
static const char *const conn_names[SC_CONNS] = {"publisher_pg", "publisher_amqp", "consumer_pg", "consumer_amqp",
												 "http_pg"};

#define NBUCKETS 16
static const double buckets[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
										 0.25,	 0.5,	1,		2.5,   5,	 10,	30,	  60};

struct histogram
{
	_Atomic uint64_t bucket[NBUCKETS]; /* non-cumulative; summed when rendered */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_bits; /* a double */
};

static _Atomic uint64_t counters[SC_M_COUNTERS][SC_JOB_KINDS];
static _Atomic int conn_up[SC_CONNS];
static _Atomic int conn_used[SC_CONNS];
static _Atomic int conn_blocked[SC_CONNS]; /* AMQP connection.blocked in force */
static _Atomic uint64_t overlapped_claims; /* publisher batches sent while another slot waited */
static const bool amqp_conn[SC_CONNS] = {[SC_CONN_PUBLISHER_AMQP] = true, [SC_CONN_CONSUMER_AMQP] = true};
static _Atomic uint64_t events_published;				/* count-change events handed to the broker */
static _Atomic uint64_t events_dropped[SC_EVENT_DROPS]; /* and dropped, by reason */
static const char *const event_drop_names[SC_EVENT_DROPS] = {"queue_full", "broker"};
static _Atomic int64_t queue_depth = -1;
static _Atomic int64_t outbox_depth = -1;
static _Atomic uint64_t outbox_age_bits;
static _Atomic uint64_t http_status[600];
static _Atomic int read_used;			  /* the http role reports its read server */
static _Atomic int read_replica;		  /* 1: the replica serves reads */
static _Atomic uint64_t replica_lag_bits; /* a double, seconds */
static struct histogram apply_hist, lag_hist;

static uint64_t
double_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double
bits_double(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

void
metrics_init(void)
{
	/* static storage is zeroed; only the "unknown" markers need setting */
	atomic_store(&queue_depth, -1);
	atomic_store(&outbox_depth, -1);
}

enum sc_job_kind
metrics_job_kind(const char *job_name)
{
	int k;

	if (job_name)
		for (k = 0; k < SC_JOB_OTHER; k++)
			if (strcmp(job_name, job_names[k]) == 0)
				return (enum sc_job_kind) k;
	return SC_JOB_OTHER;
}

void
metrics_count(enum sc_counter c, enum sc_job_kind k, uint64_t n)
{
	if (c < 0 || c >= SC_M_COUNTERS || k < 0 || k >= SC_JOB_KINDS)
		return;
	atomic_fetch_add_explicit(&counters[c][k], n, memory_order_relaxed);
}

static void
observe(struct histogram *h, double s)
{
	int i;
	uint64_t old;

	if (s < 0)
		s = 0;
	for (i = 0; i < NBUCKETS && s > buckets[i]; i++)
		;
	if (i < NBUCKETS)
		atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
	while (!atomic_compare_exchange_weak(&h->sum_bits, &old, double_bits(bits_double(old) + s)))
		;
}

void
metrics_observe_apply_seconds(double s)
{
	observe(&apply_hist, s);
}
void
metrics_observe_lag_seconds(double s)
{
	observe(&lag_hist, s);
}

void
metrics_set_conn(enum sc_conn c, int up)
{
	if (c >= 0 && c < SC_CONNS)
		atomic_store(&conn_up[c], up ? 1 : 0);
}

int
metrics_conn_up(enum sc_conn c)
{
	return (c >= 0 && c < SC_CONNS) ? atomic_load(&conn_up[c]) : 0;
}

void
metrics_set_blocked(enum sc_conn c, int blocked)
{
	if (c >= 0 && c < SC_CONNS)
		atomic_store(&conn_blocked[c], blocked ? 1 : 0);
}

void
metrics_count_overlapped_claim(void)
{
	atomic_fetch_add_explicit(&overlapped_claims, 1, memory_order_relaxed);
}

void
metrics_use_conn(enum sc_conn c)
{
	if (c >= 0 && c < SC_CONNS)
		atomic_store(&conn_used[c], 1);
}

int
metrics_conn_used(enum sc_conn c)
{
	return (c >= 0 && c < SC_CONNS) ? atomic_load(&conn_used[c]) : 0;
}

void
metrics_count_events_published(uint64_t n)
{
	atomic_fetch_add_explicit(&events_published, n, memory_order_relaxed);
}

void
metrics_count_events_dropped(enum sc_event_drop why, uint64_t n)
{
	if (why >= 0 && why < SC_EVENT_DROPS)
		atomic_fetch_add_explicit(&events_dropped[why], n, memory_order_relaxed);
}

void
metrics_set_queue_depth(int64_t depth)
{
	atomic_store(&queue_depth, depth);
}

void
metrics_set_outbox(int64_t depth, double oldest_age_s)
{
	atomic_store(&outbox_depth, depth);
	atomic_store(&outbox_age_bits, double_bits(oldest_age_s));
}

void
metrics_http_status(int status)
{
	if (status >= 100 && status < 600)
		atomic_fetch_add_explicit(&http_status[status], 1, memory_order_relaxed);
}

void
metrics_set_read_source(int replica)
{
	atomic_store(&read_replica, replica ? 1 : 0);
	atomic_store(&read_used, 1);
}

void
metrics_set_replica_lag(double seconds)
{
	atomic_store(&replica_lag_bits, double_bits(seconds));
	atomic_store(&read_used, 1);
}

/* A growable string buffer; rendering is the only user. */
struct sbuf
{
	char *data;
	size_t len, cap;
};

static void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;)
	{
		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (b->data && b->len + (size_t) n < b->cap)
		{
			b->len += n;
			return;
		}
		b->cap = (b->cap ? b->cap * 2 : 4096) + n;
		b->data = realloc(b->data, b->cap);
		if (!b->data)
			abort();
	}
}

static void
render_histogram(struct sbuf *b, const char *name, const char *help, struct histogram *h)
{
	uint64_t cum = 0;
	int i;

	sbuf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i < NBUCKETS; i++)
	{
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		sbuf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i], (unsigned long long) cum);
	}
	sbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long) atomic_load(&h->count));
	sbuf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, bits_double(atomic_load(&h->sum_bits)), name,
				(unsigned long long) atomic_load(&h->count));
}

struct metrics_out
{
	struct sbuf *b;
};

static void (*sections[METRICS_SECTIONS_MAX])(struct metrics_out *out);
static _Atomic int nsections;

void
metrics_add_section(void (*render)(struct metrics_out *out))
{
	int n = atomic_load(&nsections);

	if (n < METRICS_SECTIONS_MAX)
	{
		sections[n] = render;
		atomic_store(&nsections, n + 1);
	}
}

void
metrics_printf(struct metrics_out *out, const char *fmt, ...)
{
	char line[1024]; /* one metric's lines */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sbuf_printf(out->b, "%s", line);
}

/* The count-change events' counters (docs/live.md "Publishing"). */
static void
render_events(struct sbuf *b)
{
	sbuf_printf(
		b,
		"# HELP sharecount_events_published_total Count-change events handed to the broker (updates_exchange).\n"
		"# TYPE sharecount_events_published_total counter\n"
		"sharecount_events_published_total %llu\n"
		"# HELP sharecount_events_dropped_total Count-change events dropped, by reason (queue_full: the "
		"broker was slow, blocked or away; broker: the connection broke while publishing).\n"
		"# TYPE sharecount_events_dropped_total counter\n",
		(unsigned long long) atomic_load_explicit(&events_published, memory_order_relaxed));
	for (int r = 0; r < SC_EVENT_DROPS; r++)
		sbuf_printf(b, "sharecount_events_dropped_total{reason=\"%s\"} %llu\n", event_drop_names[r],
					(unsigned long long) atomic_load_explicit(&events_dropped[r], memory_order_relaxed));
}

/* A gauge's HELP and TYPE lines; its samples follow. */
static void
gauge_head(struct sbuf *b, const char *name, const char *help)
{
	sbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* A gauge with one unlabelled integer sample. */
static void
gauge_int(struct sbuf *b, const char *name, const char *help, long long v)
{
	gauge_head(b, name, help);
	sbuf_printf(b, "%s %lld\n", name, v);
}

/* A gauge with one unlabelled sample in seconds (milliseconds shown). */
static void
gauge_seconds(struct sbuf *b, const char *name, const char *help, double v)
{
	gauge_head(b, name, help);
	sbuf_printf(b, "%s %.3f\n", name, v);
}

static long
resident_bytes(void)
{
	long size = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

size_t
metrics_render(char **out)
{
	struct sbuf b = {0};
	int c, k, s;
	int64_t v;

	for (c = 0; c < SC_M_COUNTERS; c++)
	{
		sbuf_printf(&b, "# HELP %s %s\n# TYPE %s counter\n", counter_names[c], counter_help[c], counter_names[c]);
		for (k = 0; k < SC_JOB_KINDS; k++)
			sbuf_printf(&b, "%s{job=\"%s\"} %llu\n", counter_names[c], job_names[k],
						(unsigned long long) atomic_load_explicit(&counters[c][k], memory_order_relaxed));
	}
	render_histogram(&b, "sharecount_apply_duration_seconds", "Time to apply one batch in PostgreSQL, commit included.",
					 &apply_hist);
	render_histogram(&b, "sharecount_event_lag_seconds", "From a job's timestamp to its apply commit.", &lag_hist);

	gauge_head(&b, "sharecount_connection_up", "Connection state (1 up, 0 down) of each role's connections.");
	for (c = 0; c < SC_CONNS; c++)
		if (atomic_load(&conn_used[c]))
			sbuf_printf(&b, "sharecount_connection_up{conn=\"%s\"} %d\n", conn_names[c], atomic_load(&conn_up[c]));
	gauge_head(&b, "sharecount_connection_blocked",
			   "1 while the broker has blocked this connection (connection.blocked: publishing paused).");
	for (c = 0; c < SC_CONNS; c++)
		if (amqp_conn[c] && atomic_load(&conn_used[c]))
			sbuf_printf(&b, "sharecount_connection_blocked{conn=\"%s\"} %d\n", conn_names[c],
						atomic_load(&conn_blocked[c]));

	v = atomic_load(&outbox_depth);
	if (v >= 0)
	{
		gauge_int(&b, "sharecount_outbox_depth", "Jobs waiting in the outbox.", v);
		gauge_seconds(&b, "sharecount_outbox_oldest_age_seconds", "Age of the oldest outbox job.",
					  bits_double(atomic_load(&outbox_age_bits)));
	}
	v = atomic_load(&queue_depth);
	if (v >= 0)
		gauge_int(&b, "sharecount_queue_depth", "Messages ready in the jobs queue (broker).", v);

	if (atomic_load(&read_used))
	{
		int r = atomic_load(&read_replica);

		gauge_seconds(&b, "sharecount_replica_lag_seconds",
					  "How far the http role's read replica (pg_read_conninfo) is behind the primary; "
					  "0 without a replica.",
					  bits_double(atomic_load(&replica_lag_bits)));
		gauge_head(&b, "sharecount_read_source", "Which server serves the http role's reads (1 serving, 0 not).");
		sbuf_printf(&b, "sharecount_read_source{server=\"replica\"} %d\n", r);
		sbuf_printf(&b, "sharecount_read_source{server=\"primary\"} %d\n", !r);
	}
	sbuf_printf(&b,
				"# HELP sharecount_http_requests_total HTTP requests answered, by status.\n"
				"# TYPE sharecount_http_requests_total counter\n");
	for (s = 100; s < 600; s++)
	{
		uint64_t n = atomic_load_explicit(&http_status[s], memory_order_relaxed);

		if (n)
			sbuf_printf(&b, "sharecount_http_requests_total{status=\"%d\"} %llu\n", s, (unsigned long long) n);
	}
	for (s = 0; s < atomic_load(&nsections); s++)
		sections[s](&(struct metrics_out){&b});
	sbuf_printf(&b,
				"# HELP sharecount_publisher_overlapped_claims_total Claimed batches published while another "
				"publisher slot waited for confirms (publish_pipeline at work).\n"
				"# TYPE sharecount_publisher_overlapped_claims_total counter\n"
				"sharecount_publisher_overlapped_claims_total %llu\n",
				(unsigned long long) atomic_load_explicit(&overlapped_claims, memory_order_relaxed));
	render_events(&b);
	gauge_int(&b, "process_resident_memory_bytes", "Resident memory size in bytes.", resident_bytes());
	*out = b.data;
	return b.len;
}
