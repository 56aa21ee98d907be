/*
 * dbpool.h — the http role's pool of PostgreSQL connections to
 * pg_read_conninfo, and the few read queries the API runs on it.
 *
 * Rules: every call takes an absolute deadline (dbpool_now_ms() + budget) and
 * returns by then: waiting for a free connection, connecting and querying are
 * all bounded by it (libpq's async API with poll()).  A connection that fails
 * or times out is closed and re-made on a later request, so the pool recovers
 * by itself after an outage.  Thread-safe: a mutex + condvar guard the slots;
 * a connection is used by one thread at a time.  Statements are prepared once
 * per connection, on first use.
 */
#ifndef SC_DBPOOL_H
#define SC_DBPOOL_H

#include <stddef.h>
#include <stdint.h>

enum db_rc
{
	DB_OK = 0,
	DB_UNAVAILABLE = -1,		/* cannot connect, connection lost, timed out, pool busy */
	DB_ERROR = -2				/* the server answered with an SQL error */
};

/* Set up `size` (lazily connected) slots; 0 on success, -1 on bad arguments. */
int			dbpool_init(const char *conninfo, int size);
/* Close every connection; no call may be in progress. */
void		dbpool_shutdown(void);

/* Monotonic clock in milliseconds, for deadlines. */
int64_t		dbpool_now_ms(void);

/* SELECT 1 on a pooled connection (readiness). */
int			db_ping(int64_t deadline, char *err, size_t errlen);
/* sharecount_get(type, id) */
int			db_get_count(const char *type, const char *id, int64_t *count,
						 int64_t deadline, char *err, size_t errlen);
/* sharecount_get_many(type, ids) → counts[i] for ids[i] */
int			db_get_many(const char *type, char *const *ids, size_t n, int64_t *counts,
						int64_t deadline, char *err, size_t errlen);
/* sharecount_stats()::text into *json (malloc'ed; caller frees) */
int			db_stats(char **json, int64_t deadline, char *err, size_t errlen);

/*
 * Build a PostgreSQL text[] literal ({"a","b\"c"}) from n strings into a
 * malloc'ed string; NULL when out of memory.  Exposed for unit tests.
 */
char	   *db_text_array_literal(char *const *items, size_t n);

#endif
