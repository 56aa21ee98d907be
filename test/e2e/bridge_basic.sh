#!/usr/bin/env bash
# A share inserted with SQL shows up in sharecount_get through the bridge;
# 10,000 random inserts and deletes over 200 keys end exact: sharecount_verify
# empty, outbox empty, queue empty; every job applied exactly once.
. "$(dirname "$0")/bridge.inc"
e2e_setup basic

bridge_start
q "INSERT INTO share_links (content_type, content_id, user_id) VALUES ('article', '123', 'u1'), ('article', '123', 'u2')"
for i in $(seq 100); do
  [ "$(q "SELECT sharecount_get('article', '123')")" = 2 ] && break
  sleep 0.1
done
[ "$(q "SELECT sharecount_get('article', '123')")" = 2 ] || fail "count of article/123 is not 2 after 10 s"
echo "# first share visible after ~$((i * 100)) ms"

churn 10000 200 7
wait_drained 120
applied=$(stat jobs_applied)
dups=$(stat duplicates)
jobs=$(q "SELECT sharecount_stats()->>'dedupe_records'")
[ "$dups" = 0 ] || fail "duplicates = $dups with one bridge and no failures"
[ "$applied" = "$jobs" ] || fail "jobs_applied $applied != dedupe records $jobs"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "something was dead-lettered"
echo "# applied $applied jobs"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
