/*
 * pgconn.c — the bridge's one PostgreSQL layer (see pgconn.h).
 *
 * Rules: no state here but the caller's struct pgconn_wait; every wait is
 * pgconn_wait_socket, a poll() on PQsocket() in slices no longer than the
 * deadline allows (PGCONN_SLICE_MS when heartbeats or stop requests are
 * watched), sending a heartbeat on w->hb whenever PGCONN_HEARTBEAT_MS has
 * passed.  Errors are returned as one line in the caller's buffer; only the
 * role-thread helpers (pgconn_open, pgconn_command) log, since they are the
 * whole operation for their callers.  Server notices are logged, one line
 * each.  Session settings are pinned in pin_session and nowhere else.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "amqp.h"
#include "bridge.h"
#include "log.h"
#include "pgconn.h"

/* Run once per PGCONN_DURABLE session: returns the synchronous_commit in effect. */
#define PIN_DURABILITY_SQL \
	"SELECT CASE WHEN current_setting('synchronous_commit') = 'remote_apply' THEN 'remote_apply' " \
	"ELSE set_config('synchronous_commit', 'on', false) END"

/* What pgconn_wait_socket waits for. */
enum wait_io
{
	WAIT_READ,
	WAIT_WRITE,
	WAIT_FLUSH /* writable; incoming data is read into libpq's buffer meanwhile */
};

/* What pgconn_wait_socket returns. */
enum wait_rc
{
	WAIT_READY = 1,
	WAIT_TIMEOUT = 0,
	WAIT_FAILED = -1,
	WAIT_STOPPING = -2
};

void
pgconn_wait_init(struct pgconn_wait *w, int64_t deadline, struct sc_amqp *hb)
{
	w->deadline = deadline;
	w->hb = hb;
	w->stop_on_signal = 0;
	w->next_hb = clock_now_ms() + PGCONN_HEARTBEAT_MS;
}

void
pgconn_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	char *p;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* libpq messages span lines; the log wants one line per event */
	for (p = err; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	n = strlen(err);
	while (n > 0 && err[n - 1] == ' ')
		err[--n] = '\0';
}

/* A long wait on PostgreSQL: keep the broker from dropping w->hb's connection. */
static void
keep_alive(struct pgconn_wait *w, int64_t now)
{
	if (!w->hb || !w->hb->conn || now < w->next_hb)
		return;
	if (w->hb->cfg->heartbeat_s > 0)
		sc_amqp_heartbeat(w->hb);
	w->next_hb = clock_now_ms() + PGCONN_HEARTBEAT_MS;
}

/* The longest poll() now: to the deadline, in slices when something is watched. */
static int
slice_ms(const struct pgconn_wait *w, int64_t left)
{
	int64_t cap = (w->hb || w->stop_on_signal) ? PGCONN_SLICE_MS : 60000;

	return (int) (left > cap ? cap : left);
}

/*
 * Wait until pg's socket is ready for io (enum wait_rc).  While flushing,
 * incoming data is read into libpq's buffer, so a large pipeline cannot
 * deadlock with the server blocked on writing its answers.
 */
static enum wait_rc
wait_socket(PGconn *pg, enum wait_io io, struct pgconn_wait *w)
{
	struct pollfd pfd = {PQsocket(pg), 0, 0};

	if (pfd.fd < 0)
		return WAIT_FAILED;
	pfd.events = io == WAIT_READ ? POLLIN : io == WAIT_WRITE ? POLLOUT : (POLLOUT | POLLIN);
	for (;;)
	{
		int64_t now = clock_now_ms();
		int rc;

		keep_alive(w, now);
		if (w->stop_on_signal && sc_stop)
			return WAIT_STOPPING;
		if (now >= w->deadline)
			return WAIT_TIMEOUT;
		rc = poll(&pfd, 1, slice_ms(w, w->deadline - now));
		if (rc > 0)
		{
			if (io == WAIT_FLUSH && (pfd.revents & POLLIN) && !(pfd.revents & POLLOUT))
			{
				if (!PQconsumeInput(pg))
					return WAIT_FAILED;
				continue;
			}
			return WAIT_READY;
		}
		if (rc < 0 && errno != EINTR)
			return WAIT_FAILED;
	}
}

static const char *
wait_failure(enum wait_rc rc)
{
	return rc == WAIT_TIMEOUT ? "timed out" : rc == WAIT_STOPPING ? "stopping" : "connection lost";
}

int
pgconn_flush(PGconn *pg, struct pgconn_wait *w, char *err, size_t errlen)
{
	int f;

	while ((f = PQflush(pg)) == 1)
	{
		enum wait_rc r = wait_socket(pg, WAIT_FLUSH, w);

		if (r != WAIT_READY)
		{
			pgconn_set_err(err, errlen, "PostgreSQL: %s sending", wait_failure(r));
			return -1;
		}
	}
	if (f < 0)
	{
		pgconn_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
		return -1;
	}
	return 0;
}

PGresult *
pgconn_next_result(PGconn *pg, struct pgconn_wait *w, int *ok, char *err, size_t errlen)
{
	*ok = 0;
	while (PQisBusy(pg))
	{
		enum wait_rc r = wait_socket(pg, WAIT_READ, w);

		if (r != WAIT_READY)
		{
			pgconn_set_err(err, errlen, "PostgreSQL: %s waiting for an answer", wait_failure(r));
			return NULL;
		}
		if (!PQconsumeInput(pg))
		{
			pgconn_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
			return NULL;
		}
	}
	*ok = 1;
	return PQgetResult(pg);
}

/* The statement just sent: flush it, then read its results; the last one (caller clears), or NULL with err. */
static PGresult *
last_result(PGconn *pg, struct pgconn_wait *w, char *err, size_t errlen)
{
	PGresult *last = NULL, *res;
	int ok;

	if (pgconn_flush(pg, w, err, errlen) < 0)
		return NULL;
	while ((res = pgconn_next_result(pg, w, &ok, err, errlen)) != NULL)
	{
		PQclear(last);
		last = res;
	}
	if (!ok)
	{
		PQclear(last);
		return NULL;
	}
	if (!last)
		pgconn_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
	return last;
}

/* The result of a send call (PQsendQueryParams...): sent is its return value. */
static PGresult *
sent_result(PGconn *pg, int sent, struct pgconn_wait *w, char *err, size_t errlen)
{
	if (!sent)
	{
		pgconn_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
		return NULL;
	}
	return last_result(pg, w, err, errlen);
}

PGresult *
pgconn_exec(PGconn *pg, const char *sql, int nparams, const char *const *params, struct pgconn_wait *w, char *err,
			size_t errlen)
{
	return sent_result(pg, PQsendQueryParams(pg, sql, nparams, NULL, params, NULL, NULL, 0), w, err, errlen);
}

/* ------------------------------------------------- prepared statements -- */

/* SQLSTATEs after which a prepared statement is prepared again (pgconn_exec_prepared). */
#define PREP_GONE "26000"	 /* invalid_sql_statement_name: the server does not have it */
#define PREP_CHANGED "0A000" /* "cached plan must not change result type" */
#define PREP_EXISTS "42P05"	 /* duplicate_prepared_statement */

static int
sqlstate_is(const PGresult *r, const char *st)
{
	const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return s && strcmp(s, st) == 0;
}

/*
 * Prepare st on pg (DEALLOCATE first if it is stale): NULL when it is ready
 * (or the connection broke, err set: *lost = 1), else the failed result.
 */
static PGresult *
prepare(PGconn *pg, const struct pgconn_stmt *st, struct pgconn_prep *prep, struct pgconn_wait *w, int *lost, char *err,
		size_t errlen)
{
	PGresult *r;

	*lost = 0;
	if (prep->stale & st->bit)
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
		r = pgconn_exec(pg, sql, 0, NULL, w, err, errlen);
		if (!r)
			return *lost = 1, NULL;
		if (PQresultStatus(r) != PGRES_COMMAND_OK && !sqlstate_is(r, PREP_GONE))
			return r; /* e.g. 25P02, the transaction is aborted */
		PQclear(r);
		prep->stale &= ~st->bit;
	}
	r = sent_result(pg, PQsendPrepare(pg, st->name, st->sql, st->nparams, NULL), w, err, errlen);
	if (!r)
		return *lost = 1, NULL;
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		if (sqlstate_is(r, PREP_EXISTS))
			prep->stale |= st->bit; /* deallocated at the next try */
		return r;
	}
	PQclear(r);
	prep->ready |= st->bit;
	return NULL;
}

PGresult *
pgconn_exec_prepared(PGconn *pg, const struct pgconn_stmt *st, struct pgconn_prep *prep, const char *const *params,
					 struct pgconn_wait *w, char *err, size_t errlen)
{
	for (int again = 1;; again = 0)
	{
		PGresult *r;
		int lost = 0;

		if (!(prep->ready & st->bit) && ((r = prepare(pg, st, prep, w, &lost, err, errlen)) != NULL || lost))
			return r;
		r = sent_result(pg, PQsendQueryPrepared(pg, st->name, st->nparams, params, NULL, NULL, 0), w, err, errlen);
		if (!sqlstate_is(r, PREP_GONE) && !sqlstate_is(r, PREP_CHANGED))
			return r;
		prep->ready &= ~st->bit;
		if (sqlstate_is(r, PREP_CHANGED))
			prep->stale |= st->bit;
		if (!again || PQtransactionStatus(pg) != PQTRANS_IDLE)
			return r;
		pgconn_error(pg, r, err, errlen);
		log_info("prepared statement %s: %s; preparing it again", st->name, err);
		PQclear(r);
	}
}

/* ------------------------------------------------------------ connecting -- */

/*
 * libpq prints notices (and the FATAL message of a dying backend) to stderr
 * by default; route them through the log as one line each.
 */
static void
notice_to_log(void *arg, const char *message)
{
	size_t n = strlen(message);

	(void) arg;
	while (n && message[n - 1] == '\n')
		n--;
	log_warn("server: %.*s", (int) n, message);
}

/*
 * The session settings, pinned here only.  PGCONN_DURABLE: commits durable
 * whatever the database or role default — synchronous_commit = on, unless it
 * is already remote_apply (stronger: kept); a session-level setting
 * overrides ALTER DATABASE / ALTER ROLE.  0, or -1 with err.
 */
static int
pin_session(PGconn *pg, unsigned opts, struct pgconn_wait *w, char *err, size_t errlen)
{
	PGresult *r;
	const char *v;
	int rc = -1;

	if (!(opts & PGCONN_DURABLE))
		return 0;
	r = pgconn_exec(pg, PIN_DURABILITY_SQL, 0, NULL, w, err, errlen);
	if (!r)
		return -1;
	v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : NULL;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		pgconn_error(pg, r, err, errlen);
	else if (!v || (strcmp(v, "on") && strcmp(v, "remote_apply")))
		pgconn_set_err(err, errlen, "synchronous_commit is \"%s\" after pinning it", v ? v : "?");
	else
		rc = 0;
	PQclear(r);
	return rc;
}

/* Drive PQconnectPoll to the end within w; 0, or -1 with err. */
static int
poll_connect(PGconn *pg, struct pgconn_wait *w, char *err, size_t errlen)
{
	PostgresPollingStatusType st = PQstatus(pg) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;

	while (st != PGRES_POLLING_OK)
	{
		enum wait_rc r;

		if (st == PGRES_POLLING_FAILED)
		{
			pgconn_set_err(err, errlen, "%s", PQerrorMessage(pg));
			return -1;
		}
		r = wait_socket(pg, st == PGRES_POLLING_WRITING ? WAIT_WRITE : WAIT_READ, w);
		if (r != WAIT_READY)
		{
			pgconn_set_err(err, errlen, "%s", r == WAIT_FAILED ? "poll failed" : wait_failure(r));
			return -1;
		}
		st = PQconnectPoll(pg);
	}
	if (PQsetnonblocking(pg, 1) != 0)
	{
		pgconn_set_err(err, errlen, "%s", PQerrorMessage(pg));
		return -1;
	}
	return 0;
}

PGconn *
pgconn_connect(const char *conninfo, const char *appname, unsigned opts, struct pgconn_wait *w, char *err,
			   size_t errlen)
{
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const vals[] = {conninfo, appname, NULL};
	PGconn *pg = PQconnectStartParams(keys, vals, 1);
	char why[PGCONN_ERRLEN];

	if (!pg)
	{
		pgconn_set_err(err, errlen, "cannot connect to PostgreSQL: out of memory");
		return NULL;
	}
	/* before the first poll: a notice can arrive while connecting */
	PQsetNoticeProcessor(pg, notice_to_log, NULL);
	if (poll_connect(pg, w, why, sizeof(why)) < 0 || pin_session(pg, opts, w, why, sizeof(why)) < 0)
	{
		pgconn_set_err(err, errlen, "cannot connect to PostgreSQL: %s", why);
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

/* ---------------------------------------------------------------- errors -- */

enum pgconn_class
pgconn_classify(PGconn *pg, const PGresult *res)
{
	const char *st;

	if (res)
	{
		ExecStatusType s = PQresultStatus(res);

		if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_PIPELINE_SYNC)
			return PGCONN_OK;
	}
	if (!res || PQstatus(pg) != CONNECTION_OK)
		return PGCONN_LOST;
	st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (!st)
		return PGCONN_CLIENT;
	if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0)
		return PGCONN_AWAY;
	return PGCONN_SQL;
}

int
pgconn_away(PGconn *pg, const PGresult *res)
{
	enum pgconn_class c = pgconn_classify(pg, res);

	return c == PGCONN_LOST || c == PGCONN_AWAY;
}

int
pgconn_fn_unusable(const PGresult *r, const char *fn, const char *instead, int recheck_ms, int64_t *retry_ms)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (!st || (strcmp(st, "42883") != 0 && strcmp(st, "42501") != 0))
		return 0;
	log_warn("%s() cannot be called (%s): %s, trying again in %d s "
			 "(run ALTER EXTENSION sharecount UPDATE, and GRANT EXECUTE on it to this role)",
			 fn, st, instead, recheck_ms / 1000);
	*retry_ms = clock_now_ms() + recheck_ms;
	return 1;
}

const char *
pgconn_error(PGconn *pg, const PGresult *res, char *buf, size_t len)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL,
			   *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *nl;

	if (!msg)
		msg = PQerrorMessage(pg);
	if (!msg || !*msg)
		msg = res ? PQresStatus(PQresultStatus(res)) : "connection lost";
	nl = strchr(msg, '\n');
	snprintf(buf, len, "%s%s%.*s", st ? st : "", st ? ": " : "", nl ? (int) (nl - msg) : (int) strlen(msg), msg);
	return buf;
}

/* ---------------------------------------------------------- role threads -- */

PGconn *
pgconn_open(const char *conninfo, const char *appname, struct sc_amqp *hb)
{
	struct pgconn_wait w;
	char err[PGCONN_ERRLEN];
	PGconn *pg;

	pgconn_wait_init(&w, clock_now_ms() + PGCONN_CONNECT_MS, hb);
	w.stop_on_signal = 1;
	pg = pgconn_connect(conninfo, appname, PGCONN_DURABLE, &w, err, sizeof(err));
	if (!pg)
		log_warn("%s", err);
	return pg;
}

PGresult *
pgconn_run(PGconn *pg, const char *sql, int nparams, const char *const *params, struct sc_amqp *hb)
{
	struct pgconn_wait w;
	char err[PGCONN_ERRLEN];

	pgconn_wait_init(&w, PGCONN_FOREVER, hb);
	return pgconn_exec(pg, sql, nparams, params, &w, err, sizeof(err));
}

PGresult *
pgconn_run_prepared(PGconn *pg, const struct pgconn_stmt *st, struct pgconn_prep *prep, const char *const *params,
					struct sc_amqp *hb)
{
	struct pgconn_wait w;
	char err[PGCONN_ERRLEN];

	pgconn_wait_init(&w, PGCONN_FOREVER, hb);
	return pgconn_exec_prepared(pg, st, prep, params, &w, err, sizeof(err));
}

int
pgconn_command(PGconn *pg, const char *sql, struct sc_amqp *hb)
{
	PGresult *r = pgconn_run(pg, sql, 0, NULL, hb);
	char buf[PGCONN_ERRLEN];

	if (pgconn_classify(pg, r) == PGCONN_OK)
	{
		PQclear(r);
		return 0;
	}
	log_warn("%s: %s", sql, pgconn_error(pg, r, buf, sizeof(buf)));
	PQclear(r);
	return -1;
}
