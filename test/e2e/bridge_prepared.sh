#!/usr/bin/env bash
# The bridge's hot statements are prepared once per connection
# (docs/bridge.md "Prepared statements"): the consumer's sharecount_apply_json
# and the publisher's claim (sharecount_outbox_claim_packed) and done are
# parsed once per session and executed
# by name afterwards (the server's log with log_min_duration_statement = 0
# shows one "parse" per session and many "execute"), prepared again on a new
# connection after the sessions are terminated, and prepared again without a
# pause when a function is replaced with other result types (0A000 "cached
# plan must not change result type": the consumer re-runs the batch at once,
# the publisher rolls its claim back and claims again).  Counts stay exact
# throughout (sessions terminated mid-claim may republish: deduplicated);
# nothing is dead-lettered.
. "$(dirname "$0")/bridge.inc"
e2e_setup prepared
PGLOG=$SC_TMP/pg.log
# every statement of this database's sessions in the server's log, with its protocol step
q "ALTER DATABASE $E2E_DB SET log_min_duration_statement = 0" >/dev/null
log=$SC_TMP/$E2E_NAME.bridge1.log

# pglog_count FROM PATTERN: lines of the server's log from byte FROM on matching PATTERN
pglog_count() { tail -c +"$(( $1 + 1 ))" "$PGLOG" | grep -c -- "$2" || true; }
pglog_size() { wc -c < "$PGLOG"; }
# batches N: N single-row transactions, so that there are many claims and applies
batches() { for _ in $(seq "$1"); do insert_rows 5 20; done; }

start=$(pglog_size)
bridge_start
batches 40
wait_drained 120
for s in apply_json claim_packed done; do
  parses=$(pglog_count "$start" "parse sharecount_bridge_$s: ")
  execs=$(pglog_count "$start" "execute sharecount_bridge_$s: ")
  echo "# sharecount_bridge_$s: $parses parse(s), $execs execute(s)"
  [ "$execs" -ge 2 ] || fail "sharecount_bridge_$s executed $execs times by name (expected many)"
  # one parse per session: the consumer's one, the publisher's two slots (claim, done)
  [ "$parses" -ge 1 ] && [ "$parses" -le 2 ] || fail "sharecount_bridge_$s parsed $parses times"
done
unnamed=$(pglog_count "$start" "execute <unnamed>: SELECT .*sharecount_\(apply_json\|outbox_claim\|outbox_done\)")
[ "$unnamed" = 0 ] || fail "$unnamed apply/claim/done statements sent unprepared (parsed per batch)"

# new sessions prepare again
mark=$(pglog_size)
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
   WHERE datname = current_database() AND application_name LIKE 'sharecount-bridge %'" >/dev/null
batches 20
wait_drained 120
[ "$(pglog_count "$mark" "parse sharecount_bridge_apply_json: ")" -ge 1 ] || fail "apply_json not prepared on the new connection"
[ "$(pglog_count "$mark" "parse sharecount_bridge_claim_packed: ")" -ge 1 ] || fail "claim not prepared on the new connections"

# functions replaced with other result types: the prepared plans cannot be reused (0A000)
loglines=$(wc -l < "$log")
q "ALTER FUNCTION sharecount_apply_json(text, boolean, boolean) RENAME TO apply_json_orig;
   CREATE FUNCTION sharecount_apply_json(messages text, with_changes boolean, applied_rows boolean DEFAULT true)
     RETURNS TABLE (ord bigint, status text, error text, content_type text, content_id text,
                    share_count bigint, delta bigint, version bigint)
     LANGUAGE sql AS \$\$ SELECT ord::bigint, status, error, content_type, content_id, share_count, delta, version
                         FROM apply_json_orig(messages, with_changes, applied_rows) \$\$;
   ALTER FUNCTION sharecount_outbox_claim_packed(int) RENAME TO claim_packed_orig;
   CREATE FUNCTION sharecount_outbox_claim_packed(max int) RETURNS varchar
     LANGUAGE sql AS \$\$ SELECT claim_packed_orig(max)::varchar \$\$;" >/dev/null
mark=$(pglog_size)
batches 20
wait_drained 120
grep -q "consumer: prepared statement sharecount_bridge_apply_json: .*; preparing it again" "$log" ||
  fail "the consumer did not prepare apply_json again after its result type changed"
[ "$(pglog_count "$mark" "parse sharecount_bridge_claim_packed: ")" -ge 1 ] || fail "claim not prepared again"
[ "$(pglog_count "$mark" "execute sharecount_bridge_claim_packed: ")" -ge 2 ] || fail "the new claim is not executed by name"
! grep -q "not ready for jobs" "$log" || fail "the consumer judged the database not ready"
! tail -n +"$((loglines + 1))" "$log" | grep -q "applying [0-9]* job(s) failed" ||
  fail "an apply failed instead of being prepared again and re-run"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "something was dead-lettered"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "bridge did not exit 0 on SIGTERM (status $STOP_STATUS)"
