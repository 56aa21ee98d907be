/*
 * dbpool.h — the http role's PostgreSQL access: a queue of read jobs served
 * by `size` worker threads, each owning one connection to the read server
 * readsrc.h chooses: the replica in pg_read_conninfo while it is up and not
 * too far behind, else the primary (docs/bridge.md, "Read replicas").
 *
 * A worker takes every job waiting (up to a batch) and sends them to
 * PostgreSQL at once in libpq pipeline mode, then reads the answers in order.
 * Under load this turns many HTTP requests into one round trip; idle, a batch
 * is one job.  The HTTP threads never block on the database: they suspend the
 * connection, submit a job and are called back.
 *
 * Rules: every job carries an absolute deadline (clock_now_ms() + budget) and
 * is completed by then — waiting in the queue, connecting, preparing and
 * querying are all bounded by it (non-blocking libpq + poll()).  A connection
 * that fails or times out is closed and re-made for a later job, so the pool
 * recovers by itself.  job->done is called exactly once per submitted job,
 * from a worker thread (or from dbpool_submit itself when the pool is
 * stopping); it must not block.  The job's inputs must stay valid until then.
 * Statements are prepared once per connection, on first use.  The pool's
 * parts (queue, serving, pipeline, decoding, counters) are listed in
 * dbpool_int.h; its counters are on /metrics (docs/http.md, "GET /metrics").
 */
#ifndef SC_DBPOOL_H
#define SC_DBPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "readsrc.h"

enum dbpool_rc
{
	DBPOOL_OK = 0,
	DBPOOL_UNAVAILABLE = -1, /* cannot connect, connection lost, timed out, stopping */
	DBPOOL_ERROR = -2,		 /* the server answered with an SQL error */
	DBPOOL_BAD_INPUT = -3	 /* a trends read's SQLSTATE 22023 (invalid parameter): err is the server's message */
};

#define DBPOOL_NARGS 3 /* text parameters of a trends read after type (and id) */

struct pg_result; /* libpq's PGresult */

enum dbpool_kind
{
	DBPOOL_PING = 0, /* SELECT 1 (readiness) */
	DBPOOL_GET,		 /* sharecount_get(type, id) -> count */
	DBPOOL_GET_MANY, /* sharecount_get_many(type, ids) -> counts[i] for ids[i] */
	DBPOOL_STATS,	 /* sharecount_stats()::text -> stats (malloc'ed) */
	/* the trends reads (docs/http.md "Channels and trends"): rows -> result */
	DBPOOL_BREAKDOWN, /* (type, id, args: dimension) -> (kind 0 total | 1 value, value, count) rows */
	DBPOOL_HISTORY,	  /* (type, id, args: since, until, bucket) -> (bucket start in Unix ms, shares) rows */
	DBPOOL_TOP,		  /* (type, args: interval, limit) -> (content id, shares) rows */
	DBPOOL_KINDS
};

struct dbpool_job
{
	/* inputs */
	enum dbpool_kind kind;
	const char *type;
	const char *id;
	char *const *ids;
	size_t nids;
	const char *args[DBPOOL_NARGS]; /* DBPOOL_BREAKDOWN, _HISTORY, _TOP */
	int64_t deadline;				/* clock_now_ms() clock */
	void (*done)(struct dbpool_job *job);
	void *cls; /* the submitter's */
	/* outputs, valid in done() */
	int rc;					  /* enum dbpool_rc */
	int64_t count;			  /* DBPOOL_GET */
	int64_t *counts;		  /* DBPOOL_GET_MANY: nids entries, allocated by the submitter */
	int64_t version;		  /* DBPOOL_GET with dbpool_set_versioned(1): -1 unknown (the extension predates 1.1) */
	char *stats;			  /* DBPOOL_STATS: malloc'ed JSON text; the submitter frees */
	struct pg_result *result; /* the trends reads: the rows, checked; the submitter frees (dbpool_job_free) */
	char err[256];			  /* why, when rc != DBPOOL_OK (one line, no secrets) */
	/* private */
	int64_t queued_ms;
	struct dbpool_job *next;
};

/*
 * Start the read-server choice (readsrc_start) and `size` workers
 * (connections are made lazily); 0 on success, -1 on failure.
 */
int dbpool_init(const struct readsrc_conf *reads, int size);
/*
 * Before dbpool_init: read single counts (DBPOOL_GET) with their versions
 * (sharecount_get_versioned, for the cache, docs/live.md "Cache").  A connection to a database whose
 * extension lacks it (1.0) reads them without (versions -1), logs it once,
 * and tries again every DBPOOL_VERSIONED_RETRY_MS.
 */
void dbpool_set_versioned(int on);
#define DBPOOL_VERSIONED_RETRY_MS 60000
/* Hand a job to the workers.  Never blocks. */
void dbpool_submit(struct dbpool_job *job);
/*
 * Stop taking jobs (later submits complete at once with DBPOOL_UNAVAILABLE) and
 * wait until every accepted job has been completed.
 */
void dbpool_drain(void);
/* Drain, stop the workers, close the connections. */
void dbpool_shutdown(void);


/*
 * Single counts answered in the calling thread, on a connection of its own
 * (dbpool_local.c; http_loop.c's threads): each thread makes one with
 * dbpool_local_new() and hands it the DBPOOL_GET jobs of one turn, which are
 * answered before dbpool_local_serve() returns (waiting at most
 * SC_HTTP_LOCAL_WAIT_MS) or handed to the workers (its connection down or
 * failed).  After dbpool_init, before dbpool_shutdown.
 */
struct dbpool_local;
struct dbpool_local *dbpool_local_new(void);
void dbpool_local_serve(struct dbpool_local *l, struct dbpool_job **jobs, size_t n);
void dbpool_local_free(struct dbpool_local *l);

/* Free a job's outputs (stats, result); safe on a zeroed job and twice. */
void dbpool_job_free(struct dbpool_job *job);

/*
 * Build a PostgreSQL text[] literal ({"a","b\"c"}) from n strings into a
 * malloc'ed string; NULL when out of memory.  Exposed for unit tests.
 */
char *dbpool_text_array_literal(char *const *items, size_t n);

#endif
