/*
 * dbpool.c — the http role's PostgreSQL pool (see dbpool.h).
 *
 * Rules: `slots` and `busy` flags are guarded by pool_lock; a thread that got
 * a slot owns its PGconn exclusively until it releases it, so libpq calls run
 * outside the lock.  Connections are non-blocking; every wait is a poll() on
 * PQsocket() bounded by the caller's deadline.  On a connection-level failure
 * or a timeout the PGconn is closed (PQfinish) — a late answer to an abandoned
 * query can never be read as the answer to the next one.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "dbpool.h"
#include "log.h"
#include "metrics.h"

/* The statements, prepared lazily on each connection (bit i = stmts[i]). */
enum stmt_id { ST_PING = 0, ST_GET, ST_GET_MANY, ST_STATS, ST_COUNT };
static const struct
{
	const char *name;
	const char *sql;
	int			nparams;
} stmts[ST_COUNT] = {
	{"sc_ping", "SELECT 1", 0},
	{"sc_get", "SELECT sharecount_get($1::text, $2::text)", 2},
	{"sc_get_many", "SELECT content_id, share_count FROM sharecount_get_many($1::text, $2::text[])", 2},
	{"sc_stats", "SELECT sharecount_stats()::text", 0},
};

struct slot
{
	PGconn	   *pg;
	unsigned	prepared;		/* bitmask of stmts prepared on pg */
	int			busy;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond;
static struct slot *slots;
static int	nslots;
static char *pool_conninfo;

int64_t
dbpool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
dbpool_init(const char *conninfo, int size)
{
	pthread_condattr_t attr;

	if (!conninfo || size < 1)
		return -1;
	slots = calloc(size, sizeof(struct slot));
	pool_conninfo = strdup(conninfo);
	if (!slots || !pool_conninfo)
	{
		free(slots);
		free(pool_conninfo);
		slots = NULL;
		pool_conninfo = NULL;
		return -1;
	}
	nslots = size;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool_cond, &attr);
	pthread_condattr_destroy(&attr);
	metrics_use_conn(SC_CONN_HTTP_PG);
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
	return 0;
}

void
dbpool_shutdown(void)
{
	int			i;

	if (!slots)
		return;
	for (i = 0; i < nslots; i++)
		if (slots[i].pg)
			PQfinish(slots[i].pg);
	free(slots);
	free(pool_conninfo);
	slots = NULL;
	pool_conninfo = NULL;
	nslots = 0;
	pthread_cond_destroy(&pool_cond);
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
}

/*
 * Take a free slot, preferring one that is already connected, waiting on the
 * condvar until the deadline.  NULL when the pool stayed busy (or is closed).
 */
static struct slot *
acquire(int64_t deadline)
{
	struct slot *got = NULL;

	pthread_mutex_lock(&pool_lock);
	while (slots && !got)
	{
		int			i;
		struct timespec ts;
		int64_t		now;

		for (i = 0; i < nslots; i++)
			if (!slots[i].busy && (!got || (!got->pg && slots[i].pg)))
				got = &slots[i];
		if (got)
		{
			got->busy = 1;
			break;
		}
		now = dbpool_now_ms();
		if (now >= deadline)
			break;
		ts.tv_sec = deadline / 1000;
		ts.tv_nsec = (deadline % 1000) * 1000000;
		if (pthread_cond_timedwait(&pool_cond, &pool_lock, &ts) == ETIMEDOUT)
			continue;			/* loop once more: take a slot or see the deadline */
	}
	pthread_mutex_unlock(&pool_lock);
	return got;
}

static void
release(struct slot *s)
{
	pthread_mutex_lock(&pool_lock);
	s->busy = 0;
	pthread_cond_signal(&pool_cond);
	pthread_mutex_unlock(&pool_lock);
}

static void
drop(struct slot *s)
{
	if (s->pg)
		PQfinish(s->pg);
	s->pg = NULL;
	s->prepared = 0;
	metrics_set_conn(SC_CONN_HTTP_PG, 0);
}

/* Wait until pg's socket is readable (or writable); 1 ready, 0 deadline, -1 error. */
static int
wait_socket(PGconn *pg, int for_write, int64_t deadline)
{
	struct pollfd pfd;
	int			rc;

	pfd.fd = PQsocket(pg);
	if (pfd.fd < 0)
		return -1;
	pfd.events = for_write ? POLLOUT : POLLIN;
	for (;;)
	{
		int64_t		left = deadline - dbpool_now_ms();

		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, (int) (left > 1000000 ? 1000000 : left));
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void
set_err(char *err, size_t errlen, const char *what, const char *detail)
{
	size_t		n;

	char	   *p;

	snprintf(err, errlen, "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
	/* libpq messages span lines; the log wants one line per event */
	for (p = err; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

/* Connect s->pg with PQconnectStart/PQconnectPoll, bounded by the deadline. */
static int
connect_slot(struct slot *s, int64_t deadline, char *err, size_t errlen)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn	   *pg = PQconnectStart(pool_conninfo);

	if (!pg)
	{
		set_err(err, errlen, "cannot connect to PostgreSQL", "out of memory");
		return DB_UNAVAILABLE;
	}
	s->pg = pg;
	s->prepared = 0;
	if (PQstatus(pg) == CONNECTION_BAD)
	{
		set_err(err, errlen, "cannot connect to PostgreSQL", PQerrorMessage(pg));
		drop(s);
		return DB_UNAVAILABLE;
	}
	while (st != PGRES_POLLING_OK)
	{
		int			w;

		if (st == PGRES_POLLING_FAILED)
		{
			set_err(err, errlen, "cannot connect to PostgreSQL", PQerrorMessage(pg));
			drop(s);
			return DB_UNAVAILABLE;
		}
		w = wait_socket(pg, st == PGRES_POLLING_WRITING, deadline);
		if (w <= 0)
		{
			set_err(err, errlen, "cannot connect to PostgreSQL", w == 0 ? "timed out" : "poll failed");
			drop(s);
			return DB_UNAVAILABLE;
		}
		st = PQconnectPoll(pg);
	}
	if (PQsetnonblocking(pg, 1) != 0)
	{
		set_err(err, errlen, "cannot connect to PostgreSQL", PQerrorMessage(pg));
		drop(s);
		return DB_UNAVAILABLE;
	}
	metrics_set_conn(SC_CONN_HTTP_PG, 1);
	return DB_OK;
}

/*
 * Send what libpq buffered, then read until the command's results are all in;
 * returns the last result (the caller clears it) or NULL with *rc set.
 */
static PGresult *
finish_command(struct slot *s, int64_t deadline, int *rc, char *err, size_t errlen)
{
	PGconn	   *pg = s->pg;
	PGresult   *res, *last = NULL;
	int			f, w;

	while ((f = PQflush(pg)) == 1)
	{
		w = wait_socket(pg, 1, deadline);
		if (w <= 0)
			goto lost;
	}
	if (f < 0)
		goto lost;
	for (;;)
	{
		while (PQisBusy(pg))
		{
			w = wait_socket(pg, 0, deadline);
			if (w <= 0)
			{
				set_err(err, errlen, "PostgreSQL query", w == 0 ? "timed out" : "poll failed");
				goto fail;
			}
			if (!PQconsumeInput(pg))
				goto lost;
		}
		res = PQgetResult(pg);
		if (!res)
			break;
		if (last)
			PQclear(last);
		last = res;
	}
	if (!last)
		goto lost;
	if (PQstatus(pg) == CONNECTION_BAD)
	{
		PQclear(last);
		goto lost;
	}
	*rc = DB_OK;
	return last;

lost:
	set_err(err, errlen, "PostgreSQL connection lost", PQerrorMessage(pg));
fail:
	if (last)
		PQclear(last);
	drop(s);
	*rc = DB_UNAVAILABLE;
	return NULL;
}

/*
 * Classify a finished result.  SQLSTATE class 08 (connection exception) and
 * 57P (operator intervention: shutdown, cannot connect now) mean the server is
 * going away — unavailable, and the connection is dropped; any other error is
 * an SQL error the client cannot fix by retrying.
 */
static int
check_result(struct slot *s, PGresult *res, ExecStatusType want, char *err, size_t errlen)
{
	const char *state;

	if (PQresultStatus(res) == want)
		return DB_OK;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	set_err(err, errlen, "PostgreSQL error", PQresultErrorMessage(res));
	if (!state || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
	{
		drop(s);
		return DB_UNAVAILABLE;
	}
	return DB_ERROR;
}

/* Run one prepared statement on the slot (preparing it first if needed). */
static PGresult *
run_on(struct slot *s, enum stmt_id id, const char *const *params, int64_t deadline,
	   int *rc, char *err, size_t errlen)
{
	PGresult   *res;

	if (!(s->prepared & (1u << id)))
	{
		if (!PQsendPrepare(s->pg, stmts[id].name, stmts[id].sql, stmts[id].nparams, NULL))
		{
			set_err(err, errlen, "PostgreSQL connection lost", PQerrorMessage(s->pg));
			drop(s);
			*rc = DB_UNAVAILABLE;
			return NULL;
		}
		res = finish_command(s, deadline, rc, err, errlen);
		if (!res)
			return NULL;
		*rc = check_result(s, res, PGRES_COMMAND_OK, err, errlen);
		PQclear(res);
		if (*rc != DB_OK)
			return NULL;
		s->prepared |= 1u << id;
	}
	if (!PQsendQueryPrepared(s->pg, stmts[id].name, stmts[id].nparams, params, NULL, NULL, 0))
	{
		set_err(err, errlen, "PostgreSQL connection lost", PQerrorMessage(s->pg));
		drop(s);
		*rc = DB_UNAVAILABLE;
		return NULL;
	}
	res = finish_command(s, deadline, rc, err, errlen);
	if (!res)
		return NULL;
	*rc = check_result(s, res, PGRES_TUPLES_OK, err, errlen);
	if (*rc != DB_OK)
	{
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * Take a slot, connect it if needed, run the statement.  A pooled connection
 * may have died while idle (PostgreSQL restarted): then the first use fails
 * with "connection lost", so one retry on a fresh connection follows, within
 * the same deadline.  The slot is released before returning; the result (or
 * NULL with *rc) is the caller's.
 */
static PGresult *
run(enum stmt_id id, const char *const *params, int64_t deadline, int *rc, char *err, size_t errlen)
{
	struct slot *s = acquire(deadline);
	PGresult   *res = NULL;
	int			attempt;

	if (!s)
	{
		set_err(err, errlen, "no PostgreSQL connection free in the http pool", NULL);
		*rc = DB_UNAVAILABLE;
		return NULL;
	}
	for (attempt = 0; attempt < 2; attempt++)
	{
		int			reused = s->pg != NULL;

		if (!s->pg && (*rc = connect_slot(s, deadline, err, errlen)) != DB_OK)
			break;
		res = run_on(s, id, params, deadline, rc, err, errlen);
		if (res || *rc != DB_UNAVAILABLE || !reused || dbpool_now_ms() >= deadline)
			break;
		log_debug("http: pooled PostgreSQL connection was lost (%s); reconnecting", err);
	}
	if (res)
		metrics_set_conn(SC_CONN_HTTP_PG, 1);
	release(s);
	return res;
}

int
db_ping(int64_t deadline, char *err, size_t errlen)
{
	int			rc;
	PGresult   *res = run(ST_PING, NULL, deadline, &rc, err, errlen);

	if (res)
		PQclear(res);
	return rc;
}

int
db_get_count(const char *type, const char *id, int64_t *count, int64_t deadline,
			 char *err, size_t errlen)
{
	const char *params[2] = {type, id};
	int			rc;
	PGresult   *res = run(ST_GET, params, deadline, &rc, err, errlen);

	if (!res)
		return rc;
	if (PQntuples(res) != 1 || PQnfields(res) != 1)
	{
		set_err(err, errlen, "sharecount_get returned an unexpected shape", NULL);
		PQclear(res);
		return DB_ERROR;
	}
	*count = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return DB_OK;
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

int
db_get_many(const char *type, char *const *ids, size_t n, int64_t *counts,
			int64_t deadline, char *err, size_t errlen)
{
	char	   *arr = db_text_array_literal(ids, n);
	const char *params[2] = {type, arr};
	int			rc;
	size_t		i;
	PGresult   *res;

	if (!arr)
	{
		set_err(err, errlen, "out of memory", NULL);
		return DB_ERROR;
	}
	res = run(ST_GET_MANY, params, deadline, &rc, err, errlen);
	free(arr);
	if (!res)
		return rc;
	/* one row per asked id, in order (SPEC §4); check rather than trust */
	if ((size_t) PQntuples(res) != n || PQnfields(res) != 2)
	{
		set_err(err, errlen, "sharecount_get_many returned an unexpected number of rows", NULL);
		PQclear(res);
		return DB_ERROR;
	}
	for (i = 0; i < n; i++)
	{
		if (strcmp(PQgetvalue(res, (int) i, 0), ids[i]) != 0)
		{
			set_err(err, errlen, "sharecount_get_many returned rows out of order", NULL);
			PQclear(res);
			return DB_ERROR;
		}
		counts[i] = PQgetisnull(res, (int) i, 1) ? 0 : strtoll(PQgetvalue(res, (int) i, 1), NULL, 10);
	}
	PQclear(res);
	return DB_OK;
}

int
db_stats(char **json, int64_t deadline, char *err, size_t errlen)
{
	int			rc;
	PGresult   *res = run(ST_STATS, NULL, deadline, &rc, err, errlen);

	if (!res)
		return rc;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
	{
		set_err(err, errlen, "sharecount_stats returned nothing", NULL);
		PQclear(res);
		return DB_ERROR;
	}
	*json = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!*json)
	{
		set_err(err, errlen, "out of memory", NULL);
		return DB_ERROR;
	}
	return DB_OK;
}
