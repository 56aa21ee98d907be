#!/usr/bin/env bash
# SPEC §11: two bridges against one database and one broker → counts exact,
# no job applied twice (SKIP LOCKED claims: no row published twice; competing
# consumers: each delivery applied by one of them).
. "$(dirname "$0")/bridge.inc"
e2e_setup two
bridge_start --publish_batch=20 --apply_batch=20; B1=$BRIDGE_PID
bridge_start --publish_batch=20 --apply_batch=20; B2=$BRIDGE_PID
churn 6000 200 41
wait_drained 120
[ "$(stat duplicates)" = 0 ] || fail "duplicates = $(stat duplicates): a job was published or applied twice"
[ "$(stat jobs_applied)" = "$(q "SELECT count(*) FROM sharecount.applied_jobs")" ] || fail "applied != dedupe records"
p1=$(grep -c "" "$SC_TMP/two.bridge1.log"); p2=$(grep -c "" "$SC_TMP/two.bridge2.log")
bridge_stop "$B1"; s1=$STOP_STATUS
bridge_stop "$B2"; s2=$STOP_STATUS
[ "$s1$s2" = 00 ] || fail "exit statuses $s1 $s2"
