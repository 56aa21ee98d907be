#!/usr/bin/env bash
# Topology (docs/interop.md): queue_type = quorum declares a quorum queue with the
# dead-letter exchange and it carries jobs; a bridge configured differently
# from an existing queue (classic vs quorum: RabbitMQ answers 406
# PRECONDITION_FAILED) logs one clear error, keeps running and retrying, and
# never dead-letters or loses anything.
. "$(dirname "$0")/bridge.inc"
e2e_setup topology
bridge_start --queue_type=quorum
insert_rows 50 5
wait_drained 60
sc_rmqctl -q list_queues -p "$E2E_VHOST" name type arguments > "$SC_TMP/topology.queues"
grep -E "^sharecount.jobs[[:space:]]+quorum" "$SC_TMP/topology.queues" | grep -q "x-dead-letter-exchange" ||
  fail "sharecount.jobs is not a quorum queue with a dead-letter exchange: $(cat "$SC_TMP/topology.queues")"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"

# the same vhost with queue_type = classic: 406 on redeclare
bridge_start --queue_type=classic
for i in $(seq 100); do grep -q "PRECONDITION_FAILED\|refused it" "$SC_TMP/topology.bridge2.log" && break; sleep 0.1; done
grep -q "refused it (406 PRECONDITION_FAILED - inequivalent arg .x-queue-type" "$SC_TMP/topology.bridge2.log" ||
  fail "no clear 406 error logged"
insert_rows 10 5
sleep 1
kill -0 "$BRIDGE_PID" || fail "bridge exited on a topology mismatch"
[ "$(stat outbox_depth)" = 10 ] || fail "jobs left the outbox although the topology is refused"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
# back to quorum: everything drains
bridge_start --queue_type=quorum
wait_drained 60
bridge_stop "$BRIDGE_PID"
