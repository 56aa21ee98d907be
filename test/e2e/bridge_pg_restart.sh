#!/usr/bin/env bash
# docs/bridge.md (Reconnects): PostgreSQL restarted in the middle of a stream → counts exact,
# nothing dead-lettered (a database outage is transient: the consumer holds
# its batch, reconnects and applies it again).  Also a longer outage (5 s,
# longer than the heartbeat) while deliveries wait.
. "$(dirname "$0")/bridge.inc"
e2e_setup pgrestart
bridge_start --heartbeat_s=2
# a backlog so the restart hits the bridge mid-stream
churn 3000 200 31
sc_pg_restart fast || fail "postgresql restart"
churn 1000 200 32
# stop the database for 5 s while the queue holds jobs
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs \
  '{"pattern":"share_count_update","data":{"jobId":"held-1","contentType":"video","contentId":"h","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}'
sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -m immediate -w stop >/dev/null
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs \
  '{"pattern":"share_count_update","data":{"jobId":"held-2","contentType":"video","contentId":"h","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}'
sleep 5
sc_as_pg "$SC_SHADOW_BIN/pg_ctl" -D "$SC_TMP/pgdata" -l "$SC_TMP/pg.log" -w -t 60 start >/dev/null || fail "postgresql start"
kill -0 "$BRIDGE_PID" || fail "bridge died during the outage"
wait_drained 120
[ "$(q "SELECT sharecount_get('video', 'h')")" = 2 ] || fail "held jobs not applied exactly once"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "something was dead-lettered during the outage"
grep -Eq "broker connection lost|heartbeat timeout" "$SC_TMP/pgrestart.bridge1.log" && fail "lost the broker connection to a missed heartbeat"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
