/*
 * dbpool.c — the http role's PostgreSQL workers (see dbpool.h).
 *
 * Rules: the job queue and its counters (accepting, stopping, queued, busy,
 * inflight) are guarded by pool_lock; each worker owns its PGconn
 * exclusively, so libpq calls run outside the lock.  A worker's PGconn goes
 * to the server readsrc_target() names at the start of each batch (the
 * replica in pg_read_conninfo or the primary, see readsrc.h): one atomic load
 * per batch, no lag work on this path.  Connections are non-blocking
 * (dbconn.c); every wait is a poll() on PQsocket() bounded by the batch
 * deadline (the earliest deadline of its jobs).  On a connection-level
 * failure or a timeout the PGconn is closed (PQfinish), so a late answer to an
 * abandoned query can never be read as another's.  Jobs are completed (done())
 * outside the lock.
 *
 * A batch is sent as one pipeline of statements ("units"): every single-count
 * job (DBQ_GET) of the batch is coalesced into ONE statement (sc_get_batch,
 * one row per distinct key, in order) when there are two or more; every other
 * job is a statement of its own.  Jobs asking for the same key share its row:
 * the statement reads all keys in one snapshot, so they would get the same
 * number anyway.  A unit succeeds or fails as a whole: an SQL error in
 * the coalesced read fails all its jobs (inputs are validated before they get
 * here, so such an error is the database's, not one request's).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "dbconn.h"
#include "dbpool.h"
#include "log.h"
#include "metrics.h"
#include "readsrc.h"

#define BATCH_MAX 256			/* jobs taken at once (single counts coalesced into one statement) */
#define PIPE_MAX 64				/* other jobs in one batch (each is a statement of its own) */
#define WAKE_AT 32				/* queued jobs that make a second worker start a batch at once */
#define LINGER_MS 2				/* longest a job waits for a busy worker before another takes it */
#define HTTP_APPNAME "sharecount-bridge http"	/* application_name of the workers' sessions */

/* Statements: one per job kind, then the coalesced single-count read. */
#define STMT_GET_BATCH DBQ_KINDS
#define NSTMTS (DBQ_KINDS + 1)

static const struct
{
	const char *name;
	const char *sql;
	int			nparams;
} stmts[NSTMTS] = {
	[DBQ_PING] = {"sc_ping", "SELECT 1", 0},
	[DBQ_GET] = {"sc_get", "SELECT sharecount_get($1::text, $2::text)", 2},
	[DBQ_GET_MANY] = {"sc_get_many", "SELECT content_id, share_count FROM sharecount_get_many($1::text, $2::text[])", 2},
	[DBQ_STATS] = {"sc_stats", "SELECT sharecount_stats()::text", 0},
	[STMT_GET_BATCH] = {"sc_get_batch",
		"SELECT sharecount_get(t, i) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(t, i, n) ORDER BY n", 2},
};

/*
 * One statement of a pipeline and the jobs it answers: one job, or every
 * DBQ_GET of the batch for STMT_GET_BATCH.
 */
struct unit
{
	int			stmt;			/* index into stmts[] */
	struct db_job **jobs;
	size_t		n;
	/* STMT_GET_BATCH: jobs[j] is answered by row key_of[j] of nkeys */
	const size_t *key_of;
	size_t		nkeys;
};

/* A single count's key while the coalesced read's distinct keys are found. */
struct keyref
{
	const char *type;
	const char *id;
	size_t		job;			/* index into the unit's jobs */
};

struct worker
{
	pthread_t	thread;
	int			started;
	PGconn	   *pg;
	unsigned	prepared;		/* bit k: stmts[k] is prepared on pg */
	enum read_server server;	/* which server pg is connected to */
	/* counters for the shutdown log line (this worker's thread only) */
	uint64_t	njobs;			/* jobs sent (one sent again counts again) */
	uint64_t	nbatches;		/* batches taken */
	uint64_t	noverlap;		/* of which while another worker was busy */
	uint64_t	nsingle;		/* of which held one job */
	uint64_t	ncoalesced;		/* coalesced reads sent */
	uint64_t	ncoalesced_jobs;	/* jobs answered by them */
	uint64_t	ncoalesced_keys;	/* distinct keys they read */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cond;	/* jobs to take, or stopping (CLOCK_MONOTONIC) */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;	/* inflight dropped to 0 */
static struct db_job *queue_head, *queue_tail;
static int	accepting;			/* submits go to the queue */
static int	stopping;			/* workers exit once the queue is empty */
static int	inflight;			/* accepted and not yet completed */
static int	queued;				/* jobs in the queue */
static int	busy;				/* workers serving a batch */
static struct worker *workers;
static int	nworkers;
static int	cond_ready;			/* work_cond initialised (once per process) */

int64_t
dbpool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
complete(struct db_job *job, int rc)
{
	job->rc = rc;
	job->done(job);
}

static void
fail_job(struct db_job *job, int rc, const char *why)
{
	snprintf(job->err, sizeof(job->err), "%s", why);
	complete(job, rc);
}

/* ------------------------------------------------------------ connection -- */

static void
drop(struct worker *w)
{
	if (w->pg)
		PQfinish(w->pg);
	w->pg = NULL;
	w->prepared = 0;
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
}

/* Connect w->pg to `server`, bounded by the deadline. */
static int
connect_worker(struct worker *w, enum read_server server, int64_t deadline, char *err, size_t errlen)
{
	w->prepared = 0;
	w->server = server;
	w->pg = db_connect(readsrc_conninfo(server), HTTP_APPNAME, deadline, err, errlen);
	if (!w->pg)
		return DB_UNAVAILABLE;
	metrics_set_conn(SC_CONN_HTTP_PG, 1);
	return DB_OK;
}


/*
 * Prepare the statements this batch needs that w->pg lacks.  A statement
 * whose PREPARE fails with an SQL error (the extension is missing, say) is
 * left unprepared and its jobs fail; returns -1 only when the connection
 * failed (err set, connection dropped).
 */
static int
prepare_needed(struct worker *w, unsigned need, int64_t deadline, char *perr, size_t perrlen,
			   unsigned *failed)
{
	int			k;

	*failed = 0;
	for (k = 0; k < NSTMTS; k++)
	{
		PGresult   *res, *extra;
		int			ok;

		if (!(need & (1u << k)) || (w->prepared & (1u << k)))
			continue;
		if (!PQsendPrepare(w->pg, stmts[k].name, stmts[k].sql, stmts[k].nparams, NULL) ||
			db_flush_all(w->pg, deadline, perr, perrlen) < 0)
		{
			if (!perr[0])
				db_set_err(perr, perrlen, "PostgreSQL connection lost: %s", PQerrorMessage(w->pg));
			drop(w);
			return -1;
		}
		res = db_next_result(w->pg, deadline, &ok, perr, perrlen);
		if (!ok || !res)
		{
			if (ok)
				db_set_err(perr, perrlen, "PostgreSQL connection lost: %s", PQerrorMessage(w->pg));
			drop(w);
			return -1;
		}
		/* drain to the end of this command */
		while ((extra = db_next_result(w->pg, deadline, &ok, perr, perrlen)) != NULL)
			PQclear(extra);
		if (!ok)
		{
			PQclear(res);
			drop(w);
			return -1;
		}
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			w->prepared |= 1u << k;
		else if (db_is_conn_error(w->pg, res))
		{
			db_set_err(perr, perrlen, "PostgreSQL: %s", PQresultErrorMessage(res));
			PQclear(res);
			drop(w);
			return -1;
		}
		else
		{
			db_set_err(perr, perrlen, "cannot prepare %s: %s", stmts[k].name, PQresultErrorMessage(res));
			*failed |= 1u << k;
		}
		PQclear(res);
	}
	return 0;
}

/* ------------------------------------------------------------- results -- */

/* Fill a job's outputs from its query result; returns its rc. */
static int
take_result(struct db_job *job, PGresult *res)
{
	size_t		i;

	switch (job->kind)
	{
		case DBQ_PING:
			return DB_OK;
		case DBQ_GET:
			if (PQntuples(res) != 1 || PQnfields(res) != 1)
			{
				db_set_err(job->err, sizeof(job->err), "sharecount_get returned an unexpected shape");
				return DB_ERROR;
			}
			job->count = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			return DB_OK;
		case DBQ_GET_MANY:
			/* one row per asked id, in order (SPEC §4); check rather than trust */
			if ((size_t) PQntuples(res) != job->nids || PQnfields(res) != 2)
			{
				db_set_err(job->err, sizeof(job->err), "sharecount_get_many returned %d rows for %zu ids",
						PQntuples(res), job->nids);
				return DB_ERROR;
			}
			for (i = 0; i < job->nids; i++)
			{
				if (strcmp(PQgetvalue(res, (int) i, 0), job->ids[i]) != 0)
				{
					db_set_err(job->err, sizeof(job->err), "sharecount_get_many returned rows out of order");
					return DB_ERROR;
				}
				job->counts[i] = PQgetisnull(res, (int) i, 1) ? 0 : strtoll(PQgetvalue(res, (int) i, 1), NULL, 10);
			}
			return DB_OK;
		case DBQ_STATS:
			if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
			{
				db_set_err(job->err, sizeof(job->err), "sharecount_stats returned nothing");
				return DB_ERROR;
			}
			job->stats = strdup(PQgetvalue(res, 0, 0));
			if (!job->stats)
			{
				db_set_err(job->err, sizeof(job->err), "out of memory");
				return DB_ERROR;
			}
			return DB_OK;
		default:
			db_set_err(job->err, sizeof(job->err), "unknown job kind");
			return DB_ERROR;
	}
}

/*
 * Fill the outputs of a coalesced read's jobs from its result (one row per
 * distinct key, in the order sent; key_of maps jobs to rows); returns the
 * unit's rc.  The shape is checked, not trusted.
 */
static int
take_batch_result(const struct unit *u, PGresult *res)
{
	size_t		i;

	if ((size_t) PQntuples(res) != u->nkeys || PQnfields(res) != 1)
	{
		for (i = 0; i < u->n; i++)
			db_set_err(u->jobs[i]->err, sizeof(u->jobs[i]->err),
					"coalesced sharecount_get returned %d rows for %zu keys", PQntuples(res), u->nkeys);
		return DB_ERROR;
	}
	for (i = 0; i < u->n; i++)
	{
		int			row = (int) u->key_of[i];

		u->jobs[i]->count = PQgetisnull(res, row, 0) ? 0 : strtoll(PQgetvalue(res, row, 0), NULL, 10);
	}
	return DB_OK;
}

static int
keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int			c = strcmp(x->id, y->id);

	if (c == 0)
		c = strcmp(x->type, y->type);
	if (c == 0)
		c = (x->job > y->job) - (x->job < y->job);
	return c;
}

/*
 * The distinct keys of n single counts: fills types/ids[0..nkeys) and
 * key_of[j] (the row that answers jobs[j]); returns nkeys.  Sorting costs a
 * few hundred nanoseconds for a typical batch; a repeated key saves the
 * backend a whole index probe (~3 us).
 */
static size_t
distinct_keys(struct db_job *const *jobs, size_t n, char **types, char **ids, size_t *key_of)
{
	struct keyref refs[BATCH_MAX];
	size_t		i, nkeys = 0;

	for (i = 0; i < n; i++)
		refs[i] = (struct keyref) {jobs[i]->type, jobs[i]->id, i};
	qsort(refs, n, sizeof(refs[0]), keyref_cmp);
	for (i = 0; i < n; i++)
	{
		if (i == 0 || strcmp(refs[i].id, refs[i - 1].id) != 0 || strcmp(refs[i].type, refs[i - 1].type) != 0)
		{
			/* db_text_array_literal only reads the strings */
			types[nkeys] = (char *) refs[i].type;
			ids[nkeys] = (char *) refs[i].id;
			nkeys++;
		}
		key_of[refs[i].job] = nkeys - 1;
	}
	return nkeys;
}

/*
 * The statement that answers `job` in a batch holding `ngets` DBQ_GET jobs:
 * two or more single counts share one coalesced read.
 */
static int
stmt_of(const struct db_job *job, size_t ngets)
{
	return job->kind == DBQ_GET && ngets >= 2 ? STMT_GET_BATCH : (int) job->kind;
}

static size_t
count_gets(struct db_job *const *jobs, size_t n)
{
	size_t		i, k = 0;

	for (i = 0; i < n; i++)
		k += jobs[i]->kind == DBQ_GET;
	return k;
}

/* A unit's answer is in: complete its jobs, or queue them again (rc 1: skipped). */
static void
finish_unit(const struct unit *u, int rc, struct db_job **left, size_t *nleft, size_t *ncompleted)
{
	size_t		i;

	for (i = 0; i < u->n; i++)
	{
		if (rc == 1)
			left[(*nleft)++] = u->jobs[i];
		else
		{
			complete(u->jobs[i], rc);
			(*ncompleted)++;
		}
	}
}

/*
 * Send jobs[0..n) as one pipeline closed by one Sync (libpq 15 flushes at
 * every Sync, so one per statement would cost a write per statement), and
 * complete them in order.  Two or more DBQ_GET jobs go as one coalesced
 * statement (see the file header): the backend then pays its per-statement
 * cost (Bind, Execute, portal, snapshot, result) once per batch instead of
 * once per request, and a key asked for several times is probed once.  If
 * a statement fails with an SQL error, PostgreSQL
 * skips the rest up to the Sync (PGRES_PIPELINE_ABORTED): those jobs are
 * returned in left[] to be sent again.  Returns 0, or -1 when the connection
 * failed (dropped, reason in err): then left[] holds every job not completed.
 * *ncompleted counts the jobs completed here.
 */
static int
run_pipeline(struct worker *w, struct db_job **jobs, size_t n, int64_t deadline, char *err, size_t errlen,
			 struct db_job **left, size_t *nleft, size_t *ncompleted)
{
	PGconn	   *pg = w->pg;
	struct unit units[PIPE_MAX + 1];
	struct db_job *gets[BATCH_MAX];
	char	   *gtypes[BATCH_MAX], *gids[BATCH_MAX];
	size_t		key_of[BATCH_MAX], nkeys = 0;
	char	   *arrays[PIPE_MAX + 1] = {0};
	char	   *garrays[2] = {NULL, NULL};
	size_t		ngets = count_gets(jobs, n), nunits = 0, u, i, sent = 0;
	PGresult   *res;
	int			ok;

	*nleft = 0;
	*ncompleted = 0;
	/* the units: the coalesced read first, then the other jobs in order */
	if (ngets >= 2)
	{
		size_t		k = 0;

		for (i = 0; i < n; i++)
			if (jobs[i]->kind == DBQ_GET)
				gets[k++] = jobs[i];
		nkeys = distinct_keys(gets, ngets, gtypes, gids, key_of);
		units[nunits++] = (struct unit) {STMT_GET_BATCH, gets, ngets, key_of, nkeys};
	}
	for (i = 0; i < n; i++)
		if (stmt_of(jobs[i], ngets) != STMT_GET_BATCH)
			units[nunits++] = (struct unit) {(int) jobs[i]->kind, &jobs[i], 1, NULL, 0};

	if (!PQenterPipelineMode(pg))
	{
		db_set_err(err, errlen, "PostgreSQL: cannot enter pipeline mode: %s", PQerrorMessage(pg));
		goto lost;
	}
	for (u = 0; u < nunits; u++)
	{
		struct db_job *job = units[u].jobs[0];
		const char *params[2] = {NULL, NULL};

		switch (units[u].stmt)
		{
			case STMT_GET_BATCH:
				garrays[0] = db_text_array_literal(gtypes, nkeys);
				garrays[1] = db_text_array_literal(gids, nkeys);
				if (!garrays[0] || !garrays[1])
				{
					db_set_err(err, errlen, "out of memory");
					goto lost;
				}
				params[0] = garrays[0];
				params[1] = garrays[1];
				break;
			case DBQ_GET:
				params[0] = job->type;
				params[1] = job->id;
				break;
			case DBQ_GET_MANY:
				arrays[u] = db_text_array_literal(job->ids, job->nids);
				if (!arrays[u])
				{
					db_set_err(err, errlen, "out of memory");
					goto lost;
				}
				params[0] = job->type;
				params[1] = arrays[u];
				break;
			default:
				break;
		}
		if (!PQsendQueryPrepared(pg, stmts[units[u].stmt].name, stmts[units[u].stmt].nparams, params,
								 NULL, NULL, 0))
			break;
		sent++;
	}
	if (sent < nunits || !PQpipelineSync(pg))
	{
		db_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
		goto lost;
	}
	for (u = 0; u < nunits; u++)
		free(arrays[u]);
	free(garrays[0]);
	free(garrays[1]);
	memset(arrays, 0, sizeof(arrays));
	garrays[0] = garrays[1] = NULL;
	w->njobs += n;
	if (ngets >= 2)
	{
		w->ncoalesced++;
		w->ncoalesced_jobs += ngets;
		w->ncoalesced_keys += nkeys;
	}
	if (db_flush_all(pg, deadline, err, errlen) < 0)
		goto lost;

	for (u = 0; u < nunits; u++)
	{
		const struct unit *un = &units[u];
		PGresult   *end;
		int			rc = DB_OK;

		res = db_next_result(pg, deadline, &ok, err, errlen);
		if (!ok || !res)
		{
			if (ok)
				db_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
			goto lost_at;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_TUPLES_OK:
				rc = un->stmt == STMT_GET_BATCH ? take_batch_result(un, res) : take_result(un->jobs[0], res);
				break;
			case PGRES_PIPELINE_ABORTED:
				rc = 1;			/* skipped: send again */
				break;
			default:
				if (db_is_conn_error(pg, res))
				{
					db_set_err(err, errlen, "PostgreSQL: %s", PQresultErrorMessage(res));
					PQclear(res);
					goto lost_at;
				}
				for (i = 0; i < un->n; i++)
					db_set_err(un->jobs[i]->err, sizeof(un->jobs[i]->err), "PostgreSQL: %s",
							PQresultErrorMessage(res));
				rc = DB_ERROR;
				break;
		}
		PQclear(res);
		end = db_next_result(pg, deadline, &ok, err, errlen);	/* NULL: end of this statement */
		if (!ok || end)
		{
			if (end)
			{
				PQclear(end);
				db_set_err(err, errlen, "PostgreSQL: unexpected result in the pipeline");
			}
			finish_unit(un, rc, left, nleft, ncompleted);	/* its answer is whole: keep it */
			u++;
			goto lost_at;
		}
		finish_unit(un, rc, left, nleft, ncompleted);
	}
	res = db_next_result(pg, deadline, &ok, err, errlen);
	if (!ok || !res || PQresultStatus(res) != PGRES_PIPELINE_SYNC)
	{
		if (ok)
			db_set_err(err, errlen, "PostgreSQL: pipeline did not end with its Sync");
		if (res)
			PQclear(res);
		drop(w);
		return -1;				/* left[] holds what was skipped; the rest have answers */
	}
	PQclear(res);
	if (!PQexitPipelineMode(pg))
	{
		db_set_err(err, errlen, "PostgreSQL: cannot leave pipeline mode: %s", PQerrorMessage(pg));
		drop(w);
		return -1;
	}
	return 0;

lost:
	u = 0;
lost_at:
	for (i = 0; i < nunits; i++)
		free(arrays[i]);
	free(garrays[0]);
	free(garrays[1]);
	for (; u < nunits; u++)
		for (i = 0; i < units[u].n; i++)
			left[(*nleft)++] = units[u].jobs[i];
	drop(w);
	return -1;
}

/*
 * A connection to the replica failed (err): reads go to the primary
 * (readsrc.h) and the batch tries there, once.  1 if it should.
 */
static int
fail_over(struct worker *w, int *failed_over, const char *err)
{
	if (w->server != READ_REPLICA || *failed_over)
		return 0;
	*failed_over = 1;
	readsrc_replica_failed(err);
	return 1;
}

/*
 * Serve one batch: connect if needed, prepare, pipeline, and send again what
 * an SQL error made PostgreSQL skip.  A pooled connection may have died while
 * idle (PostgreSQL restarted): then its first use fails before any answer,
 * and the jobs are retried once on a fresh connection, within the deadline.
 * The connection is to the server readsrc_target() names; when that changed,
 * it is closed and made again.  When the replica fails, the jobs not answered
 * are sent to the primary (fail_over).
 */
static void
serve_batch(struct worker *w, struct db_job **jobs, size_t n)
{
	char		err[256];
	int64_t		deadline = jobs[0]->deadline;
	struct db_job *pending[BATCH_MAX], *left[BATCH_MAX];
	size_t		npending = 0, i;
	int			may_retry = 1, failed_over = 0;

	for (i = 0; i < n; i++)
	{
		pending[npending++] = jobs[i];
		if (jobs[i]->deadline < deadline)
			deadline = jobs[i]->deadline;
	}
	err[0] = '\0';
	while (npending > 0)
	{
		enum read_server want = failed_over ? READ_PRIMARY : readsrc_target();
		int			reused;
		unsigned	need = 0, failed = 0;
		size_t		nrun = 0, nleft = 0, ncompleted = 0;
		size_t		ngets = count_gets(pending, npending);

		if (w->pg && w->server != want)
			drop(w);			/* the read server changed */
		reused = w->pg != NULL;
		if (dbpool_now_ms() >= deadline)
		{
			db_set_err(err, sizeof(err), "PostgreSQL: timed out");
			break;
		}
		if (!w->pg && connect_worker(w, want, deadline, err, sizeof(err)) != DB_OK)
		{
			if (fail_over(w, &failed_over, err))
				continue;
			break;
		}
		for (i = 0; i < npending; i++)
			need |= 1u << stmt_of(pending[i], ngets);
		err[0] = '\0';
		if (prepare_needed(w, need, deadline, err, sizeof(err), &failed) < 0)
		{
			if (reused && may_retry)
			{
				may_retry = 0;
				continue;
			}
			if (fail_over(w, &failed_over, err))
				continue;
			break;
		}
		/*
		 * jobs whose statement cannot be prepared fail now; the rest run (all
		 * DBQ_GET jobs share one statement, so they stay or go together and
		 * run_pipeline coalesces the same set)
		 */
		for (i = 0; i < npending; i++)
		{
			if (failed & (1u << stmt_of(pending[i], ngets)))
				fail_job(pending[i], DB_ERROR, err);
			else
				pending[nrun++] = pending[i];
		}
		if (nrun == 0)
			return;
		if (run_pipeline(w, pending, nrun, deadline, err, sizeof(err), left, &nleft, &ncompleted) < 0)
		{
			memcpy(pending, left, nleft * sizeof(left[0]));
			npending = nleft;
			if (reused && may_retry && ncompleted == 0)
			{
				may_retry = 0;
				log_debug("http: pooled PostgreSQL connection was lost (%s); reconnecting", err);
				continue;
			}
			if (fail_over(w, &failed_over, err))
				continue;
			break;
		}
		metrics_set_conn(SC_CONN_HTTP_PG, 1);
		memcpy(pending, left, nleft * sizeof(left[0]));
		npending = nleft;
	}
	for (i = 0; i < npending; i++)
		fail_job(pending[i], DB_UNAVAILABLE, err[0] ? err : "PostgreSQL unavailable");
}

/* -------------------------------------------------------------- workers -- */

/*
 * Should an idle worker take the queued jobs now?  Yes when no worker is
 * busy (no added latency when idle), when enough are queued for a good batch,
 * or when the oldest has waited LINGER_MS (a slow batch elsewhere must not
 * hold the others up).  Otherwise the busy worker will take them all when it
 * finishes its round trip: under load that makes batches large, and a batch
 * costs PostgreSQL and the bridge about the same whether it has 1 job or 30.
 */
static int
should_take(int64_t now)
{
	return queue_head &&
		(busy == 0 || queued >= WAKE_AT || now - queue_head->queued_ms >= LINGER_MS);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;)
	{
		struct db_job *jobs[BATCH_MAX];
		size_t		n = 0, nother = 0, live = 0, i;
		int64_t		now;

		pthread_mutex_lock(&pool_lock);
		for (;;)
		{
			now = dbpool_now_ms();
			if (should_take(now) || (stopping && !queue_head))
				break;
			if (queue_head || busy > 0)
			{
				/* re-check soon: the jobs may have to be taken from a slow worker */
				int64_t		at = now + LINGER_MS;
				struct timespec ts = {at / 1000, (at % 1000) * 1000000};

				pthread_cond_timedwait(&work_cond, &pool_lock, &ts);
			}
			else
				pthread_cond_wait(&work_cond, &pool_lock);
		}
		if (!queue_head)
		{
			pthread_mutex_unlock(&pool_lock);
			break;
		}
		/* up to BATCH_MAX jobs, of which at most PIPE_MAX are not single counts */
		while (queue_head && n < BATCH_MAX && (queue_head->kind == DBQ_GET || nother < PIPE_MAX))
		{
			nother += queue_head->kind != DBQ_GET;
			jobs[n++] = queue_head;
			queue_head = queue_head->next;
		}
		queued -= (int) n;
		if (!queue_head)
			queue_tail = NULL;
		if (busy > 0)
			w->noverlap++;
		w->nsingle += n == 1;
		busy++;
		pthread_mutex_unlock(&pool_lock);

		/* jobs that waited past their deadline are answered at once */
		for (i = 0; i < n; i++)
		{
			if (jobs[i]->deadline <= now)
				fail_job(jobs[i], DB_UNAVAILABLE, "timed out waiting for a PostgreSQL connection");
			else
				jobs[live++] = jobs[i];
		}
		if (live)
		{
			w->nbatches++;
			serve_batch(w, jobs, live);
		}

		pthread_mutex_lock(&pool_lock);
		busy--;
		inflight -= (int) n;
		if (inflight == 0)
			pthread_cond_broadcast(&idle_cond);
		pthread_mutex_unlock(&pool_lock);
	}
	drop(w);
	return NULL;
}

void
dbpool_submit(struct db_job *job)
{
	job->next = NULL;
	job->rc = DB_UNAVAILABLE;
	job->err[0] = '\0';
	job->queued_ms = dbpool_now_ms();
	pthread_mutex_lock(&pool_lock);
	if (!accepting)
	{
		pthread_mutex_unlock(&pool_lock);
		fail_job(job, DB_UNAVAILABLE, "shutting down");
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

int
dbpool_init(const struct readsrc_conf *reads, int size)
{
	int			i;

	if (!reads || size < 1)
		return -1;
	workers = calloc(size, sizeof(struct worker));
	if (!workers || readsrc_start(reads) != 0)
	{
		free(workers);
		workers = NULL;
		return -1;
	}
	nworkers = size;
	if (!cond_ready)
	{
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&work_cond, &attr);
		pthread_condattr_destroy(&attr);
		cond_ready = 1;
	}
	accepting = 1;
	queued = 0;
	busy = 0;
	stopping = 0;
	inflight = 0;
	metrics_use_conn(SC_CONN_HTTP_PG);
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
	for (i = 0; i < size; i++)
	{
		int			rc = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);

		if (rc != 0)
		{
			log_error("http: cannot start a database worker: %s", strerror(rc));
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
	int			i;

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
	{
		uint64_t	jobs = 0, batches = 0, co = 0, cojobs = 0, cokeys = 0, overlap = 0, single = 0;

		for (i = 0; i < nworkers; i++)
		{
			jobs += workers[i].njobs;
			batches += workers[i].nbatches;
			overlap += workers[i].noverlap;
			single += workers[i].nsingle;
			co += workers[i].ncoalesced;
			cojobs += workers[i].ncoalesced_jobs;
			cokeys += workers[i].ncoalesced_keys;
		}
		log_info("http: database jobs sent %llu in %llu batches (%llu of one job, %llu taken while another "
				 "worker was busy); %llu single counts coalesced into %llu reads of %llu distinct keys",
				 (unsigned long long) jobs, (unsigned long long) batches, (unsigned long long) single,
				 (unsigned long long) overlap, (unsigned long long) cojobs, (unsigned long long) co,
				 (unsigned long long) cokeys);
	}
	readsrc_stop();
	free(workers);
	workers = NULL;
	nworkers = 0;
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
}

char *
db_text_array_literal(char *const *items, size_t n)
{
	size_t		len = 3, i, o = 0;
	char	   *out;

	for (i = 0; i < n; i++)
	{
		const char *p;

		len += 3;				/* quotes and comma */
		for (p = items[i]; *p; p++)
			len += (*p == '"' || *p == '\\') ? 2 : 1;
	}
	out = malloc(len);
	if (!out)
		return NULL;
	out[o++] = '{';
	for (i = 0; i < n; i++)
	{
		const char *p;

		if (i)
			out[o++] = ',';
		out[o++] = '"';
		for (p = items[i]; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				out[o++] = '\\';
			out[o++] = *p;
		}
		out[o++] = '"';
	}
	out[o++] = '}';
	out[o] = '\0';
	return out;
}
