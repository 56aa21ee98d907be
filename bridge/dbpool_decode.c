/*
 * dbpool_decode.c — the pool's encoding and decoding (see dbpool_int.h):
 * results into jobs' outputs, the coalesced read's distinct keys, and text[]
 * literals for array parameters.
 *
 * Rules: pure functions of their arguments, no state; the shape of every
 * result is checked, not trusted (a wrong shape is DBPOOL_ERROR with the
 * job's err set).  Only dbpool_text_array_literal and the stats text
 * allocate, and the caller frees.
 */
#include <stdlib.h>
#include <string.h>

#include "dbpool_int.h"

/* A single count's key while the coalesced read's distinct keys are found. */
struct keyref
{
	const char *type;
	const char *id;
	size_t job; /* index into the unit's jobs */
};

/* A bigint column, NULL read as 0. */
static int64_t
count_at(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A version column (the versioned statements' last): NULL (the fallback) read as -1, unknown. */
static int64_t
version_at(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? -1 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int
job_error(struct dbpool_job *job, const char *what)
{
	pgconn_set_err(job->err, sizeof(job->err), "%s", what);
	return DBPOOL_ERROR;
}

/*
 * DBPOOL_GET_MANY: one row per asked id, in order (docs/sql.md,
 * "sharecount_get_many"); checked rather than trusted.
 */
static int
take_many(struct dbpool_job *job, const PGresult *res)
{
	size_t i;

	if ((size_t) PQntuples(res) != job->nids || PQnfields(res) != 2)
	{
		pgconn_set_err(job->err, sizeof(job->err), "sharecount_get_many returned %d rows for %zu ids", PQntuples(res),
					   job->nids);
		return DBPOOL_ERROR;
	}
	for (i = 0; i < job->nids; i++)
	{
		if (strcmp(PQgetvalue(res, (int) i, 0), job->ids[i]) != 0)
			return job_error(job, "sharecount_get_many returned rows out of order");
		job->counts[i] = count_at(res, (int) i, 1);
	}
	return DBPOOL_OK;
}

int
dbpool_take_result(struct dbpool_job *job, PGresult *res)
{
	switch (job->kind)
	{
		case DBPOOL_PING:
			return DBPOOL_OK;
		case DBPOOL_GET:
			if (PQntuples(res) != 1 || PQnfields(res) < 1 || PQnfields(res) > 2)
				return job_error(job, "sharecount_get returned an unexpected shape");
			job->count = count_at(res, 0, 0);
			job->version = PQnfields(res) == 2 ? version_at(res, 0, 1) : -1;
			return DBPOOL_OK;
		case DBPOOL_GET_MANY:
			return take_many(job, res);
		case DBPOOL_STATS:
			if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
				return job_error(job, "sharecount_stats returned nothing");
			job->stats = strdup(PQgetvalue(res, 0, 0));
			return job->stats ? DBPOOL_OK : job_error(job, "out of memory");
		default:
			return job_error(job, "unknown job kind");
	}
}

int
dbpool_take_batch_result(const struct dbpool_unit *u, PGresult *res)
{
	size_t i;
	int nf = PQnfields(res);

	if ((size_t) PQntuples(res) != u->nkeys || (nf != 1 && nf != 2))
	{
		for (i = 0; i < u->n; i++)
			pgconn_set_err(u->jobs[i]->err, sizeof(u->jobs[i]->err),
						   "coalesced sharecount_get returned %d rows for %zu keys", PQntuples(res), u->nkeys);
		return DBPOOL_ERROR;
	}
	for (i = 0; i < u->n; i++)
	{
		u->jobs[i]->count = count_at(res, (int) u->key_of[i], 0);
		u->jobs[i]->version = nf == 2 ? version_at(res, (int) u->key_of[i], 1) : -1;
	}
	return DBPOOL_OK;
}

static int
keyref_cmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c = strcmp(x->id, y->id);

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
size_t
dbpool_distinct_keys(struct dbpool_job *const *jobs, size_t n, char **types, char **ids, size_t *key_of)
{
	struct keyref refs[DBPOOL_BATCH_MAX];
	size_t i, nkeys = 0;

	for (i = 0; i < n; i++)
		refs[i] = (struct keyref){jobs[i]->type, jobs[i]->id, i};
	qsort(refs, n, sizeof(refs[0]), keyref_cmp);
	for (i = 0; i < n; i++)
	{
		if (i == 0 || strcmp(refs[i].id, refs[i - 1].id) != 0 || strcmp(refs[i].type, refs[i - 1].type) != 0)
		{
			/* dbpool_text_array_literal only reads the strings */
			types[nkeys] = (char *) refs[i].type;
			ids[nkeys] = (char *) refs[i].id;
			nkeys++;
		}
		key_of[refs[i].job] = nkeys - 1;
	}
	return nkeys;
}

char *
dbpool_text_array_literal(char *const *items, size_t n)
{
	size_t len = 3, i, o = 0;
	char *out;

	for (i = 0; i < n; i++)
	{
		const char *p;

		len += 3; /* quotes and comma */
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
