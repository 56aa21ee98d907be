#!/usr/bin/env bash
# docs/bridge.md (Reconnects): RabbitMQ stopped for 10 s in the middle of a stream → inserts keep
# succeeding (jobs wait in the outbox), and once the broker is back every
# count is exact.  Restarts the shared RabbitMQ node and leaves it running.
. "$(dirname "$0")/bridge.inc"
e2e_setup rmqdown
bridge_start
churn 2000 200 21
sc_rmq_stop
t0=$SECONDS
churn 3000 200 22 || fail "inserts failed while RabbitMQ was down"
[ $((SECONDS - t0)) -lt 30 ] || fail "inserts took $((SECONDS - t0)) s while RabbitMQ was down"
outbox=$(stat outbox_depth)
[ "$outbox" -gt 0 ] || fail "outbox empty while the broker was down"
sleep $((10 - (SECONDS - t0) > 0 ? 10 - (SECONDS - t0) : 0))
echo "# broker down $((SECONDS - t0)) s, outbox $outbox"
sc_rmq_boot || fail "rabbitmq did not come back"
kill -0 "$BRIDGE_PID" || fail "bridge died while the broker was down"
wait_drained 120
grep -q "publisher: connected" "$SC_TMP/rmqdown.bridge1.log" || fail "no reconnect logged"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "something was dead-lettered"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
