/*
 * dbpool.c — the http role's pool (see dbpool.h): the job queue, the
 * workers' loop, init, drain and shutdown.  Serving a batch is
 * dbpool_serve.c; the parts are listed in dbpool_int.h.
 *
 * Rules: the queue and its counters (accepting, stopping, queued, busy,
 * inflight) are guarded by pool_lock (/metrics reads them under it, at each
 * scrape: nothing is mirrored on the hot path); each worker owns its PGconn exclusively, so libpq calls run
 * outside the lock.  Jobs are completed (done()) outside the lock, each
 * exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "amqp.h"
#include "dbpool_int.h"
#include "log.h"
#include "metrics.h"

#define WAKE_AT 32	/* queued jobs that make a second worker start a batch at once */
#define LINGER_MS 2 /* longest a job waits for a busy worker before another takes it */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cond;							/* jobs to take, or stopping (CLOCK_MONOTONIC) */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER; /* inflight dropped to 0 */
static struct dbpool_job *queue_head, *queue_tail;
static int accepting; /* submits go to the queue */
static int stopping;  /* workers exit once the queue is empty */
static int inflight;  /* accepted and not yet completed */
static int queued;	  /* jobs in the queue */
static int busy;	  /* workers serving a batch */
static struct dbpool_worker *workers;
static int nworkers;
static int cond_ready; /* work_cond initialised (once per process) */
static int versioned;  /* count reads carry versions (set before the workers start) */

void
dbpool_set_versioned(int on)
{
	versioned = on;
}

int
dbpool_versioned(void)
{
	return versioned;
}

void
dbpool_complete(struct dbpool_job *job, int rc)
{
	if (rc == DBPOOL_ERROR)
		dbpool_stat_fail(DBPOOL_FAIL_SQL);
	job->rc = rc;
	job->done(job);
}

void
dbpool_fail(struct dbpool_job *job, enum dbpool_fail why, const char *err)
{
	snprintf(job->err, sizeof(job->err), "%s", err);
	if (why != DBPOOL_FAIL_SQL)
		dbpool_stat_fail(why);
	dbpool_complete(job, why == DBPOOL_FAIL_SQL ? DBPOOL_ERROR : DBPOOL_UNAVAILABLE);
}

/*
 * Should an idle worker take the queued jobs now?  Yes when no worker is
 * busy (no added latency when idle), when enough are queued for a good batch,
 * or when the oldest has waited LINGER_MS (a slow batch elsewhere must not
 * hold the others up).  Otherwise the busy worker will take them all when it
 * finishes its round trip: under load that makes batches large, and a batch
 * costs PostgreSQL and the bridge about the same whether it has 1 job or 30.
 * Called with pool_lock held.
 */
static int
should_take(int64_t now)
{
	return queue_head && (busy == 0 || queued >= WAKE_AT || now - queue_head->queued_ms >= LINGER_MS);
}

/* Wait (pool_lock held) until there are jobs to take or the pool stops; returns now. */
static int64_t
wait_for_jobs(void)
{
	for (;;)
	{
		int64_t now = clock_now_ms();

		if (should_take(now) || (stopping && !queue_head))
			return now;
		if (queue_head || busy > 0)
		{
			/* re-check soon: the jobs may have to be taken from a slow worker */
			int64_t at = now + LINGER_MS;
			struct timespec ts = {at / 1000, (at % 1000) * 1000000};

			pthread_cond_timedwait(&work_cond, &pool_lock, &ts);
		}
		else
			pthread_cond_wait(&work_cond, &pool_lock);
	}
}

/* Take up to DBPOOL_BATCH_MAX jobs (pool_lock held), at most DBPOOL_PIPE_MAX not single counts. */
static size_t
take_jobs(struct dbpool_job **jobs)
{
	size_t n = 0, nother = 0;

	while (queue_head && n < DBPOOL_BATCH_MAX && (queue_head->kind == DBPOOL_GET || nother < DBPOOL_PIPE_MAX))
	{
		nother += queue_head->kind != DBPOOL_GET;
		jobs[n++] = queue_head;
		queue_head = queue_head->next;
	}
	queued -= (int) n;
	if (!queue_head)
		queue_tail = NULL;
	dbpool_stat_add(DBPOOL_STAT_OVERLAP, busy > 0);
	dbpool_stat_add(DBPOOL_STAT_SINGLE, n == 1);
	busy++;
	return n;
}

/* Serve the jobs taken; those that waited past their deadline are answered at once. */
static void
serve_taken(struct dbpool_worker *w, struct dbpool_job **jobs, size_t n, int64_t now)
{
	size_t i, live = 0;

	for (i = 0; i < n; i++)
	{
		if (jobs[i]->deadline <= now)
			dbpool_fail(jobs[i], DBPOOL_FAIL_TIMEOUT, "timed out waiting for a PostgreSQL connection");
		else
			jobs[live++] = jobs[i];
	}
	if (live)
	{
		dbpool_stat_add(DBPOOL_STAT_BATCHES, 1);
		dbpool_serve_batch(w, jobs, live);
	}
}

static void *
worker_main(void *arg)
{
	struct dbpool_worker *w = arg;

	log_set_role("http");

	for (;;)
	{
		struct dbpool_job *jobs[DBPOOL_BATCH_MAX];
		size_t n;
		int64_t now;

		pthread_mutex_lock(&pool_lock);
		now = wait_for_jobs();
		if (!queue_head)
		{
			pthread_mutex_unlock(&pool_lock);
			break;
		}
		n = take_jobs(jobs);
		pthread_mutex_unlock(&pool_lock);

		serve_taken(w, jobs, n, now);

		pthread_mutex_lock(&pool_lock);
		busy--;
		inflight -= (int) n;
		if (inflight == 0)
			pthread_cond_broadcast(&idle_cond);
		pthread_mutex_unlock(&pool_lock);
	}
	dbpool_drop(w);
	return NULL;
}

void
dbpool_submit(struct dbpool_job *job)
{
	job->next = NULL;
	job->rc = DBPOOL_UNAVAILABLE;
	job->err[0] = '\0';
	job->queued_ms = clock_now_ms();
	pthread_mutex_lock(&pool_lock);
	if (!accepting)
	{
		pthread_mutex_unlock(&pool_lock);
		dbpool_fail(job, DBPOOL_FAIL_SHUTDOWN, "shutting down");
		return;
	}
	if (queue_tail)
		queue_tail->next = job;
	else
		queue_head = job;
	queue_tail = job;
	queued++;
	inflight++;
	if (busy == 0 || queued >= WAKE_AT)
		pthread_cond_signal(&work_cond);
	pthread_mutex_unlock(&pool_lock);
}

void
dbpool_gauges(int *nqueued, int *ninflight, int *nbusy)
{
	pthread_mutex_lock(&pool_lock);
	*nqueued = queued;
	*ninflight = inflight;
	*nbusy = busy;
	pthread_mutex_unlock(&pool_lock);
}

/* work_cond waits on CLOCK_MONOTONIC (the deadline clock); once per process. */
static void
init_work_cond(void)
{
	pthread_condattr_t attr;

	if (cond_ready)
		return;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&work_cond, &attr);
	pthread_condattr_destroy(&attr);
	cond_ready = 1;
}

int
dbpool_init(const struct readsrc_conf *reads, int size)
{
	int i;

	if (!reads || size < 1)
		return -1;
	workers = calloc(size, sizeof(struct dbpool_worker));
	if (!workers || readsrc_start(reads) != 0)
	{
		free(workers);
		workers = NULL;
		return -1;
	}
	nworkers = size;
	init_work_cond();
	accepting = 1;
	queued = busy = stopping = inflight = 0;
	dbpool_stats_register();
	metrics_use_conn(SC_CONN_HTTP_PG);
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
	for (i = 0; i < size; i++)
	{
		int rc = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);

		if (rc != 0)
		{
			log_error("cannot start a database worker: %s", strerror(rc));
			dbpool_shutdown();
			return -1;
		}
		workers[i].started = 1;
	}
	return 0;
}

void
dbpool_drain(void)
{
	pthread_mutex_lock(&pool_lock);
	accepting = 0;
	while (inflight > 0)
		pthread_cond_wait(&idle_cond, &pool_lock);
	pthread_mutex_unlock(&pool_lock);
}

void
dbpool_shutdown(void)
{
	int i;

	if (!workers)
		return;
	dbpool_drain();
	pthread_mutex_lock(&pool_lock);
	stopping = 1;
	pthread_cond_broadcast(&work_cond);
	pthread_mutex_unlock(&pool_lock);
	for (i = 0; i < nworkers; i++)
		if (workers[i].started)
			pthread_join(workers[i].thread, NULL);
	dbpool_stats_log();
	readsrc_stop();
	free(workers);
	workers = NULL;
	nworkers = 0;
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
}
