/*
 * dbpool_local.c — single counts answered in the thread that asked for them
 * (one of http_loop.c's libmicrohttpd threads), on a PostgreSQL connection of
 * that thread's own: no hand-off to a pool worker and back (docs/http.md
 * "Threads").  The jobs one turn of the thread collected go out as one
 * pipeline round trip (dbpool_pipe.c: one coalesced statement), as a
 * worker's batch does.
 *
 * Rules: the calling thread owns its struct dbpool_local.  It waits on
 * PostgreSQL at most SC_HTTP_LOCAL_WAIT_MS per round (connecting and
 * preparing included), and connects at most once per SC_HTTP_LOCAL_RETRY_MS.
 * A connection that fails or is slower than that is closed (so no late answer
 * is ever read as another's); the jobs it did not answer, and every job while
 * it is down, go to the pool (dbpool_submit), which keeps their deadlines and
 * does the retrying and the fail-over.  Every job handed in is completed
 * exactly once: by the pipe, or by the pool.
 */
#include <stdlib.h>

#include "clock.h"
#include "dbpool_int.h"
#include "log.h"
#include "metrics.h"
#include "sc_limits.h"

struct dbpool_local
{
	struct dbpool_worker w; /* its connection, statements and pipe (no thread of its own) */
	int64_t retry_at;		/* clock_now_ms() before which no connection is tried */
};

struct dbpool_local *
dbpool_local_new(void)
{
	return calloc(1, sizeof(struct dbpool_local));
}

void
dbpool_local_free(struct dbpool_local *l)
{
	if (l)
		dbpool_drop(&l->w);
	free(l);
}

/* Jobs the thread does not answer itself: to the workers. */
static void
hand_to_pool(struct dbpool_job **jobs, size_t n)
{
	size_t i;

	dbpool_stat_add(DBPOOL_STAT_LOCAL_HANDED, n);
	for (i = 0; i < n; i++)
		dbpool_submit(jobs[i]);
}

/*
 * Is l's connection up, to the read server readsrc.h names now, with the
 * statements `need` prepared?  Makes it (and prepares) when it is due, within
 * the deadline.  1 if the jobs can be sent on it.
 */
static int
local_ready(struct dbpool_local *l, unsigned need, int64_t now, int64_t deadline)
{
	struct dbpool_worker *w = &l->w;
	enum read_server want = readsrc_target();
	char err[PGCONN_ERRLEN];
	unsigned failed = 0;

	dbpool_drop_if_stale(w, want, now);
	if (!w->pg)
	{
		if (now < l->retry_at)
			return 0;
		l->retry_at = now + SC_HTTP_LOCAL_RETRY_MS;
		if (dbpool_connect(w, want, deadline, err, sizeof(err)) < 0)
		{
			log_debug("a libmicrohttpd thread's own PostgreSQL connection: %s; its reads go to the workers", err);
			return 0;
		}
	}
	if (dbpool_prepare(w, need, deadline, err, sizeof(err), &failed) < 0 || failed)
	{
		/* the workers answer them, with the error if there is one */
		l->retry_at = now + SC_HTTP_LOCAL_RETRY_MS;
		log_debug("a libmicrohttpd thread's own PostgreSQL connection: %s; its reads go to the workers", err);
		return 0;
	}
	return 1;
}

void
dbpool_local_serve(struct dbpool_local *l, struct dbpool_job **jobs, size_t n)
{
	int64_t now = clock_now_ms();
	int64_t deadline = now + SC_HTTP_LOCAL_WAIT_MS;
	struct dbpool_pipe *p = &l->w.pipe;
	size_t i;

	for (i = 0; i < n; i++)
	{
		jobs[i]->rc = DBPOOL_UNAVAILABLE;
		jobs[i]->err[0] = '\0';
		jobs[i]->queued_ms = now;
		if (jobs[i]->deadline < deadline)
			deadline = jobs[i]->deadline;
	}
	if (n == 0)
		return;
	if (!local_ready(l, dbpool_stmts_needed(jobs, n), now, deadline))
	{
		hand_to_pool(jobs, n);
		return;
	}
	dbpool_stat_add(DBPOOL_STAT_BATCHES, 1);
	dbpool_stat_add(DBPOOL_STAT_SINGLE, n == 1);
	if (dbpool_pipe_run(&l->w, jobs, n, deadline) == 0)
		metrics_set_conn(SC_CONN_HTTP_PG, 1);
	else
	{
		/* the pipe closed the connection */
		l->retry_at = clock_now_ms() + SC_HTTP_LOCAL_RETRY_MS;
		log_debug("a libmicrohttpd thread's own PostgreSQL connection failed: %s; its reads go to the workers", p->err);
	}
	dbpool_stat_add(DBPOOL_STAT_LOCAL_JOBS, p->ncompleted);
	hand_to_pool(p->left, p->nleft);
}
