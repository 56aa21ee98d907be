/*
 * pg.c — PostgreSQL helpers (see pg.h).
 *
 * Rules: errors are logged by the callers, which know what they were doing;
 * sc_pg_connect logs its own failure (with the conninfo redacted).  Every
 * session sc_pg_connect opens (consumer and publisher) has its commits
 * durable before they return: synchronous_commit is pinned (see
 * sc_pg_connect and docs/bridge.md "Durability"), so the consumer never acks
 * a job whose commit could still be lost.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "log.h"
#include "pg.h"

/* libpq prints notices (and FATAL messages of a dying backend) to stderr by
 * default; route them through the log as one line each. */
static void
notice_to_log(void *arg, const char *message)
{
	const char *who = arg;
	size_t		n = strlen(message);

	while (n && message[n - 1] == '\n')
		n--;
	log_warn("%s: server: %.*s", who, (int) n, message);
}

/*
 * Make this session's commits durable whatever the database or role default:
 * synchronous_commit = on, unless it is already remote_apply (stronger: kept).
 * A session-level SET overrides ALTER DATABASE / ALTER ROLE settings.  NULL,
 * or why it failed (in buf).
 */
static const char *
pin_durability(PGconn *c, struct sc_amqp *hb, char *buf, size_t len)
{
	PGresult   *r = sc_pg_exec(c, SC_PG_PIN_DURABILITY_SQL, 0, NULL, hb);
	const char *why = NULL;

	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
		why = sc_pg_error(c, r, buf, len);
	else if (PQntuples(r) != 1 || (strcmp(PQgetvalue(r, 0, 0), "on") && strcmp(PQgetvalue(r, 0, 0), "remote_apply")))
	{
		snprintf(buf, len, "synchronous_commit is \"%s\" after pinning it", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "?");
		why = buf;
	}
	PQclear(r);
	return why;
}

/*
 * Connect with the non-blocking API (PQconnectStartParams/PQconnectPoll), so
 * that an unreachable server (SYNs dropped: up to connect_timeout) never
 * keeps this thread from sending AMQP heartbeats on hb.
 */
PGconn *
sc_pg_connect(const char *conninfo, const char *appname, const char *who, struct sc_amqp *hb)
{
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const vals[] = {conninfo, appname, NULL};
	PGconn	   *c = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	long long	deadline = sc_now_ms() + 10000;
	long long	next_hb = sc_now_ms() + 1000;
	char		buf[512];
	const char *why = NULL;

	if (!c)
		why = "out of memory";
	else if (PQstatus(c) == CONNECTION_BAD)
		st = PGRES_POLLING_FAILED;
	/* before the first poll: a notice can arrive while connecting */
	if (c)
		PQsetNoticeProcessor(c, notice_to_log, (void *) who);
	while (!why && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED)
	{
		struct pollfd pf = {PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
		int			n = poll(&pf, 1, 200);

		if (n < 0 && errno != EINTR)
			st = PGRES_POLLING_FAILED;
		else if (n > 0)
			st = PQconnectPoll(c);
		if (hb && hb->conn && hb->cfg->heartbeat_s > 0 && sc_now_ms() >= next_hb)
		{
			sc_amqp_heartbeat(hb);
			next_hb = sc_now_ms() + 1000;
		}
		if (st != PGRES_POLLING_OK && sc_now_ms() > deadline)
			why = "timeout after 10 s";
		else if (sc_stop && st != PGRES_POLLING_OK)
			why = "stopping";
	}
	if (!why && st == PGRES_POLLING_FAILED)
	{
		const char *msg = PQerrorMessage(c);
		const char *nl = strchr(msg, '\n');

		snprintf(buf, sizeof(buf), "%.*s", nl ? (int) (nl - msg) : (int) strlen(msg), msg);
		why = buf;
	}
	if (!why)
		why = pin_durability(c, hb, buf, sizeof(buf));
	if (why)
	{
		log_warn("%s: cannot connect to PostgreSQL: %s", who, why);
		PQfinish(c);
		return NULL;
	}
	return c;
}

PGresult *
sc_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, struct sc_amqp *hb)
{
	PGresult   *last = NULL,
			   *r;
	long long	next_hb = sc_now_ms() + 1000;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return NULL;
	for (;;)
	{
		int			flushed = PQflush(conn);

		if (flushed < 0)
			goto broken;
		while (flushed == 0 && !PQisBusy(conn))
		{
			r = PQgetResult(conn);
			if (!r)
				return last;
			PQclear(last);
			last = r;
			if (PQstatus(conn) != CONNECTION_OK)
				goto broken;
		}
		{
			struct pollfd p = {PQsocket(conn), POLLIN | (flushed ? POLLOUT : 0), 0};
			int			n = poll(&p, 1, 1000);

			if (n < 0 && errno != EINTR)
				goto broken;
			if (n > 0 && !PQconsumeInput(conn))
				goto broken;
		}
		if (hb && hb->conn && sc_now_ms() >= next_hb)
		{
			/* long wait on PostgreSQL: keep the broker from dropping us */
			if (hb->cfg->heartbeat_s > 0)
				sc_amqp_heartbeat(hb);
			next_hb = sc_now_ms() + 1000;
		}
	}
broken:
	PQclear(last);
	return NULL;
}

int
sc_pg_command(PGconn *conn, const char *sql, struct sc_amqp *hb, const char *who)
{
	PGresult   *r = sc_pg_exec(conn, sql, 0, NULL, hb);
	char		buf[512];

	if (r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK))
	{
		PQclear(r);
		return 0;
	}
	log_warn("%s: %s: %s", who, sql, sc_pg_error(conn, r, buf, sizeof(buf)));
	PQclear(r);
	return -1;
}

int
sc_pg_away(PGconn *conn, const PGresult *res)
{
	const char *st;

	if (!res || PQstatus(conn) != CONNECTION_OK)
		return 1;
	st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (!st)
		return 0;				/* client-side trouble on a live connection */
	return !strncmp(st, "08", 2) || !strcmp(st, "57P01") || !strcmp(st, "57P02") || !strcmp(st, "57P03");
}

const char *
sc_pg_error(PGconn *conn, const PGresult *res, char *buf, size_t len)
{
	const char *msg,
			   *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *nl;

	if (res && PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY))
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	else
		msg = PQerrorMessage(conn);
	if (!msg || !*msg)
		msg = res ? PQresStatus(PQresultStatus(res)) : "connection lost";
	nl = strchr(msg, '\n');
	snprintf(buf, len, "%s%s%.*s", st ? st : "", st ? ": " : "", nl ? (int) (nl - msg) : (int) strlen(msg), msg);
	return buf;
}
