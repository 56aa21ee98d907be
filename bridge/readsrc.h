/*
 * readsrc.h — which server the http role reads from (docs/bridge.md, "Read
 * replicas"): the replica in pg_read_conninfo while it answers and is at
 * most read_max_lag_ms behind, otherwise the primary in pg_conninfo.
 *
 * A checker thread measures the replica's lag every read_check_interval_ms
 * on two connections of its own (one to each server) and publishes the
 * decision; the database workers read it with one atomic load per batch
 * (readsrc_target) and never wait for the checker.  A worker whose replica
 * connection fails calls readsrc_replica_failed: reads go to the primary at
 * once, and back after the next good check.
 *
 * Lag: the checker samples the primary's WAL write position
 * (pg_current_wal_lsn) with the time it was read, then the replica's replay
 * position (pg_last_wal_replay_lsn).  Everything the primary had written by
 * the time of the newest sample at or below the replay position has been
 * replayed; between two samples the time is interpolated by WAL position.
 * The lag is now minus that time: ~0 on an idle primary, growing in real
 * time while replay is paused or the replica is down, and right even when the
 * replica's WAL receiver has lost the primary (which a replica-only measure
 * such as receive = replay LSN cannot see).
 *
 * Rules: readsrc_start/readsrc_stop are called by dbpool_init/shutdown only
 * (one checker per process); the lag tracker (struct lag_tracker) is owned by
 * the checker thread; everything the workers read is a C11 atomic.
 */
#ifndef SC_READSRC_H
#define SC_READSRC_H

#include <stdint.h>

enum read_server
{
	READ_PRIMARY = 0, /* pg_conninfo */
	READ_REPLICA = 1  /* pg_read_conninfo */
};

struct readsrc_conf
{
	const char *primary;   /* pg_conninfo */
	const char *replica;   /* pg_read_conninfo; NULL, "" or = primary: no replica */
	int max_lag_ms;		   /* read_max_lag_ms */
	int check_interval_ms; /* read_check_interval_ms */
};

/* Copy the conninfos and start the checker (when there is a replica); 0 or -1. */
int readsrc_start(const struct readsrc_conf *conf);
/* Stop and join the checker, free the conninfos. */
void readsrc_stop(void);
/* Where reads go now (one relaxed atomic load). */
enum read_server readsrc_target(void);
/* The conninfo of a server (the primary's when no replica is configured). */
const char *readsrc_conninfo(enum read_server s);
/* A worker could not use the replica (why: one line): read from the primary until the next good check. */
void readsrc_replica_failed(const char *why);

/* ---- lag tracking (pure, unit-tested in test/unit/test_readsrc.c) ---- */

#define LAG_SAMPLES 256 /* primary samples kept (256 at the default interval: about a minute) */

struct lag_tracker
{
	struct
	{
		int64_t t_ms; /* the latest time the primary's WAL was at lsn */
		uint64_t lsn;
	} s[LAG_SAMPLES]; /* ascending lsn */
	int n;
	int64_t caught_up_ms; /* all WAL written by then is replayed (never decreases) */
};

/* Start with nothing known: the replica counts as caught up at now_ms. */
void lag_init(struct lag_tracker *lt, int64_t now_ms);
/* The primary's WAL write position was lsn at t_ms. */
void lag_note_primary(struct lag_tracker *lt, int64_t t_ms, uint64_t lsn);
/* The replica has replayed up to replay_lsn at now_ms: returns the lag in ms (>= 0). */
int64_t lag_note_replica(struct lag_tracker *lt, uint64_t replay_lsn, int64_t now_ms);
/* The lag in ms when the replica cannot be asked (now_ms - caught_up_ms). */
int64_t lag_since(const struct lag_tracker *lt, int64_t now_ms);
/* Parse a pg_lsn text ("16/B374D848"); 0 on success, -1 if malformed. */
int lag_parse_lsn(const char *text, uint64_t *lsn);

#endif
