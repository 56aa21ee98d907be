/*
 * dbpool_int.h — the pool's parts (dbpool.h is its interface), one file each:
 *
 *   dbpool.c         the job queue, the workers' loop, init/drain/shutdown
 *   dbpool_serve.c   one batch on one worker: connection, read-server choice,
 *                    statements prepared, retry and fail-over
 *   dbpool_pipe.c    one pipeline round trip as small steps over struct
 *                    dbpool_pipe (state: enum dbpool_pipe_state)
 *   dbpool_decode.c  results into jobs' outputs, the coalesced read's
 *                    distinct keys, text[] literals
 *   dbpool_stats.c   the counters: /metrics and the shutdown log line
 *   dbpool_local.c   single counts answered in the asking thread, on a
 *                    connection of its own (http_loop.c's threads)
 *
 * Rules: a struct dbpool_worker and its pipe belong to the worker's thread;
 * the queue is guarded by the lock in dbpool.c; the counters are C11
 * atomics.  Every job is completed (dbpool_complete) exactly once.
 */
#ifndef SC_DBPOOL_INT_H
#define SC_DBPOOL_INT_H

#include <pthread.h>

#include <libpq-fe.h>

#include "dbpool.h"
#include "pgconn.h"
#include "readsrc.h"

#define DBPOOL_BATCH_MAX 256					/* jobs taken at once (single counts coalesced into one statement) */
#define DBPOOL_PIPE_MAX 64						/* other jobs in one batch (each is a statement of its own) */
#define DBPOOL_APPNAME "sharecount-bridge http" /* application_name of the workers' sessions */

/* Most parameters of a statement: a history read's type, id, since, until, bucket. */
#define DBPOOL_MAX_PARAMS 5

/*
 * Statements: one per job kind, the coalesced single-count read, then the
 * versioned forms of the single-count reads (dbpool_set_versioned).
 */
#define DBPOOL_STMT_GET_BATCH DBPOOL_KINDS
#define DBPOOL_STMT_GET_V (DBPOOL_KINDS + 1)
#define DBPOOL_STMT_GET_BATCH_V (DBPOOL_KINDS + 2)	/* keys of several types: one function call per key */
#define DBPOOL_STMT_GET_BATCH_V1 (DBPOOL_KINDS + 3) /* keys of one type (the usual case): one call for all */
#define DBPOOL_NSTMTS (DBPOOL_KINDS + 4)

struct dbpool_stmt
{
	const char *name;
	const char *sql;
	int nparams;
	/* prepared under the same name when sql's function is missing (42883): same columns, versions NULL */
	const char *fallback;
};

/* Is statement k a coalesced read of single counts? */
#define DBPOOL_STMT_IS_BATCH(k) \
	((k) == DBPOOL_STMT_GET_BATCH || (k) == DBPOOL_STMT_GET_BATCH_V || (k) == DBPOOL_STMT_GET_BATCH_V1)

extern const struct dbpool_stmt dbpool_stmts[DBPOOL_NSTMTS];

/*
 * One statement of a pipeline and the jobs it answers: one job, or every
 * DBPOOL_GET of the batch for DBPOOL_STMT_GET_BATCH.
 */
struct dbpool_unit
{
	int stmt; /* index into dbpool_stmts[] */
	struct dbpool_job **jobs;
	size_t n;
	/* DBPOOL_STMT_GET_BATCH: jobs[j] is answered by row key_of[j] of nkeys */
	const size_t *key_of;
	size_t nkeys;
};

/*
 * Where a pipeline round trip is (in the style of pg_cron's task_states.h):
 * a round goes PLANNED -> SENT -> READING -> ANSWERED -> SYNCED in order;
 * LOST may follow any of them and ends the round as SYNCED does.
 */
enum dbpool_pipe_state
{
	DBPOOL_PIPE_IDLE = 0, /* nothing in hand (owned memory freed) */
	DBPOOL_PIPE_PLANNED,  /* units built from the jobs (distinct keys found) */
	DBPOOL_PIPE_SENT,	  /* every statement and the one Sync queued in libpq */
	DBPOOL_PIPE_READING,  /* flushed; answers read in order, units[next] is due */
	DBPOOL_PIPE_ANSWERED, /* every unit answered (or skipped); the Sync is due */
	DBPOOL_PIPE_SYNCED,	  /* every answer and the Sync read, pipeline mode left */
	DBPOOL_PIPE_LOST	  /* the connection failed (err): jobs not answered are in left[] */
};

/*
 * One pipeline round trip.  It owns every text[] literal it encoded (owned[],
 * freed when the round ends) and only points at its jobs.
 */
struct dbpool_pipe
{
	enum dbpool_pipe_state state;
	PGconn *pg;
	struct pgconn_wait wait; /* the batch deadline */
	struct dbpool_unit units[DBPOOL_PIPE_MAX + 1];
	size_t nunits;
	size_t next; /* READING: the unit whose answer is due */
	/* the coalesced read of every DBPOOL_GET, when there are two or more */
	struct dbpool_job *gets[DBPOOL_BATCH_MAX];
	char *gtypes[DBPOOL_BATCH_MAX];
	char *gids[DBPOOL_BATCH_MAX];
	size_t key_of[DBPOOL_BATCH_MAX];
	size_t ngets, nkeys;
	char *owned[DBPOOL_PIPE_MAX + 2]; /* malloc'ed parameters */
	size_t nowned;
	/* the outcome */
	struct dbpool_job *left[DBPOOL_BATCH_MAX]; /* skipped after an SQL error, or not answered when LOST */
	size_t nleft;
	size_t ncompleted;		 /* jobs completed by this round */
	char err[PGCONN_ERRLEN]; /* LOST: why */
};

struct dbpool_worker
{
	pthread_t thread;
	int started;
	PGconn *pg;
	unsigned prepared;		 /* bit k: dbpool_stmts[k] is prepared on pg */
	int64_t fallback_ms;	 /* when a statement's fallback was prepared on pg (0: none) */
	enum read_server server; /* which server pg is connected to */
	struct dbpool_pipe pipe;
};

/* How a job failed, for the errors counter. */
enum dbpool_fail
{
	DBPOOL_FAIL_SQL = 0,	 /* the server answered with an SQL error */
	DBPOOL_FAIL_UNAVAILABLE, /* cannot connect, connection lost, server going away */
	DBPOOL_FAIL_TIMEOUT,	 /* the deadline passed (in the queue or at the server) */
	DBPOOL_FAIL_SHUTDOWN,	 /* submitted while the pool was stopping */
	DBPOOL_FAILS
};

/* dbpool.c: complete a job (rc, and err when it failed) and count it. */
void dbpool_complete(struct dbpool_job *job, int rc);
void dbpool_fail(struct dbpool_job *job, enum dbpool_fail why, const char *err);
/* dbpool.c: the queue's gauges (jobs queued, accepted and not completed, workers busy), read under its lock. */
void dbpool_gauges(int *queued, int *inflight, int *busy);

/* dbpool_serve.c */
void dbpool_serve_batch(struct dbpool_worker *w, struct dbpool_job **jobs, size_t n);
void dbpool_drop(struct dbpool_worker *w);
/* Close w->pg when it is not to the read server `want` or its versions fallback is due for a retry. */
void dbpool_drop_if_stale(struct dbpool_worker *w, enum read_server want, int64_t now);
/* Connect w->pg to server, bounded by deadline; 0, or -1 with err. */
int dbpool_connect(struct dbpool_worker *w, enum read_server server, int64_t deadline, char *err, size_t errlen);
/*
 * Prepare the statements (bits of need) that w->pg lacks, bounded by
 * deadline.  A statement whose PREPARE fails with an SQL error (the
 * extension is missing, say) is left unprepared (bit set in *failed, err
 * says why); returns -1 only when the connection failed (err set,
 * connection dropped).
 */
int dbpool_prepare(struct dbpool_worker *w, unsigned need, int64_t deadline, char *err, size_t errlen,
				   unsigned *failed);

/* dbpool.c: dbpool_set_versioned's word. */
int dbpool_versioned(void);

/* dbpool_pipe.c: one round trip of jobs[0..n) on w->pg; 0, or -1 when the connection failed (dropped). */
int dbpool_pipe_run(struct dbpool_worker *w, struct dbpool_job **jobs, size_t n, int64_t deadline);
/* The statement that answers the DBPOOL_GET jobs of a batch together, or -1 when it holds fewer than two. */
int dbpool_batch_stmt(struct dbpool_job *const *jobs, size_t n);
/* The statement that answers job in a batch whose coalesced read is batch (dbpool_batch_stmt). */
int dbpool_stmt_of(const struct dbpool_job *job, int batch);
size_t dbpool_count_gets(struct dbpool_job *const *jobs, size_t n);
/* The statements (bits of dbpool_stmts[]) a round of jobs[0..n) runs. */
unsigned dbpool_stmts_needed(struct dbpool_job *const *jobs, size_t n);

/* dbpool_decode.c */
int dbpool_take_result(struct dbpool_job *job, PGresult *res);
int dbpool_take_batch_result(const struct dbpool_unit *u, PGresult *res);
/* A trends read's parameters (type, id unless DBPOOL_TOP, then args) into params[0..nparams). */
void dbpool_trends_params(const struct dbpool_job *job, const char **params, int nparams);
/* 1 if res is a trends read's SQLSTATE 22023 (then job->err is the server's message), else 0. */
int dbpool_bad_input(struct dbpool_job *job, const PGresult *res);
size_t dbpool_distinct_keys(struct dbpool_job *const *jobs, size_t n, char **types, char **ids, size_t *key_of);

/* dbpool_stats.c */
enum dbpool_stat
{
	DBPOOL_STAT_JOBS = 0,		/* jobs sent (one sent again counts again) */
	DBPOOL_STAT_BATCHES,		/* batches taken */
	DBPOOL_STAT_OVERLAP,		/* of which while another worker was busy */
	DBPOOL_STAT_SINGLE,			/* of which held one job */
	DBPOOL_STAT_COALESCED,		/* coalesced reads sent */
	DBPOOL_STAT_COALESCED_JOBS, /* jobs answered by them */
	DBPOOL_STAT_COALESCED_KEYS, /* distinct keys they read */
	DBPOOL_STAT_CONNECTS,		/* connections made */
	DBPOOL_STAT_LOCAL_JOBS,		/* single counts answered by a libmicrohttpd thread itself (dbpool_local.c) */
	DBPOOL_STAT_LOCAL_HANDED,	/* of those it was given, handed to the workers (its connection down or failed) */
	DBPOOL_STATS_N
};

void dbpool_stat_add(enum dbpool_stat s, uint64_t n);
void dbpool_stat_fail(enum dbpool_fail why);
/* Register the pool's /metrics section (once). */
void dbpool_stats_register(void);
/* The shutdown log line. */
void dbpool_stats_log(void);

#endif
