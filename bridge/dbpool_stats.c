/*
 * dbpool_stats.c — the http role's pool counters (see dbpool_int.h): the
 * sharecount_http_pool_* section of /metrics (docs/http.md, "`GET /metrics`") and
 * the shutdown log line.
 *
 * Rules: every counter is a C11 atomic, updated with relaxed order (a few
 * adds per batch, outside the queue lock); readers see each value whole, not
 * a snapshot of all of them together.  The gauges are read from the queue,
 * under its lock, at each scrape.  Counters count from process start.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "dbpool_int.h"
#include "log.h"
#include "metrics.h"

static _Atomic uint64_t stats[DBPOOL_STATS_N];
static _Atomic uint64_t fails[DBPOOL_FAILS];
static atomic_flag registered = ATOMIC_FLAG_INIT;

/* The counters on /metrics: name (after sharecount_http_pool_) and help. */
static const struct
{
	const char *name;
	const char *help;
} counter_info[DBPOOL_STATS_N] = {
	[DBPOOL_STAT_JOBS] = {"jobs_sent_total", "Database jobs sent to PostgreSQL (a job sent again counts again)."},
	[DBPOOL_STAT_BATCHES] = {"batches_total", "Batches of jobs a worker served in one pipeline round trip or more."},
	[DBPOOL_STAT_OVERLAP] = {"batches_overlap_total", "Batches taken while another worker was busy."},
	[DBPOOL_STAT_SINGLE] = {"batches_single_total", "Batches that held one job."},
	[DBPOOL_STAT_COALESCED] = {"coalesced_reads_total",
							   "Coalesced reads sent (two or more single counts in one statement)."},
	[DBPOOL_STAT_COALESCED_JOBS] = {"coalesced_jobs_total", "Single counts answered by coalesced reads."},
	[DBPOOL_STAT_COALESCED_KEYS] = {"coalesced_keys_total", "Distinct keys read by coalesced reads."},
	[DBPOOL_STAT_CONNECTS] = {"connects_total",
							  "Connections the workers and the libmicrohttpd threads made to PostgreSQL."},
	[DBPOOL_STAT_LOCAL_JOBS] = {"local_jobs_total",
								"Single counts a libmicrohttpd thread answered itself, on its own connection."},
	[DBPOOL_STAT_LOCAL_HANDED] = {"local_handed_total",
								  "Single counts a libmicrohttpd thread handed to the workers (its connection was "
								  "down, failed or too slow)."},
};

/* The errors counter's class label. */
static const char *const fail_names[DBPOOL_FAILS] = {
	[DBPOOL_FAIL_SQL] = "sql",
	[DBPOOL_FAIL_UNAVAILABLE] = "unavailable",
	[DBPOOL_FAIL_TIMEOUT] = "timeout",
	[DBPOOL_FAIL_SHUTDOWN] = "shutdown",
};

void
dbpool_stat_add(enum dbpool_stat s, uint64_t n)
{
	if (n)
		atomic_fetch_add_explicit(&stats[s], n, memory_order_relaxed);
}

void
dbpool_stat_fail(enum dbpool_fail why)
{
	atomic_fetch_add_explicit(&fails[why], 1, memory_order_relaxed);
}

static uint64_t
stat(enum dbpool_stat s)
{
	return atomic_load_explicit(&stats[s], memory_order_relaxed);
}

static void
render(struct metrics_out *out)
{
	int queued, inflight, busy;
	const struct
	{
		const char *name;
		const char *help;
		const int *v;
	} gauges[] = {
		{"queued", "Database jobs waiting for a worker.", &queued},
		{"in_flight", "Database jobs accepted and not yet answered (queued or being served).", &inflight},
		{"busy_workers", "Workers serving a batch.", &busy},
	};
	size_t i;

	dbpool_gauges(&queued, &inflight, &busy);
	for (i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
		metrics_printf(out,
					   "# HELP sharecount_http_pool_%s %s\n# TYPE sharecount_http_pool_%s gauge\n"
					   "sharecount_http_pool_%s %d\n",
					   gauges[i].name, gauges[i].help, gauges[i].name, gauges[i].name, *gauges[i].v);
	for (i = 0; i < DBPOOL_STATS_N; i++)
		metrics_printf(out,
					   "# HELP sharecount_http_pool_%s %s\n# TYPE sharecount_http_pool_%s counter\n"
					   "sharecount_http_pool_%s %llu\n",
					   counter_info[i].name, counter_info[i].help, counter_info[i].name, counter_info[i].name,
					   (unsigned long long) stat(i));
	metrics_printf(out,
				   "# HELP sharecount_http_pool_errors_total Database jobs answered with an error, by class.\n"
				   "# TYPE sharecount_http_pool_errors_total counter\n");
	for (i = 0; i < DBPOOL_FAILS; i++)
		metrics_printf(out, "sharecount_http_pool_errors_total{class=\"%s\"} %llu\n", fail_names[i],
					   (unsigned long long) atomic_load_explicit(&fails[i], memory_order_relaxed));
}

void
dbpool_stats_register(void)
{
	if (!atomic_flag_test_and_set(&registered))
		metrics_add_section(render);
}

void
dbpool_stats_log(void)
{
	log_info("database jobs sent %llu in %llu batches (%llu of one job, %llu taken while another "
			 "worker was busy); %llu single counts coalesced into %llu reads of %llu distinct keys; "
			 "%llu single counts answered by the libmicrohttpd threads themselves, %llu handed to the workers",
			 (unsigned long long) stat(DBPOOL_STAT_JOBS), (unsigned long long) stat(DBPOOL_STAT_BATCHES),
			 (unsigned long long) stat(DBPOOL_STAT_SINGLE), (unsigned long long) stat(DBPOOL_STAT_OVERLAP),
			 (unsigned long long) stat(DBPOOL_STAT_COALESCED_JOBS), (unsigned long long) stat(DBPOOL_STAT_COALESCED),
			 (unsigned long long) stat(DBPOOL_STAT_COALESCED_KEYS), (unsigned long long) stat(DBPOOL_STAT_LOCAL_JOBS),
			 (unsigned long long) stat(DBPOOL_STAT_LOCAL_HANDED));
}
