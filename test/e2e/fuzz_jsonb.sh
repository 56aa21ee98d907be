#!/usr/bin/env bash
# A message jansson reads but PostgreSQL's jsonb cannot (a number beyond
# numeric's range, here "id": 1e-16384, found by reviewing fuzz_job's inputs
# against PostgreSQL; docs/fuzzing.md) is rejected by the consumer's parser on
# its first delivery: the other jobs of its batch are applied by the first
# apply statement, none of it fails, nothing is retried.
. "$(dirname "$0")/bridge.inc"
e2e_setup jsonbnum
bridge_start --roles=consumer --max_delivery_attempts=3 --apply_linger_ms=300
for i in $(seq 100); do [ -n "$(queue_depth sharecount.dead)" ] && break; sleep 0.1; done
job() { printf '{"pattern":"share_count_update",%s"data":{"jobId":"%s","contentType":"video","contentId":"%s","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}' "$3" "$1" "$2"; }
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job n-1 good1 '')"
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job n-2 bad '"id":1e-16384,')"
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job n-3 good2 '"id":1e-16383,')"
for i in $(seq 150); do [ "$(queue_depth sharecount.dead)" = 1 ] && [ "$(queue_depth sharecount.jobs)" = 0 ] && break; sleep 0.2; done
[ "$(queue_depth sharecount.dead)" = 1 ] || fail "dead queue holds $(queue_depth sharecount.dead), expected 1"
[ "$(queue_depth sharecount.jobs)" = 0 ] || fail "queue not empty"
[ "$(q "SELECT sharecount_get('video','good1') || ',' || sharecount_get('video','good2') || ',' || sharecount_get('video','bad')")" = "1,1,0" ] ||
  fail "counts: $(q "SELECT * FROM sharecount.counts")"
log=$SC_TMP/jsonbnum.bridge1.log
[ "$(grep -c "dead-lettering delivery .*beyond PostgreSQL's numeric range" "$log")" = 1 ] || fail "no parser rejection"
! grep -q "failed" "$log" || fail "an apply statement failed: $(grep failed "$log" | head -3)"
kill -0 "$BRIDGE_PID" || fail "bridge died"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
