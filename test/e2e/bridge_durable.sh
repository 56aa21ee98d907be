#!/usr/bin/env bash
# docs/bridge.md "Durability": acked means durable.  The database defaults to
# synchronous_commit = off; the consumer must still apply with durable commits,
# so an immediate stop of PostgreSQL right after the queue emptied (every job
# acked) loses no applied job.
#
# The loss window of an asynchronous commit is "not yet written to the WAL":
# the WAL writer writes it within wal_writer_delay, and any later synchronous
# WAL flush writes it too.  To make the window certain on a loaded machine (no
# timing), the WAL writer is paused with SIGSTOP while the consumer drains, and
# no SQL runs between "queue empty" and `pg_ctl stop -m immediate` (which
# SIGKILLs the paused WAL writer after 5 s).  Release 1.0 lost most of the
# jobs here; with the session pinned to synchronous_commit = on, none.
. "$(dirname "$0")/bridge.inc"
e2e_setup durable
N=${DURABLE_JOBS:-3000}
# 1. N durable rows → N jobs in the queue (publisher only, database default on)
q "INSERT INTO share_links (content_type, content_id, user_id)
   SELECT 'article', 'd' || (g % 300), 'u' || g FROM generate_series(1, $N) g" >/dev/null
bridge_start --roles=publisher
pub=$BRIDGE_PID
# (a republished job would make it more than N: the dedupe absorbs it)
for i in $(seq 600); do
  [ "$(stat outbox_depth)" = 0 ] && [ "$(queue_depth sharecount.jobs)" -ge "$N" ] && break; sleep 0.2
done
[ "$(queue_depth sharecount.jobs)" -ge "$N" ] || fail "queue holds $(queue_depth sharecount.jobs), expected $N"
bridge_stop "$pub"
[ "$STOP_STATUS" = 0 ] || fail "publisher exit status $STOP_STATUS"
# 2. asynchronous commits by default; the WAL writer paused
q "ALTER DATABASE $E2E_DB SET synchronous_commit = off" >/dev/null
q "CHECKPOINT" >/dev/null   # the next timed checkpoint (a WAL flush) is minutes away
ww=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
[ -n "$ww" ] || fail "no walwriter process"
sc_on_exit "kill -CONT $ww"
kill -STOP "$ww"
# 3. the consumer drains the queue; nothing but rabbitmqctl runs until the stop
bridge_start --roles=consumer
for i in $(seq 1200); do [ "$(queue_depth sharecount.jobs)" = 0 ] && break; sleep 0.1; done
[ "$(queue_depth sharecount.jobs)" = 0 ] || { kill -CONT "$ww"; fail "queue not drained"; }
sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -m immediate -w -t 60 stop >/dev/null ||
  { kill -CONT "$ww"; fail "immediate stop"; }
sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -l "$SC_TMP/pg.log" -w -t 60 start >/dev/null || fail "postgresql start"
# 4. every acked job survived: counts exact, nothing left to redeliver
short=$(q "SELECT count(*) || ' keys, ' || coalesce(sum(actual - counted), 0) || ' shares' FROM sharecount_verify(100000)")
[ "$short" = "0 keys, 0 shares" ] || fail "after the immediate stop, counts differ from the rows: $short"
[ "$(q "SELECT sum(share_count) FROM sharecount.counts")" = "$N" ] || fail "counts do not add up to $N"
[ "$(queue_depth sharecount.jobs)" = 0 ] || fail "queue not empty after the restart"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "something was dead-lettered"
kill -0 "$BRIDGE_PID" || fail "bridge died"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
