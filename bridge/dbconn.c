/*
 * dbconn.c — bounded, non-blocking libpq calls (see dbconn.h), shared by the
 * http role's database workers (dbpool.c) and its replica check (readsrc.c).
 *
 * Rules: nothing here keeps state; every wait is a poll() on PQsocket()
 * bounded by the caller's absolute deadline (dbpool_now_ms() clock).  The
 * caller owns the PGconn and closes it (PQfinish) after any failure, so a
 * late answer can never be read as another query's.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dbconn.h"
#include "dbpool.h"
#include "log.h"

void
db_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list		ap;
	char	   *p;
	size_t		n;

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


/*
 * Wait until pg's socket is ready; 1 ready, 0 deadline, -1 error.  While
 * flushing (DB_WAIT_FLUSH), incoming data is read into libpq's buffer, so a large
 * pipeline cannot deadlock with the server blocked on writing its answers.
 */
int
db_wait_socket(PGconn *pg, enum db_wait what, int64_t deadline)
{
	struct pollfd pfd;
	int			for_write = what == DB_WAIT_FLUSH;

	pfd.fd = PQsocket(pg);
	if (pfd.fd < 0)
		return -1;
	pfd.events = what == DB_WAIT_READ ? POLLIN : what == DB_WAIT_WRITE ? POLLOUT : (POLLOUT | POLLIN);
	for (;;)
	{
		int64_t		left = deadline - dbpool_now_ms();
		int			rc;

		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, (int) (left > 60000 ? 60000 : left));
		if (rc > 0)
		{
			if (for_write && (pfd.revents & POLLIN) && !(pfd.revents & POLLOUT))
			{
				if (!PQconsumeInput(pg))
					return -1;
				continue;
			}
			return 1;
		}
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* Flush libpq's output buffer; 0 done, -1 failed or timed out (err set). */
int
db_flush_all(PGconn *pg, int64_t deadline, char *err, size_t errlen)
{
	int			f;

	while ((f = PQflush(pg)) == 1)
	{
		int			r = db_wait_socket(pg, DB_WAIT_FLUSH, deadline);

		if (r <= 0)
		{
			db_set_err(err, errlen, "PostgreSQL: %s", r == 0 ? "timed out sending" : "connection lost");
			return -1;
		}
	}
	if (f < 0)
	{
		db_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
		return -1;
	}
	return 0;
}

/* The next result (possibly NULL, the end of one query's results); *ok=0 on failure. */
PGresult *
db_next_result(PGconn *pg, int64_t deadline, int *ok, char *err, size_t errlen)
{
	while (PQisBusy(pg))
	{
		int			r = db_wait_socket(pg, DB_WAIT_READ, deadline);

		if (r <= 0)
		{
			db_set_err(err, errlen, "PostgreSQL: %s", r == 0 ? "query timed out" : "connection lost");
			*ok = 0;
			return NULL;
		}
		if (!PQconsumeInput(pg))
		{
			db_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
			*ok = 0;
			return NULL;
		}
	}
	*ok = 1;
	return PQgetResult(pg);
}

/*
 * Is this error result the server going away?  SQLSTATE class 08 (connection
 * exception) and 57P (admin shutdown, crash shutdown, cannot connect now) are:
 * the job is unavailable, not failed, and the connection is dropped.
 */
int
db_is_conn_error(PGconn *pg, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return PQstatus(pg) == CONNECTION_BAD || !state ||
		strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0;
}

/*
 * Server notices (e.g. "terminating connection due to immediate shutdown")
 * go to the log as one line with its level, not raw to stderr (libpq's
 * default processor).
 */
static void
db_notice_to_log(void *arg, const char *message)
{
	size_t		n = strlen(message);

	(void) arg;
	while (n && message[n - 1] == '\n')
		n--;
	log_warn("http: server: %.*s", (int) n, message);
}

/* Connect with PQconnectStartParams/PQconnectPoll, bounded by the deadline. */
PGconn *
db_connect(const char *conninfo, const char *appname, int64_t deadline, char *err, size_t errlen)
{
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const vals[] = {conninfo, appname, NULL};
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn	   *pg = PQconnectStartParams(keys, vals, 1);

	if (!pg)
	{
		db_set_err(err, errlen, "cannot connect to PostgreSQL: out of memory");
		return NULL;
	}
	if (PQstatus(pg) == CONNECTION_BAD)
		st = PGRES_POLLING_FAILED;
	/* before the first poll: a notice can arrive while connecting */
	PQsetNoticeProcessor(pg, db_notice_to_log, NULL);
	while (st != PGRES_POLLING_OK)
	{
		int			r;

		if (st == PGRES_POLLING_FAILED)
		{
			db_set_err(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
			PQfinish(pg);
			return NULL;
		}
		r = db_wait_socket(pg, st == PGRES_POLLING_WRITING ? DB_WAIT_WRITE : DB_WAIT_READ, deadline);
		if (r <= 0)
		{
			db_set_err(err, errlen, "cannot connect to PostgreSQL: %s", r == 0 ? "timed out" : "poll failed");
			PQfinish(pg);
			return NULL;
		}
		st = PQconnectPoll(pg);
	}
	if (PQsetnonblocking(pg, 1) != 0)
	{
		db_set_err(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

/*
 * Run one statement without parameters (PQsendQuery) and return its last
 * result, caller PQclear()s; NULL (err set) when the connection failed or
 * the deadline passed.
 */
PGresult *
db_query(PGconn *pg, const char *sql, int64_t deadline, char *err, size_t errlen)
{
	PGresult   *last = NULL, *res;
	int			ok;

	if (!PQsendQuery(pg, sql))
	{
		db_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
		return NULL;
	}
	if (db_flush_all(pg, deadline, err, errlen) < 0)
		return NULL;
	while ((res = db_next_result(pg, deadline, &ok, err, errlen)) != NULL)
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
		db_set_err(err, errlen, "PostgreSQL connection lost: %s", PQerrorMessage(pg));
	return last;
}
