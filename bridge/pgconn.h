/*
 * pgconn.h — the bridge's one PostgreSQL layer on libpq's asynchronous API:
 * connect with a deadline, wait on the socket, flush, read results, classify
 * errors and format them, for every role (publisher, consumer, the http
 * role's pool and its replica check).
 *
 * Every wait is a poll() on PQsocket() bounded by a struct pgconn_wait: an
 * absolute deadline (clock_now_ms() clock, PGCONN_FOREVER for none), an AMQP
 * connection to keep alive with heartbeats meanwhile (role threads), and
 * whether a stop request (sc_stop) ends the wait.  Connections are
 * non-blocking, so a large statement or pipeline is flushed while answers are
 * read and never deadlocks with the server.
 *
 * Session settings are pinned here and only here: PGCONN_DURABLE sessions
 * (the consumer's and the publisher's) run with synchronous_commit = on, or
 * remote_apply if that is already in effect (docs/bridge.md, "Durability").
 *
 * Prepared statements (pgconn_exec_prepared): a role's hot statements are
 * parsed, analyzed and planned once per connection (docs/bridge.md "Prepared
 * statements"); which ones a connection has is a struct pgconn_prep the
 * caller keeps with the connection and zeroes whenever it opens a new one.
 *
 * Rules: one PGconn per thread, never shared; nothing here keeps state but
 * the struct pgconn_wait and struct pgconn_prep the caller owns.  After a failure the caller closes
 * the connection (PQfinish), so a late answer is never read as another
 * query's.  Error texts are one line, without secrets (no conninfo).
 */
#ifndef SC_PGCONN_H
#define SC_PGCONN_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

struct sc_amqp;

#define PGCONN_FOREVER INT64_MAX /* a wait with no deadline */
#define PGCONN_CONNECT_MS 10000	 /* pgconn_open's budget for one connection attempt */
#define PGCONN_HEARTBEAT_MS 1000 /* heartbeat interval on a kept-alive AMQP connection while waiting */
#define PGCONN_SLICE_MS 200		 /* longest single poll() when heartbeats or stop requests are watched */
#define PGCONN_ERRLEN 256		 /* size of the error buffers the roles pass */

/* Session options of pgconn_connect. */
#define PGCONN_DURABLE 0x1 /* pin synchronous_commit = on (kept if remote_apply) */

/* What a failed result (or a NULL one) means. */
enum pgconn_class
{
	PGCONN_OK = 0, /* a successful result */
	PGCONN_LOST,   /* no result, or the connection is no longer usable */
	PGCONN_AWAY,   /* the server is going away: SQLSTATE class 08, or 57P (shutdown,
								 * cannot connect now, database dropped, idle session timeout) */
	PGCONN_CLIENT, /* libpq's own error on a live connection (no SQLSTATE) */
	PGCONN_SQL	   /* the server answered with an SQL error */
};

/* What a wait is bounded by (see the file header); the caller owns it. */
struct pgconn_wait
{
	int64_t deadline;	/* clock_now_ms() clock; PGCONN_FOREVER */
	struct sc_amqp *hb; /* heartbeats sent on it while waiting; NULL: none */
	int stop_on_signal; /* give up once sc_stop is set */
	int64_t next_hb;	/* private: when the next heartbeat is due */
};

/* A statement prepared once per connection; `bit` is its own bit in struct pgconn_prep. */
struct pgconn_stmt
{
	const char *name; /* server-side name, unique among the connection's statements */
	const char *sql;
	int nparams; /* text parameters, types inferred by the server */
	unsigned bit;
};

/* What one connection has prepared; zeroed by the caller with every new connection. */
struct pgconn_prep
{
	unsigned ready; /* prepared and usable */
	unsigned stale; /* exist on the server but must be prepared again (deallocated first) */
};

/* A wait until deadline, keeping hb (may be NULL) alive, not ended by sc_stop. */
void pgconn_wait_init(struct pgconn_wait *w, int64_t deadline, struct sc_amqp *hb);

/* ---- building blocks (the http role's pool drives its pipeline with them) ---- */

/* A non-blocking connection (appname as fallback_application_name); NULL with err on failure. */
PGconn *pgconn_connect(const char *conninfo, const char *appname, unsigned opts, struct pgconn_wait *w, char *err,
					   size_t errlen);
/* Flush libpq's output buffer (reading answers meanwhile); 0 done, -1 failed or timed out (err set). */
int pgconn_flush(PGconn *pg, struct pgconn_wait *w, char *err, size_t errlen);
/* The next result (NULL: the end of one statement's results); *ok = 0 on failure (err set). */
PGresult *pgconn_next_result(PGconn *pg, struct pgconn_wait *w, int *ok, char *err, size_t errlen);
/* One statement with text parameters: its last result (caller clears), or NULL with err. */
PGresult *pgconn_exec(PGconn *pg, const char *sql, int nparams, const char *const *params, struct pgconn_wait *w,
					  char *err, size_t errlen);
/*
 * Statement st with text parameters, prepared on pg first if prep says it is
 * not: its last result (caller clears), or NULL with err.  A failed prepare
 * returns its error result (e.g. 42883, the function is missing).  When the
 * server no longer has the statement (26000) or its result columns changed
 * (0A000, after a function was replaced), it is prepared again and, outside a
 * transaction block, run once more; inside one the error is returned.
 */
PGresult *pgconn_exec_prepared(PGconn *pg, const struct pgconn_stmt *st, struct pgconn_prep *prep,
							   const char *const *params, struct pgconn_wait *w, char *err, size_t errlen);

/* ---- errors ---- */

enum pgconn_class pgconn_classify(PGconn *pg, const PGresult *res);
/* Whether the database is away (PGCONN_LOST or PGCONN_AWAY): the consumer holds its batch. */
int pgconn_away(PGconn *pg, const PGresult *res);
/*
 * Whether a statement failed because its function cannot be called: missing
 * (42883: the database still has the 1.0 schema, or an older 1.1) or not
 * granted (42501).  Then (1) a warning names fn and what the caller does
 * instead, and *retry_ms is set recheck_ms from now: the caller uses its
 * fallback until then.  0 for any other result (also NULL).
 */
int pgconn_fn_unusable(const PGresult *r, const char *fn, const char *instead, int recheck_ms, int64_t *retry_ms);
/* "SQLSTATE: message" of a failed result (first line), or libpq's message, into buf. */
const char *pgconn_error(PGconn *pg, const PGresult *res, char *buf, size_t len);
/* vsnprintf into err as one line (newlines and tabs become spaces, trailing spaces cut). */
void pgconn_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- role threads (publisher, consumer): heartbeats on hb, no deadline but the connect's ---- */

/* One durable connection attempt of at most PGCONN_CONNECT_MS; NULL (logged) on failure or stop. */
PGconn *pgconn_open(const char *conninfo, const char *appname, struct sc_amqp *hb);
/* pgconn_exec with no deadline; NULL if the connection broke. */
PGresult *pgconn_run(PGconn *pg, const char *sql, int nparams, const char *const *params, struct sc_amqp *hb);
/* pgconn_exec_prepared with no deadline; NULL if the connection broke. */
PGresult *pgconn_run_prepared(PGconn *pg, const struct pgconn_stmt *st, struct pgconn_prep *prep,
							  const char *const *params, struct sc_amqp *hb);
/* A command expecting COMMAND_OK or TUPLES_OK; 0, or -1 (logged). */
int pgconn_command(PGconn *pg, const char *sql, struct sc_amqp *hb);

#endif
