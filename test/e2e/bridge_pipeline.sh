#!/usr/bin/env bash
# The pipelined publisher (publish_pipeline = 3, tiny batches so that slots
# really overlap): counts exact, no job published twice while nothing fails
# (duplicates stays 0), three publisher connections, claims made while other
# slots waited for confirms; SIGTERM mid-stream settles every slot in flight
# → exit 0, and the next bridge sees no duplicate.
. "$(dirname "$0")/bridge.inc"
e2e_setup pipeline
HTTP_PORT=$(sc_free_port)
bridge_start --publish_pipeline=3 --publish_batch=5 --apply_batch=50 --roles=publisher,consumer,http \
  --http_listen=127.0.0.1:$HTTP_PORT
churn 5000 200 61 &
CHURN=$!
sleep 1
conns=$(q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND application_name = 'sharecount-bridge publisher'")
[ "$conns" = 3 ] || fail "expected 3 publisher connections, found $conns"
wait "$CHURN" || fail "inserts failed"
wait_drained 90
[ "$(stat duplicates)" = 0 ] || fail "duplicates = $(stat duplicates): a job was published twice"
overlaps=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" |
  awk '$1 == "sharecount_publisher_overlapped_claims_total" { print $2 }')
[ "${overlaps:-0}" -gt 0 ] || fail "no claim was made while another slot waited for confirms"
echo "# $overlaps claims overlapped another slot's confirm wait"

# SIGTERM with slots in flight
churn 4000 200 62 &
CHURN=$!
sleep 1
bridge_stop "$BRIDGE_PID" TERM
[ "$STOP_STATUS" = 0 ] || fail "SIGTERM: exit status $STOP_STATUS"
wait "$CHURN" || fail "inserts failed"
bridge_start --publish_pipeline=3 --publish_batch=5
wait_drained 90
[ "$(stat duplicates)" = 0 ] ||
  fail "after SIGTERM the next bridge saw $(stat duplicates) duplicates: a confirmed row was not removed"
grep -q "guest:guest" "$SC_TMP"/pipeline.bridge*.log && fail "a password was logged"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
