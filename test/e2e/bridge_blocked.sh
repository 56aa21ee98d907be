#!/usr/bin/env bash
# connection.blocked (docs/bridge.md, Publisher): with the broker's memory alarm raised, the
# broker blocks publishing connections; the bridge (which announces the
# capability) stops publishing — jobs wait in the outbox, inserts keep
# succeeding, sharecount_connection_blocked{conn="publisher_amqp"} is 1 on
# /metrics — and resumes by itself once the alarm clears (the gauge back to
# 0); counts exact.
# Changes the shared node's memory watermark and always restores it.
. "$(dirname "$0")/bridge.inc"
e2e_setup blocked
HTTP_PORT=$(sc_free_port)
bridge_start --roles=publisher,consumer,http --http_listen=127.0.0.1:$HTTP_PORT
blocked() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '$1 == "sharecount_connection_blocked{conn=\"publisher_amqp\"}" { print $2 }'; }
insert_rows 100 10
wait_drained 60
[ "$(blocked)" = 0 ] || fail "sharecount_connection_blocked is '$(blocked)' before the alarm, want 0"
sc_on_exit "sc_rmqctl -q set_vm_memory_high_watermark 0.4"
sc_rmqctl -q set_vm_memory_high_watermark 0.000001 >/dev/null
# the broker sends connection.blocked when the connection next publishes
insert_rows 200 10
for i in $(seq 100); do [ "$(blocked)" = 1 ] && break; sleep 0.1; done
[ "$(blocked)" = 1 ] || fail "sharecount_connection_blocked is '$(blocked)' while the broker blocks, want 1"
insert_rows 300 10 || fail "inserts failed while the broker was blocked"
sleep 1
[ "$(stat outbox_depth)" -ge 300 ] || fail "outbox drained while blocked: $(stat outbox_depth)"
kill -0 "$BRIDGE_PID" || fail "bridge died while blocked"
sc_rmqctl -q set_vm_memory_high_watermark 0.4 >/dev/null
wait_drained 90
[ "$(blocked)" = 0 ] || fail "sharecount_connection_blocked is '$(blocked)' after the alarm cleared, want 0"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
