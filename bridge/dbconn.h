/*
 * dbconn.h — bounded, non-blocking libpq calls for the http role's database
 * workers (dbpool.c) and its replica check (readsrc.c).
 *
 * Rules: every function returns by the given absolute deadline
 * (dbpool_now_ms() clock); none keeps state.  After a failure the caller
 * closes the connection.  Error texts are one line, without secrets.
 */
#ifndef SC_DBCONN_H
#define SC_DBCONN_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

enum db_wait { DB_WAIT_READ, DB_WAIT_WRITE, DB_WAIT_FLUSH };

/* vsnprintf into err, newlines and tabs turned into spaces, trailing spaces cut. */
void		db_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Wait until pg's socket is ready; 1 ready, 0 deadline, -1 error. */
int			db_wait_socket(PGconn *pg, enum db_wait what, int64_t deadline);
/* A non-blocking connection (appname as fallback_application_name); NULL with err on failure. */
PGconn	   *db_connect(const char *conninfo, const char *appname, int64_t deadline, char *err, size_t errlen);
/* Flush libpq's output buffer; 0 done, -1 failed or timed out (err set). */
int			db_flush_all(PGconn *pg, int64_t deadline, char *err, size_t errlen);
/* The next result (NULL: the end of one query's results); *ok = 0 on failure. */
PGresult   *db_next_result(PGconn *pg, int64_t deadline, int *ok, char *err, size_t errlen);
/* Is this error result the server going away (SQLSTATE 08, 57P, or no SQLSTATE)? */
int			db_is_conn_error(PGconn *pg, const PGresult *res);
/* One statement, no parameters: its last result (caller clears), or NULL with err. */
PGresult   *db_query(PGconn *pg, const char *sql, int64_t deadline, char *err, size_t errlen);

#endif
