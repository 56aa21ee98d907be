/*
 * readsrc.c — the http role's choice of read server and the replica lag
 * check (see readsrc.h; docs/bridge.md, "Read replicas").
 *
 * Rules: `target` is the only state the workers touch (atomic; workers only
 * ever move it from the replica to the primary, by CAS).  The checker thread
 * owns its two PGconns and the lag tracker; it sleeps on check_cond between
 * checks so that readsrc_stop wakes it at once.  Each check's connect and
 * query are bounded by CHECK_TIMEOUT_MS per server, so stopping waits at most
 * two of those.  Conninfos are copied at start and freed at stop, after the
 * workers are gone (dbpool_shutdown).  Every switch is logged once, with why.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "clock.h"
#include "amqp.h"
#include "log.h"
#include "metrics.h"
#include "pgconn.h"
#include "readsrc.h"

#define CHECK_APPNAME "sharecount-bridge read-check" /* application_name of the checker's sessions */
#define CHECK_TIMEOUT_MS 2000						 /* a server that does not answer a check by then counts as down */
#define BACK_DIVISOR 2 /* back to the replica once its lag is at most read_max_lag_ms / this */

static const char *const PRIMARY_SQL = "SELECT pg_current_wal_lsn()";
static const char *const REPLICA_SQL =
	"SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(), pg_is_wal_replay_paused()";

static _Atomic int target = READ_PRIMARY;
static char *conninfo[2];
static int has_replica;
static int max_lag_ms, interval_ms;

static pthread_t checker;
static int checker_started;
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t check_cond; /* stop requested (CLOCK_MONOTONIC) */
static int check_cond_ready;
static int check_stop;

/* ------------------------------------------------------------- lag math -- */

void
lag_init(struct lag_tracker *lt, int64_t now_ms)
{
	lt->n = 0;
	lt->caught_up_ms = now_ms;
}

void
lag_note_primary(struct lag_tracker *lt, int64_t t_ms, uint64_t lsn)
{
	if (lt->n > 0 && lsn < lt->s[lt->n - 1].lsn)
		lt->n = 0; /* WAL went back: another primary or a restore; start over */
	if (lt->n > 0 && lsn == lt->s[lt->n - 1].lsn)
	{
		lt->s[lt->n - 1].t_ms = t_ms; /* still there: the latest time counts */
		return;
	}
	if (lt->n == LAG_SAMPLES)
	{
		/* full: forget the oldest (the lag is then over-, never under-estimated) */
		memmove(&lt->s[0], &lt->s[1], (LAG_SAMPLES - 1) * sizeof(lt->s[0]));
		lt->n--;
	}
	lt->s[lt->n].t_ms = t_ms;
	lt->s[lt->n].lsn = lsn;
	lt->n++;
}

int64_t
lag_note_replica(struct lag_tracker *lt, uint64_t replay_lsn, int64_t now_ms)
{
	int k = -1, i;

	for (i = 0; i < lt->n && lt->s[i].lsn <= replay_lsn; i++)
		k = i;
	if (k >= 0)
	{
		int64_t t = lt->s[k].t_ms;

		if (k + 1 < lt->n)
		{
			/* WAL from s[k] to s[k+1] was written between their times: interpolate */
			double f = (double) (replay_lsn - lt->s[k].lsn) / (double) (lt->s[k + 1].lsn - lt->s[k].lsn);

			t += (int64_t) (f * (double) (lt->s[k + 1].t_ms - lt->s[k].t_ms));
		}
		if (t > lt->caught_up_ms)
			lt->caught_up_ms = t;
		/* samples below s[k] can never matter again */
		memmove(&lt->s[0], &lt->s[k], (size_t) (lt->n - k) * sizeof(lt->s[0]));
		lt->n -= k;
	}
	return lag_since(lt, now_ms);
}

int64_t
lag_since(const struct lag_tracker *lt, int64_t now_ms)
{
	return now_ms > lt->caught_up_ms ? now_ms - lt->caught_up_ms : 0;
}

int
lag_parse_lsn(const char *text, uint64_t *lsn)
{
	unsigned int hi, lo;
	int used = 0;

	if (!text || sscanf(text, "%X/%X%n", &hi, &lo, &used) != 2 || text[used] != '\0')
		return -1;
	*lsn = ((uint64_t) hi << 32) | lo;
	return 0;
}

/* --------------------------------------------------------------- target -- */

enum read_server
readsrc_target(void)
{
	return (enum read_server) atomic_load_explicit(&target, memory_order_relaxed);
}

const char *
readsrc_conninfo(enum read_server s)
{
	return has_replica && s == READ_REPLICA ? conninfo[READ_REPLICA] : conninfo[READ_PRIMARY];
}

static void
set_target(enum read_server s, const char *why)
{
	if (atomic_exchange(&target, s) == (int) s)
		return;
	metrics_set_read_source(s == READ_REPLICA);
	if (s == READ_REPLICA)
		log_info("reads go to the replica (pg_read_conninfo): %s", why);
	else
		log_warn("reads go to the primary (pg_conninfo): %s", why);
}

void
readsrc_replica_failed(const char *why)
{
	int expected = READ_REPLICA;

	if (!has_replica || !atomic_compare_exchange_strong(&target, &expected, READ_PRIMARY))
		return;
	metrics_set_read_source(0);
	log_warn("reads go to the primary (pg_conninfo): replica connection failed: %s", why);
}

/* -------------------------------------------------------------- checker -- */

struct checker_state
{
	PGconn *pg[2]; /* [READ_PRIMARY], [READ_REPLICA] */
	struct lag_tracker lt;
	int64_t lag_ms; /* last lag published */
};

/*
 * Run the check query of server s (connecting first if needed); its
 * result (caller clears) if it is one row, else NULL with err set (and the
 * connection closed).
 */
static PGresult *
ask(struct checker_state *c, enum read_server s, char *err, size_t errlen)
{
	struct pgconn_wait w;
	PGresult *res;

	pgconn_wait_init(&w, clock_now_ms() + CHECK_TIMEOUT_MS, NULL);
	if (!c->pg[s] && !(c->pg[s] = pgconn_connect(conninfo[s], CHECK_APPNAME, 0, &w, err, errlen)))
		return NULL;
	res = pgconn_exec(c->pg[s], s == READ_PRIMARY ? PRIMARY_SQL : REPLICA_SQL, 0, NULL, &w, err, errlen);
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		return res;
	if (res)
		pgconn_set_err(err, errlen, "%s",
					   PQresultStatus(res) == PGRES_TUPLES_OK ? "no row" : PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(c->pg[s]);
	c->pg[s] = NULL;
	return NULL;
}

/* Sample the primary's WAL position into the tracker; 0, or -1 with err. */
static int
sample_primary(struct checker_state *c, char *err, size_t errlen)
{
	PGresult *res = ask(c, READ_PRIMARY, err, errlen);
	uint64_t lsn;
	int rc = -1;

	if (!res)
		return -1;
	if (lag_parse_lsn(PQgetvalue(res, 0, 0), &lsn) == 0)
	{
		lag_note_primary(&c->lt, clock_now_ms(), lsn);
		rc = 0;
	}
	else
		pgconn_set_err(err, errlen, "pg_current_wal_lsn() returned \"%s\"", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

static void
publish_lag(struct checker_state *c, int64_t lag_ms)
{
	c->lag_ms = lag_ms;
	metrics_set_replica_lag((double) lag_ms / 1000.0);
}

/* One check: measure, publish the lag, move the target if needed. */
static void
check_once(struct checker_state *c)
{
	char perr[256] = "", rerr[256] = "", why[384];
	int primary_ok = sample_primary(c, perr, sizeof(perr)) == 0;
	PGresult *res = ask(c, READ_REPLICA, rerr, sizeof(rerr));
	int64_t now = clock_now_ms();
	uint64_t replay;

	if (!res)
	{
		publish_lag(c, lag_since(&c->lt, now));
		snprintf(why, sizeof(why), "replica unreachable: %s", rerr);
		set_target(READ_PRIMARY, why);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		/* not a standby (a primary itself): nothing to lag behind */
		c->lt.caught_up_ms = now;
		publish_lag(c, 0);
		set_target(READ_REPLICA, "it is not in recovery (not a standby): lag 0");
	}
	else if (lag_parse_lsn(PQgetvalue(res, 0, 1), &replay) != 0)
	{
		snprintf(why, sizeof(why), "replica reports replay position \"%s\"", PQgetvalue(res, 0, 1));
		set_target(READ_PRIMARY, why);
	}
	else if (!primary_ok)
	{
		/* lag unknown (the gauge keeps its value); the replica is the only server that answers */
		lag_note_replica(&c->lt, replay, now);
		snprintf(why, sizeof(why), "the primary does not answer the lag check: %s", perr);
		set_target(READ_REPLICA, why);
	}
	else
	{
		int64_t lag = lag_note_replica(&c->lt, replay, now);
		int paused = strcmp(PQgetvalue(res, 0, 2), "t") == 0;

		publish_lag(c, lag);
		snprintf(why, sizeof(why), "replica %.3f s behind%s (read_max_lag_ms %d)", (double) lag / 1000.0,
				 paused ? ", replay paused" : "", max_lag_ms);
		if (lag > max_lag_ms)
			set_target(READ_PRIMARY, why);
		else if (lag <= max_lag_ms / BACK_DIVISOR)
			set_target(READ_REPLICA, why);
	}
	PQclear(res);
}

static void *
checker_main(void *arg)
{
	struct checker_state *c = arg;

	log_set_role("http");

	lag_init(&c->lt, clock_now_ms());
	pthread_mutex_lock(&check_lock);
	while (!check_stop)
	{
		int64_t at;
		struct timespec ts;

		pthread_mutex_unlock(&check_lock);
		check_once(c);
		at = clock_now_ms() + interval_ms;
		ts.tv_sec = at / 1000;
		ts.tv_nsec = (at % 1000) * 1000000;
		pthread_mutex_lock(&check_lock);
		while (!check_stop && clock_now_ms() < at)
			pthread_cond_timedwait(&check_cond, &check_lock, &ts);
	}
	pthread_mutex_unlock(&check_lock);
	if (c->pg[READ_PRIMARY])
		PQfinish(c->pg[READ_PRIMARY]);
	if (c->pg[READ_REPLICA])
		PQfinish(c->pg[READ_REPLICA]);
	free(c);
	return NULL;
}

/* ---------------------------------------------------------- start, stop -- */

int
readsrc_start(const struct readsrc_conf *conf)
{
	struct checker_state *c;
	int rc = 0;

	conninfo[READ_PRIMARY] = strdup(conf->primary ? conf->primary : "");
	has_replica = conf->replica && conf->replica[0] && strcmp(conf->replica, conf->primary ? conf->primary : "") != 0;
	conninfo[READ_REPLICA] = has_replica ? strdup(conf->replica) : NULL;
	max_lag_ms = conf->max_lag_ms;
	interval_ms = conf->check_interval_ms > 0 ? conf->check_interval_ms : 1;
	atomic_store(&target, READ_PRIMARY);
	metrics_set_read_source(0);
	metrics_set_replica_lag(0);
	if (!conninfo[READ_PRIMARY] || (has_replica && !conninfo[READ_REPLICA]))
	{
		readsrc_stop();
		return -1;
	}
	if (!has_replica)
		return 0;
	if (!check_cond_ready)
	{
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&check_cond, &attr);
		pthread_condattr_destroy(&attr);
		check_cond_ready = 1;
	}
	check_stop = 0;
	c = calloc(1, sizeof(*c));
	if (!c || (rc = pthread_create(&checker, NULL, checker_main, c)) != 0)
	{
		log_error("cannot start the replica check: %s", c ? strerror(rc) : "out of memory");
		free(c);
		readsrc_stop();
		return -1;
	}
	checker_started = 1;
	log_info("reading from the replica in pg_read_conninfo while it is at most %d ms behind "
			 "(checked every %d ms), else from the primary",
			 max_lag_ms, interval_ms);
	return 0;
}

void
readsrc_stop(void)
{
	if (checker_started)
	{
		pthread_mutex_lock(&check_lock);
		check_stop = 1;
		pthread_cond_broadcast(&check_cond);
		pthread_mutex_unlock(&check_lock);
		pthread_join(checker, NULL);
		checker_started = 0;
	}
	free(conninfo[READ_PRIMARY]);
	free(conninfo[READ_REPLICA]);
	conninfo[READ_PRIMARY] = conninfo[READ_REPLICA] = NULL;
	has_replica = 0;
	atomic_store(&target, READ_PRIMARY);
}
