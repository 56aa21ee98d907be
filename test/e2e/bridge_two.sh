#!/usr/bin/env bash
# docs/bridge.md: two bridges against one database and one broker → counts exact,
# no job applied twice (SKIP LOCKED claims: no row published twice; competing
# consumers: each delivery applied by one of them).  The second bridge's
# amqp_url lists a dead node first (docs/bridge.md, Broker failover: URLs tried in turn).
. "$(dirname "$0")/bridge.inc"
e2e_setup two
bridge_start --publish_batch=20 --apply_batch=20; B1=$BRIDGE_PID
# the second one lists a dead node first: it must move on to the live one
dead=$(sc_free_port)
E2E_AMQP_SAVED=$E2E_AMQP
E2E_AMQP="amqp://guest:guest@127.0.0.1:$dead/$E2E_VHOST, $E2E_AMQP"
bridge_start --publish_batch=20 --apply_batch=20; B2=$BRIDGE_PID
E2E_AMQP=$E2E_AMQP_SAVED
churn 6000 200 41
wait_drained 120
[ "$(stat duplicates)" = 0 ] || fail "duplicates = $(stat duplicates): a job was published or applied twice"
[ "$(stat jobs_applied)" = "$(q "SELECT sharecount_stats()->>'dedupe_records'")" ] || fail "applied != dedupe records"
grep -q "cannot connect to amqp://guest:\*\*\*@127.0.0.1:$dead/" "$SC_TMP/two.bridge2.log" || fail "dead first URL not tried"
grep -q "consumer: connected to amqp://guest:\*\*\*@127.0.0.1:$SC_AMQP_PORT/" "$SC_TMP/two.bridge2.log" || fail "second URL not used"
grep -q "guest:guest" "$SC_TMP"/two.bridge*.log && fail "a password was logged"
bridge_stop "$B1"; s1=$STOP_STATUS
bridge_stop "$B2"; s2=$STOP_STATUS
[ "$s1$s2" = 00 ] || fail "exit statuses $s1 $s2"
