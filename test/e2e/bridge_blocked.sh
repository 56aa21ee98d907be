#!/usr/bin/env bash
# connection.blocked (docs/bridge.md, Publisher): with the broker's memory alarm raised, the
# broker blocks publishing connections; the bridge (which announces the
# capability) logs it and stops publishing — jobs wait in the outbox, inserts
# keep succeeding — and resumes by itself once the alarm clears; counts exact.
# Changes the shared node's memory watermark and always restores it.
. "$(dirname "$0")/bridge.inc"
e2e_setup blocked
bridge_start
insert_rows 100 10
wait_drained 60
sc_on_exit "sc_rmqctl -q set_vm_memory_high_watermark 0.4"
sc_rmqctl -q set_vm_memory_high_watermark 0.000001 >/dev/null
# the broker sends connection.blocked when the connection next publishes
insert_rows 200 10
for i in $(seq 100); do grep -q "broker blocked the connection" "$SC_TMP/blocked.bridge1.log" && break; sleep 0.1; done
grep -q "publisher: broker blocked the connection" "$SC_TMP/blocked.bridge1.log" || fail "no connection.blocked logged"
insert_rows 300 10 || fail "inserts failed while the broker was blocked"
sleep 1
[ "$(stat outbox_depth)" -ge 300 ] || fail "outbox drained while blocked: $(stat outbox_depth)"
kill -0 "$BRIDGE_PID" || fail "bridge died while blocked"
sc_rmqctl -q set_vm_memory_high_watermark 0.4 >/dev/null
wait_drained 90
grep -q "publisher: broker unblocked the connection" "$SC_TMP/blocked.bridge1.log" || fail "no unblock logged"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
