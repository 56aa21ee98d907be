/*
 * dbpool_serve.c — one batch on one worker (see dbpool_int.h): the
 * connection to the read server, the statements it needs prepared, the
 * pipeline round trips (dbpool_pipe.c), and what to do when they fail.
 *
 * A pooled connection may have died while idle (PostgreSQL restarted): then
 * its first use fails before any answer, and the jobs are retried once on a
 * fresh connection, within the deadline.  The connection is to the server
 * readsrc_target() names at the start of each round (one atomic load, no lag
 * work here); when that changed, it is closed and made again.  When the
 * replica fails, the jobs not answered are sent to the primary, once
 * (fail_over).  Jobs an SQL error made PostgreSQL skip are sent again.
 *
 * Rules: runs on the worker's thread only; every wait is bounded by the batch
 * deadline (the earliest of its jobs').  On a connection-level failure or a
 * timeout the PGconn is closed (PQfinish), so a late answer to an abandoned
 * query can never be read as another's.  Every job handed in is completed
 * exactly once, here or by the pipe.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "dbpool_int.h"
#include "log.h"
#include "metrics.h"

/* One batch being served. */
struct serve
{
	struct dbpool_worker *w;
	struct dbpool_job *pending[DBPOOL_BATCH_MAX]; /* not completed yet */
	size_t npending;
	int64_t deadline;
	int may_retry;	 /* a pooled connection's failure may be retried once */
	int failed_over; /* the replica failed: the rest goes to the primary */
	char err[PGCONN_ERRLEN];
};

/* How a PREPARE ended. */
enum prep_rc
{
	PREP_OK,
	PREP_SQL_ERROR, /* an SQL error: that statement's jobs fail */
	PREP_LOST		/* the connection failed */
};

void
dbpool_drop(struct dbpool_worker *w)
{
	if (w->pg)
		PQfinish(w->pg);
	w->pg = NULL;
	w->prepared = 0;
	w->fallback_ms = 0;
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
}

int
dbpool_connect(struct dbpool_worker *w, enum read_server server, int64_t deadline, char *err, size_t errlen)
{
	struct pgconn_wait wait;

	pgconn_wait_init(&wait, deadline, NULL);
	w->prepared = 0;
	w->server = server;
	w->pg = pgconn_connect(readsrc_conninfo(server), DBPOOL_APPNAME, 0, &wait, err, errlen);
	if (!w->pg)
		return -1;
	dbpool_stat_add(DBPOOL_STAT_CONNECTS, 1);
	metrics_set_conn(SC_CONN_HTTP_PG, 1);
	return 0;
}

void
dbpool_drop_if_stale(struct dbpool_worker *w, enum read_server want, int64_t now)
{
	if (w->pg && (w->server != want || (w->fallback_ms && now - w->fallback_ms >= DBPOOL_VERSIONED_RETRY_MS)))
		dbpool_drop(w); /* the read server changed, or time to look for versions again */
}

/* Connect w->pg to `server`, bounded by the batch deadline; 0, or -1 with s->err. */
static int
connect_worker(struct serve *s, enum read_server server)
{
	return dbpool_connect(s->w, server, s->deadline, s->err, sizeof(s->err));
}

/* Is res the error of a function that does not exist (the extension predates it)? */
static int
undefined_function(const PGresult *res)
{
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return st && strcmp(st, "42883") == 0;
}

/*
 * PREPARE dbpool_stmts[k] on w->pg (err set unless PREP_OK); sql is its text
 * (NULL: the statement's own, then its fallback if that function is missing).
 */
static enum prep_rc
prepare_one(struct dbpool_worker *w, int k, const char *sql, struct pgconn_wait *wait, char *err, size_t errlen)
{
	const struct dbpool_stmt *st = &dbpool_stmts[k];
	PGresult *res, *extra;
	enum pgconn_class cls;
	int ok;

	if (!PQsendPrepare(w->pg, st->name, sql ? sql : st->sql, st->nparams, NULL))
	{
		pgconn_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(w->pg));
		return PREP_LOST;
	}
	if (pgconn_flush(w->pg, wait, err, errlen) < 0)
		return PREP_LOST;
	res = pgconn_next_result(w->pg, wait, &ok, err, errlen);
	if (!ok || !res)
	{
		if (ok)
			pgconn_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(w->pg));
		return PREP_LOST;
	}
	/* drain to the end of this command */
	while ((extra = pgconn_next_result(w->pg, wait, &ok, err, errlen)) != NULL)
		PQclear(extra);
	cls = ok ? pgconn_classify(w->pg, res) : PGCONN_LOST;
	if (cls == PGCONN_SQL && !sql && st->fallback && undefined_function(res))
	{
		static atomic_flag logged = ATOMIC_FLAG_INIT;

		if (!atomic_flag_test_and_set(&logged))
			log_warn("%s is not in the database (extension older than 1.1): counts are read without versions "
					 "and not cached; tried again every %d s",
					 st->name, DBPOOL_VERSIONED_RETRY_MS / 1000);
		PQclear(res);
		w->fallback_ms = clock_now_ms();
		return prepare_one(w, k, st->fallback, wait, err, errlen);
	}
	if (cls == PGCONN_OK)
		w->prepared |= 1u << k;
	else if (ok)
	{
		char why[PGCONN_ERRLEN];

		pgconn_error(w->pg, res, why, sizeof(why));
		if (cls == PGCONN_SQL)
			pgconn_set_err(err, errlen, "cannot prepare %s: %s", st->name, why);
		else
			pgconn_set_err(err, errlen, "PostgreSQL: %s", why);
	}
	PQclear(res);
	return cls == PGCONN_OK ? PREP_OK : cls == PGCONN_SQL ? PREP_SQL_ERROR : PREP_LOST;
}

int
dbpool_prepare(struct dbpool_worker *w, unsigned need, int64_t deadline, char *err, size_t errlen, unsigned *failed)
{
	struct pgconn_wait wait;
	int k;

	*failed = 0;
	if (!(need & ~w->prepared))
		return 0; /* the common case: all prepared already */
	pgconn_wait_init(&wait, deadline, NULL);
	for (k = 0; k < DBPOOL_NSTMTS; k++)
	{
		enum prep_rc rc;

		if (!(need & (1u << k)) || (w->prepared & (1u << k)))
			continue;
		rc = prepare_one(w, k, NULL, &wait, err, errlen);
		if (rc == PREP_LOST)
		{
			dbpool_drop(w);
			return -1;
		}
		if (rc == PREP_SQL_ERROR)
			*failed |= 1u << k;
	}
	return 0;
}

/* dbpool_prepare for a batch, bounded by its deadline (s->err says why). */
static int
prepare_needed(struct serve *s, unsigned need, unsigned *failed)
{
	return dbpool_prepare(s->w, need, s->deadline, s->err, sizeof(s->err), failed);
}

/*
 * A connection to the replica failed (s->err): reads go to the primary
 * (readsrc.h) and the batch tries there, once.  1 if it should.
 */
static int
fail_over(struct serve *s)
{
	if (s->w->server != READ_REPLICA || s->failed_over)
		return 0;
	s->failed_over = 1;
	readsrc_replica_failed(s->err);
	return 1;
}

/* After a failure: 1 to try again (a pooled connection's first failure, or fail-over), 0 to give up. */
static int
try_again(struct serve *s, int reused)
{
	if (reused && s->may_retry)
	{
		s->may_retry = 0;
		return 1;
	}
	return fail_over(s);
}

/*
 * Fail the pending jobs whose statement could not be prepared (failed bits;
 * all DBPOOL_GET jobs share one statement, so they stay or go together and
 * the pipe coalesces the same set); returns how many are left, in order.
 */
static size_t
fail_unprepared(struct serve *s, unsigned failed, int batch)
{
	size_t i, nrun = 0;

	for (i = 0; i < s->npending; i++)
	{
		if (failed & (1u << dbpool_stmt_of(s->pending[i], batch)))
			dbpool_fail(s->pending[i], DBPOOL_FAIL_SQL, s->err);
		else
			s->pending[nrun++] = s->pending[i];
	}
	return nrun;
}

/* One round: connect if needed, prepare, pipeline.  1 to go on with s->pending, 0 to stop. */
static int
serve_round(struct serve *s)
{
	struct dbpool_worker *w = s->w;
	enum read_server want = s->failed_over ? READ_PRIMARY : readsrc_target();
	int batch = dbpool_batch_stmt(s->pending, s->npending);
	size_t nrun;
	unsigned need, failed = 0;
	int reused, rc;

	dbpool_drop_if_stale(w, want, clock_now_ms());
	reused = w->pg != NULL;
	if (clock_now_ms() >= s->deadline)
	{
		pgconn_set_err(s->err, sizeof(s->err), "PostgreSQL: timed out");
		return 0;
	}
	if (!w->pg && connect_worker(s, want) < 0)
		return fail_over(s);
	need = dbpool_stmts_needed(s->pending, s->npending);
	s->err[0] = '\0';
	if (prepare_needed(s, need, &failed) < 0)
		return try_again(s, reused);
	nrun = fail_unprepared(s, failed, batch);
	s->npending = 0;
	if (nrun == 0)
		return 0;
	rc = dbpool_pipe_run(w, s->pending, nrun, s->deadline);
	memcpy(s->pending, w->pipe.left, w->pipe.nleft * sizeof(w->pipe.left[0]));
	s->npending = w->pipe.nleft;
	if (rc < 0)
	{
		snprintf(s->err, sizeof(s->err), "%s", w->pipe.err);
		if (w->pipe.ncompleted > 0)
			return fail_over(s);
		if (reused && s->may_retry)
			log_debug("pooled PostgreSQL connection was lost (%s); reconnecting", s->err);
		return try_again(s, reused);
	}
	metrics_set_conn(SC_CONN_HTTP_PG, 1);
	return s->npending > 0;
}

void
dbpool_serve_batch(struct dbpool_worker *w, struct dbpool_job **jobs, size_t n)
{
	struct serve s; /* not zeroed: 2 KiB per batch; each field is set here */
	size_t i;

	s.w = w;
	s.npending = n;
	s.deadline = jobs[0]->deadline;
	s.may_retry = 1;
	s.failed_over = 0;
	s.err[0] = '\0';
	for (i = 0; i < n; i++)
	{
		s.pending[i] = jobs[i];
		if (jobs[i]->deadline < s.deadline)
			s.deadline = jobs[i]->deadline;
	}
	while (s.npending > 0 && serve_round(&s))
		;
	for (i = 0; i < s.npending; i++)
		dbpool_fail(s.pending[i], clock_now_ms() >= s.deadline ? DBPOOL_FAIL_TIMEOUT : DBPOOL_FAIL_UNAVAILABLE,
					s.err[0] ? s.err : "PostgreSQL unavailable");
}
