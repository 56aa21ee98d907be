#!/usr/bin/env bash
# AMQP heartbeats are serviced while the consumer waits on PostgreSQL
# (docs/bridge.md, Consumer): with heartbeat_s = 2, an apply blocked for 8 s behind a lock on the
# counts table (4 heartbeat intervals; RabbitMQ drops a peer silent for 2)
# completes on the same broker connection — no reconnect, no redelivery —
# and the job counts once.
. "$(dirname "$0")/bridge.inc"
e2e_setup heartbeat
bridge_start --roles=consumer --heartbeat_s=2
for i in $(seq 100); do grep -q "consumer: consuming" "$SC_TMP/heartbeat.bridge1.log" && break; sleep 0.1; done
sc_psql -d "$E2E_DB" -c "BEGIN; LOCK TABLE sharecount.counts IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT;" >/dev/null &
LOCKER=$!
sleep 0.5
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs \
  '{"pattern":"share_count_update","data":{"jobId":"hb-1","contentType":"video","contentId":"hb","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}'
sleep 3
[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE 'sharecount-bridge consumer%'")" = 1 ] ||
  fail "the consumer is not waiting on the lock (test setup)"
wait "$LOCKER"
for i in $(seq 100); do [ "$(q "SELECT sharecount_get('video', 'hb')")" = 1 ] && break; sleep 0.1; done
[ "$(q "SELECT sharecount_get('video', 'hb')")" = 1 ] || fail "job not applied"
sleep 1
[ "$(grep -c "consumer: connected to amqp" "$SC_TMP/heartbeat.bridge1.log")" = 1 ] ||
  fail "the consumer reconnected to the broker: heartbeats were not serviced"
grep -Eq "connection lost|heartbeat timeout|closed by the broker|socket" "$SC_TMP/heartbeat.bridge1.log" && fail "broker connection trouble logged"
[ "$(stat duplicates)" = 0 ] || fail "the job was redelivered"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
