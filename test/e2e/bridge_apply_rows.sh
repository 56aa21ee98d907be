#!/usr/bin/env bash
# docs/bridge.md "Consumer" (the apply's rows): the consumer asks sharecount_apply_json
# for no row per applied job (applied_rows false) and takes a job whose ord is
# not listed as applied only when the listed rows and the applied count add up
# to the batch.  A normal batch: applied, duplicate and invalid jobs settled
# as such (metrics by job name, the invalid one dead-lettered).  Then the
# function is replaced by one whose result lost its count row: the batch is
# not taken as applied (logged, judged, retried; its jobs, committed by the
# first try, come back as duplicates), counts stay exact, nothing applied is
# dead-lettered.
. "$(dirname "$0")/bridge.inc"
e2e_setup apply_rows
HTTP_PORT=$(sc_free_port)
log=$SC_TMP/$E2E_NAME.bridge1.log
job() { printf '{"pattern":"share_count_update","data":{"jobId":"%s","contentType":"video","contentId":"%s","operation":"%s","timestamp":"2026-01-01T00:00:00.000Z"}}' "$1" "$2" "${3:-increment}"; }
metric() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1{job=\"share_count_update\"}" '$1 == m { print $2 }'; }
publish() { for m in "$@"; do amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$m"; done; }
bridge_start --roles=consumer,http --http_listen=127.0.0.1:$HTTP_PORT --apply_linger_ms=500 --max_delivery_attempts=3
for i in $(seq 300); do [ -n "$(queue_depth sharecount.jobs)" ] && break; sleep 0.1; done

# one batch: r-1 .. r-3 applied, r-1 again a duplicate, one invalid (bad operation)
publish "$(job r-1 a)" "$(job r-2 a)" "$(job r-1 a)" "$(job r-4 a up)" "$(job r-3 b)"
for i in $(seq 300); do [ "$(queue_depth sharecount.jobs)" = 0 ] && [ "$(queue_depth sharecount.dead)" = 1 ] && break; sleep 0.1; done
[ "$(q "SELECT sharecount_get('video','a') || ',' || sharecount_get('video','b')")" = "2,1" ] ||
  fail "counts: $(q "SELECT * FROM sharecount.counts")"
[ "$(metric sharecount_jobs_applied_total)" = 3 ] || fail "applied metric $(metric sharecount_jobs_applied_total), expected 3"
[ "$(metric sharecount_jobs_duplicate_total)" = 1 ] || fail "duplicate metric $(metric sharecount_jobs_duplicate_total), expected 1"
[ "$(metric sharecount_jobs_dead_lettered_total)" = 1 ] || fail "dead-lettered metric $(metric sharecount_jobs_dead_lettered_total), expected 1"
grep -q "dead-lettering delivery .*share_count_update r-4.*operation" "$log" || fail "the invalid job was not dead-lettered with its reason"
! grep -q "sharecount_apply returned" "$log" || fail "a good result was judged not to match"
[ "$(grep -c 'applying .* job(s) failed' "$log")" = 0 ] || fail "an apply failed"

# a result that lost its count row: never taken as applied
q "ALTER FUNCTION sharecount_apply_json(text, boolean, boolean) RENAME TO apply_json_orig;
   CREATE FUNCTION sharecount_apply_json(messages text, with_changes boolean, applied_rows boolean DEFAULT true)
     RETURNS TABLE (ord int, status text, error text, content_type text, content_id text,
                    share_count bigint, delta bigint, version bigint)
     LANGUAGE sql AS \$\$ SELECT * FROM apply_json_orig(messages, with_changes, applied_rows)
                         WHERE ord IS NOT NULL OR status <> 'applied' \$\$;" >/dev/null
publish "$(job r-5 c)" "$(job r-6 c)"
for i in $(seq 300); do [ "$(queue_depth sharecount.jobs)" = 0 ] && [ "$(metric sharecount_jobs_duplicate_total)" = 3 ] && break; sleep 0.1; done
grep -q "sharecount_apply returned 0 statuses and 0 applied (0 counts) for [12] jobs" "$log" ||
  fail "the result without its count row was not noticed"
[ "$(q "SELECT sharecount_get('video','c')")" = 2 ] || fail "count of c: $(q "SELECT sharecount_get('video','c')")"
[ "$(metric sharecount_jobs_applied_total)" = 3 ] || fail "applied metric $(metric sharecount_jobs_applied_total): a job of the bad result was taken as applied"
[ "$(metric sharecount_jobs_duplicate_total)" = 3 ] || fail "duplicate metric $(metric sharecount_jobs_duplicate_total), expected 3 (the retry)"
[ "$(queue_depth sharecount.dead)" = 1 ] || fail "dead queue holds $(queue_depth sharecount.dead), expected 1"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
