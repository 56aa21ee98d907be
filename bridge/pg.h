/*
 * pg.h — the bridge's PostgreSQL helpers on libpq: connect with an
 * application_name, run a statement with bounded waits (servicing AMQP
 * heartbeats meanwhile), and tell "the database is away" from other errors.
 *
 * Rules: one PGconn per role thread, never shared.  sc_pg_exec never blocks
 * longer than one second without sending an AMQP heartbeat when given a
 * connection to keep alive.
 */
#ifndef SC_PG_H
#define SC_PG_H

#include <libpq-fe.h>

#include "amqp.h"
#include "metrics.h"

/* Run once per session by sc_pg_connect: pins synchronous_commit = on (keeps
 * remote_apply, which is stronger) and returns the value in effect. */
#define SC_PG_PIN_DURABILITY_SQL \
	"SELECT CASE WHEN current_setting('synchronous_commit') = 'remote_apply' THEN 'remote_apply' " \
	"ELSE set_config('synchronous_commit', 'on', false) END"

/* One connection attempt (at most 10 s, heartbeats sent on hb meanwhile;
 * hb may be NULL); NULL (logged) on failure.  The session's commits are
 * durable: synchronous_commit is set to on (kept if remote_apply), whatever
 * the database or role default (docs/bridge.md, "Durability"). */
PGconn	   *sc_pg_connect(const char *conninfo, const char *appname, const char *who, struct sc_amqp *hb);

/*
 * Run sql with text parameters through the asynchronous API; while waiting,
 * keep hb (may be NULL) alive with heartbeats.  Returns the last PGresult
 * (caller PQclear()s it), or NULL if the connection broke.
 */
PGresult   *sc_pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
					   struct sc_amqp *hb);

/* Run a command expecting PGRES_COMMAND_OK/TUPLES_OK; 0 or -1 (logged). */
int			sc_pg_command(PGconn *conn, const char *sql, struct sc_amqp *hb, const char *who);

/*
 * Whether a failed result (or a NULL result = lost connection) means the
 * database is away: connection lost, class 08, admin/crash shutdown or
 * "cannot connect now" (57P01-57P03).  Only that pauses the consumer without
 * counting attempts; every other error is judged by the consumer
 * (docs/bridge.md, "Failures").
 */
int			sc_pg_away(PGconn *conn, const PGresult *res);

/* "SQLSTATE: message" of a failed result, first line only, into buf. */
const char *sc_pg_error(PGconn *conn, const PGresult *res, char *buf, size_t len);

#endif
