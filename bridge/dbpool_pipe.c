/*
 * dbpool_pipe.c — one pipeline round trip of the http role's pool (see
 * dbpool_int.h): a batch's jobs as statements ("units"), sent at once in
 * libpq pipeline mode closed by one Sync, answered in order.
 *
 * Every single-count job (DBPOOL_GET) of the batch is coalesced into ONE
 * statement (sc_get_batch, one row per distinct key, in order) when there are
 * two or more: the backend then pays its per-statement cost (Bind, Execute,
 * portal, snapshot, result) once per batch instead of once per request, and
 * a key asked for several times is probed once (the statement reads all keys
 * in one snapshot, so they would get the same number anyway).  Every other
 * job is a statement of its own.  A unit succeeds or fails as a whole: an SQL
 * error in the coalesced read fails all its jobs (inputs are validated before
 * they get here, so such an error is the database's, not one request's).
 * One Sync for the whole pipeline: libpq 15 flushes at every Sync, so one per
 * statement would cost a write per statement.
 *
 * Rules: the round is driven by pipe_step over struct dbpool_pipe, one state
 * (enum dbpool_pipe_state) at a time; the pipe owns the text[] literals it
 * encodes (owned[], freed when the round ends, whatever the outcome) and
 * only points at its jobs.  A unit whose answer is read is completed at once;
 * units PostgreSQL skipped after an SQL error (PGRES_PIPELINE_ABORTED), and
 * every unit not answered when the connection fails, go to left[] for the
 * caller to send again.  A connection failure drops the worker's connection.
 */
#include <stdlib.h>
#include <string.h>

#include "dbpool_int.h"

const struct dbpool_stmt dbpool_stmts[DBPOOL_NSTMTS] = {
	[DBPOOL_PING] = {"sc_ping", "SELECT 1", 0, NULL},
	[DBPOOL_GET] = {"sc_get", "SELECT sharecount_get($1::text, $2::text)", 2, NULL},
	[DBPOOL_GET_MANY] = {"sc_get_many", "SELECT content_id, share_count FROM sharecount_get_many($1::text, $2::text[])",
						 2, NULL},
	[DBPOOL_STATS] = {"sc_stats", "SELECT sharecount_stats()::text", 0, NULL},
	/* the total and the breakdown in one statement: one snapshot, so they agree */
	[DBPOOL_BREAKDOWN] = {"sc_breakdown",
						  "SELECT 0 AS k, NULL::text AS v, sharecount_get($1::text, $2::text) AS n UNION ALL "
						  "SELECT 1, value, share_count FROM sharecount_get_breakdown($1::text, $2::text, $3::text) "
						  "ORDER BY k, n DESC, v",
						  3, NULL},
	[DBPOOL_HISTORY] = {"sc_history",
						"SELECT (extract(epoch FROM bucket_start) * 1000)::bigint, shares FROM "
						"sharecount_history($1::text, $2::text, $3::timestamptz, $4::timestamptz, $5::text) ORDER BY 1",
						5, NULL},
	[DBPOOL_TOP] = {"sc_top", "SELECT content_id, shares FROM sharecount_top($1::text, $2::interval, $3::int)", 3,
					NULL},
	[DBPOOL_STMT_GET_BATCH] =
		{"sc_get_batch",
		 "SELECT sharecount_get(t, i) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(t, i, n) ORDER BY n", 2,
		 NULL},
	[DBPOOL_STMT_GET_V] = {"sc_get_v",
						   "SELECT share_count, version FROM sharecount_get_versioned($1::text, ARRAY[$2::text])", 2,
						   "SELECT sharecount_get($1::text, $2::text), NULL::bigint"},
	[DBPOOL_STMT_GET_BATCH_V] = {"sc_get_batch_v",
								 "SELECT v.share_count, v.version FROM unnest($1::text[], $2::text[]) WITH ORDINALITY "
								 "AS u(t, i, n) CROSS JOIN LATERAL sharecount_get_versioned(u.t, ARRAY[u.i]) AS v "
								 "ORDER BY u.n",
								 2,
								 "SELECT sharecount_get(t, i), NULL::bigint FROM unnest($1::text[], $2::text[]) "
								 "WITH ORDINALITY AS u(t, i, n) ORDER BY n"},
	[DBPOOL_STMT_GET_BATCH_V1] = {"sc_get_batch_v1",
								  "SELECT share_count, version FROM sharecount_get_versioned($1::text, $2::text[])", 2,
								  "SELECT share_count, NULL::bigint FROM sharecount_get_many($1::text, $2::text[])"},
};

int
dbpool_batch_stmt(struct dbpool_job *const *jobs, size_t n)
{
	const char *type = NULL;
	size_t i, k = 0;
	int one_type = 1;

	for (i = 0; i < n; i++)
	{
		if (jobs[i]->kind != DBPOOL_GET)
			continue;
		k++;
		if (!type)
			type = jobs[i]->type;
		else if (strcmp(type, jobs[i]->type) != 0)
			one_type = 0;
	}
	if (k < 2)
		return -1;
	if (!dbpool_versioned())
		return DBPOOL_STMT_GET_BATCH;
	return one_type ? DBPOOL_STMT_GET_BATCH_V1 : DBPOOL_STMT_GET_BATCH_V;
}

int
dbpool_stmt_of(const struct dbpool_job *job, int batch)
{
	int v = dbpool_versioned();

	if (job->kind == DBPOOL_GET)
		return batch >= 0 ? batch : v ? DBPOOL_STMT_GET_V : DBPOOL_GET;
	return (int) job->kind;
}

unsigned
dbpool_stmts_needed(struct dbpool_job *const *jobs, size_t n)
{
	int batch = dbpool_batch_stmt(jobs, n);
	unsigned need = 0;
	size_t i;

	for (i = 0; i < n; i++)
		need |= 1u << dbpool_stmt_of(jobs[i], batch);
	return need;
}

size_t
dbpool_count_gets(struct dbpool_job *const *jobs, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += jobs[i]->kind == DBPOOL_GET;
	return k;
}

/* Free what the round encoded. */
static void
pipe_free_owned(struct dbpool_pipe *p)
{
	while (p->nowned > 0)
		free(p->owned[--p->nowned]);
}

/* The connection failed (p->err says why): every unit not answered goes to left[]. */
static void
pipe_lose(struct dbpool_pipe *p)
{
	size_t u, i;

	for (u = p->next; u < p->nunits; u++)
		for (i = 0; i < p->units[u].n; i++)
			p->left[p->nleft++] = p->units[u].jobs[i];
	p->next = p->nunits;
	p->state = DBPOOL_PIPE_LOST;
}

/* IDLE -> PLANNED: the units, the coalesced read first, then the other jobs in order. */
static void
pipe_plan(struct dbpool_pipe *p, struct dbpool_job **jobs, size_t n)
{
	size_t i, k = 0;
	int batch = dbpool_batch_stmt(jobs, n);

	p->nunits = p->next = p->nleft = p->ncompleted = p->nkeys = 0;
	p->err[0] = '\0';
	p->ngets = dbpool_count_gets(jobs, n);
	if (p->ngets >= 2)
	{
		for (i = 0; i < n; i++)
			if (jobs[i]->kind == DBPOOL_GET)
				p->gets[k++] = jobs[i];
		p->nkeys = dbpool_distinct_keys(p->gets, p->ngets, p->gtypes, p->gids, p->key_of);
		p->units[p->nunits++] = (struct dbpool_unit){batch, p->gets, p->ngets, p->key_of, p->nkeys};
	}
	for (i = 0; i < n; i++)
		if (!DBPOOL_STMT_IS_BATCH(dbpool_stmt_of(jobs[i], batch)))
			p->units[p->nunits++] = (struct dbpool_unit){dbpool_stmt_of(jobs[i], batch), &jobs[i], 1, NULL, 0};
	p->state = DBPOOL_PIPE_PLANNED;
}

/* Keep a malloc'ed parameter until the round ends; s itself (NULL: out of memory). */
static const char *
pipe_own(struct dbpool_pipe *p, char *s)
{
	if (s)
		p->owned[p->nowned++] = s;
	return s;
}

/* Unit u's parameters into params[DBPOOL_MAX_PARAMS]; 0, or -1 when out of memory. */
static int
unit_params(struct dbpool_pipe *p, const struct dbpool_unit *u, const char *params[DBPOOL_MAX_PARAMS])
{
	const struct dbpool_job *job = u->jobs[0];

	memset(params, 0, DBPOOL_MAX_PARAMS * sizeof(params[0]));
	switch (u->stmt)
	{
		case DBPOOL_STMT_GET_BATCH_V1: /* one type: the ids only (distinct) */
			params[0] = p->gtypes[0];
			params[1] = pipe_own(p, dbpool_text_array_literal(p->gids, p->nkeys));
			return params[1] ? 0 : -1;
		case DBPOOL_STMT_GET_BATCH:
		case DBPOOL_STMT_GET_BATCH_V:
			params[0] = pipe_own(p, dbpool_text_array_literal(p->gtypes, p->nkeys));
			params[1] = pipe_own(p, dbpool_text_array_literal(p->gids, p->nkeys));
			return params[0] && params[1] ? 0 : -1;
		case DBPOOL_GET:
		case DBPOOL_STMT_GET_V:
			params[0] = job->type;
			params[1] = job->id;
			return 0;
		case DBPOOL_GET_MANY:
			params[0] = job->type;
			params[1] = pipe_own(p, dbpool_text_array_literal(job->ids, job->nids));
			return params[1] ? 0 : -1;
		case DBPOOL_BREAKDOWN:
		case DBPOOL_HISTORY:
		case DBPOOL_TOP:
			dbpool_trends_params(job, params, dbpool_stmts[u->stmt].nparams);
			return 0;
		default:
			return 0;
	}
}

/* PLANNED -> SENT: every statement and the Sync into libpq's buffer. */
static void
pipe_send(struct dbpool_pipe *p)
{
	size_t u, njobs = 0;

	if (!PQenterPipelineMode(p->pg))
	{
		pgconn_set_err(p->err, sizeof(p->err), "PostgreSQL: cannot enter pipeline mode: %s", PQerrorMessage(p->pg));
		pipe_lose(p);
		return;
	}
	for (u = 0; u < p->nunits; u++)
	{
		const struct dbpool_stmt *st = &dbpool_stmts[p->units[u].stmt];
		const char *params[DBPOOL_MAX_PARAMS];

		if (unit_params(p, &p->units[u], params) < 0)
		{
			pgconn_set_err(p->err, sizeof(p->err), "out of memory");
			pipe_lose(p);
			return;
		}
		if (!PQsendQueryPrepared(p->pg, st->name, st->nparams, params, NULL, NULL, 0))
			break;
		njobs += p->units[u].n;
	}
	if (u < p->nunits || !PQpipelineSync(p->pg))
	{
		pgconn_set_err(p->err, sizeof(p->err), "PostgreSQL connection lost: %s", PQerrorMessage(p->pg));
		pipe_lose(p);
		return;
	}
	pipe_free_owned(p); /* libpq has copied the parameters */
	dbpool_stat_add(DBPOOL_STAT_JOBS, njobs);
	if (p->ngets >= 2)
	{
		dbpool_stat_add(DBPOOL_STAT_COALESCED, 1);
		dbpool_stat_add(DBPOOL_STAT_COALESCED_JOBS, p->ngets);
		dbpool_stat_add(DBPOOL_STAT_COALESCED_KEYS, p->nkeys);
	}
	p->state = DBPOOL_PIPE_SENT;
}

/* SENT -> READING: everything written to the server. */
static void
pipe_flush(struct dbpool_pipe *p)
{
	if (pgconn_flush(p->pg, &p->wait, p->err, sizeof(p->err)) < 0)
		pipe_lose(p);
	else
		p->state = DBPOOL_PIPE_READING;
}

/*
 * Fill the jobs' outputs from unit un's result: DBPOOL_OK or DBPOOL_ERROR
 * (each job's err set), or -1 when the error means the connection is gone
 * (p->err set).
 */
static int
unit_answer(struct dbpool_pipe *p, const struct dbpool_unit *un, PGresult *res)
{
	char why[PGCONN_ERRLEN];
	size_t i;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		return DBPOOL_STMT_IS_BATCH(un->stmt) ? dbpool_take_batch_result(un, res) :
												dbpool_take_result(un->jobs[0], res);
	pgconn_error(p->pg, res, why, sizeof(why));
	if (pgconn_classify(p->pg, res) != PGCONN_SQL)
	{
		pgconn_set_err(p->err, sizeof(p->err), "PostgreSQL: %s", why);
		return -1;
	}
	if (dbpool_bad_input(un->jobs[0], res))
		return DBPOOL_BAD_INPUT; /* a trends read is one job; err holds the server's message */
	for (i = 0; i < un->n; i++)
		pgconn_set_err(un->jobs[i]->err, sizeof(un->jobs[i]->err), "PostgreSQL: %s", why);
	return DBPOOL_ERROR;
}

/* A unit's answer is whole: complete its jobs (rc), or keep them for another round (skipped). */
static void
unit_done(struct dbpool_pipe *p, const struct dbpool_unit *un, int skipped, int rc)
{
	size_t i;

	for (i = 0; i < un->n; i++)
	{
		if (skipped)
			p->left[p->nleft++] = un->jobs[i];
		else
		{
			dbpool_complete(un->jobs[i], rc);
			p->ncompleted++;
		}
	}
}

/* READING: read units[next]'s answer; -> ANSWERED after the last one. */
static void
pipe_read_unit(struct dbpool_pipe *p)
{
	const struct dbpool_unit *un = &p->units[p->next];
	int ok, skipped, rc = DBPOOL_OK;
	PGresult *res = pgconn_next_result(p->pg, &p->wait, &ok, p->err, sizeof(p->err));
	PGresult *end;

	if (!ok || !res)
	{
		if (ok)
			pgconn_set_err(p->err, sizeof(p->err), "PostgreSQL connection lost: %s", PQerrorMessage(p->pg));
		pipe_lose(p);
		return;
	}
	skipped = PQresultStatus(res) == PGRES_PIPELINE_ABORTED;
	if (!skipped && (rc = unit_answer(p, un, res)) == -1)
	{
		PQclear(res);
		pipe_lose(p);
		return;
	}
	PQclear(res);
	end = pgconn_next_result(p->pg, &p->wait, &ok, p->err, sizeof(p->err)); /* NULL: end of this statement */
	unit_done(p, un, skipped, rc);
	p->next++;
	if (!ok || end)
	{
		if (end)
			pgconn_set_err(p->err, sizeof(p->err), "PostgreSQL: unexpected result in the pipeline");
		PQclear(end);
		pipe_lose(p);
	}
	else if (p->next == p->nunits)
		p->state = DBPOOL_PIPE_ANSWERED;
}

/* ANSWERED -> SYNCED: the Sync's result, then out of pipeline mode. */
static void
pipe_read_sync(struct dbpool_pipe *p)
{
	int ok;
	PGresult *res = pgconn_next_result(p->pg, &p->wait, &ok, p->err, sizeof(p->err));

	if (!ok || !res || PQresultStatus(res) != PGRES_PIPELINE_SYNC)
	{
		if (ok)
			pgconn_set_err(p->err, sizeof(p->err), "PostgreSQL: pipeline did not end with its Sync");
		PQclear(res);
		pipe_lose(p); /* left[] holds what was skipped; the rest have answers */
		return;
	}
	PQclear(res);
	if (!PQexitPipelineMode(p->pg))
	{
		pgconn_set_err(p->err, sizeof(p->err), "PostgreSQL: cannot leave pipeline mode: %s", PQerrorMessage(p->pg));
		pipe_lose(p);
		return;
	}
	p->state = DBPOOL_PIPE_SYNCED;
}

/* One step from the current state. */
static void
pipe_step(struct dbpool_pipe *p)
{
	switch (p->state)
	{
		case DBPOOL_PIPE_PLANNED:
			pipe_send(p);
			break;
		case DBPOOL_PIPE_SENT:
			pipe_flush(p);
			break;
		case DBPOOL_PIPE_READING:
			pipe_read_unit(p);
			break;
		case DBPOOL_PIPE_ANSWERED:
			pipe_read_sync(p);
			break;
		default:
			pgconn_set_err(p->err, sizeof(p->err), "pipeline stepped in state %d", (int) p->state);
			pipe_lose(p);
			break;
	}
}

int
dbpool_pipe_run(struct dbpool_worker *w, struct dbpool_job **jobs, size_t n, int64_t deadline)
{
	struct dbpool_pipe *p = &w->pipe;

	p->pg = w->pg;
	pgconn_wait_init(&p->wait, deadline, NULL);
	pipe_plan(p, jobs, n);
	while (p->state != DBPOOL_PIPE_SYNCED && p->state != DBPOOL_PIPE_LOST)
		pipe_step(p);
	pipe_free_owned(p);
	if (p->state == DBPOOL_PIPE_SYNCED)
		return 0;
	dbpool_drop(w);
	return -1;
}
