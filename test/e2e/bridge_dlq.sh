#!/usr/bin/env bash
# docs/bridge.md "Dead letters": a message the bridge dead-letters carries its
# reason.  A malformed body and a job whose apply keeps failing in SQL (a
# trigger raising 53200 for one key) end in sharecount.dead with
# x-sharecount-error (the real reason), x-sharecount-attempts and the job's
# name and jobId, which `sharecount-bridge dlq list` shows without removing
# anything.  Once the cause is fixed, `dlq replay --job-id` applies the job;
# replaying a second copy of the same job (already applied) changes no count;
# `dlq purge` empties the queue; bad usage exits 2 with one line.
# (Release 1.0 rejected to the broker's dead-lettering: no reason on the
# message, and had no dlq command.)
. "$(dirname "$0")/bridge.inc"
e2e_setup dlq
q "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN IF NEW.content_id = 'poison' THEN RAISE EXCEPTION 'poisoned key' USING ERRCODE = '53200'; END IF; RETURN NEW; END \$\$;
   CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON sharecount.counts FOR EACH ROW EXECUTE FUNCTION poison();" >/dev/null
bridge_start --roles=consumer --max_delivery_attempts=2 --apply_linger_ms=300
for i in $(seq 300); do [ -n "$(queue_depth sharecount.dead)" ] && break; sleep 0.1; done
dlq() { "$BRIDGE" dlq "$@" -c /dev/null --amqp_url="$E2E_AMQP"; }
job() { printf '{"pattern":"share_count_update","data":{"jobId":"%s","contentType":"video","contentId":"%s","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}' "$1" "$2"; }
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs '{"pattern": nope'
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job d-1 good1)"
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job d-2 poison)"
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job d-3 good2)"
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job d-2 poison)"   # a second copy of d-2
for i in $(seq 600); do [ "$(queue_depth sharecount.dead)" = 3 ] && [ "$(queue_depth sharecount.jobs)" = 0 ] && break; sleep 0.2; done
[ "$(queue_depth sharecount.dead)" = 3 ] || fail "dead queue holds $(queue_depth sharecount.dead), expected 3"
[ "$(q "SELECT sharecount_get('video','good1') || ',' || sharecount_get('video','good2') || ',' || sharecount_get('video','poison')")" = "1,1,0" ] ||
  fail "counts before replay: $(q "SELECT * FROM sharecount.counts")"

# list: every dead letter with its reason, nothing removed
out=$(dlq list 10) || fail "dlq list exited $?"
echo "$out" >&2
[ "$(echo "$out" | wc -l)" = 3 ] || fail "dlq list printed $(echo "$out" | wc -l) rows, expected 3"
echo "$out" | grep -q $'^-\t-\t1\t20[0-9-]*T[0-9:]*Z\tnot JSON: ' || fail "no row for the malformed message with its reason"
[ "$(echo "$out" | grep -c $'^d-2\tshare_count_update\t2\t.*\tfailed 2 times applying it alone; last error: 53200: poisoned key$')" = 2 ] ||
  fail "the poisoned job's rows lack their reason or attempts"
[ "$(dlq list 1 | wc -l)" = 1 ] || fail "dlq list 1 did not print one row"
[ "$(queue_depth sharecount.dead)" = 3 ] || fail "dlq list removed messages: $(queue_depth sharecount.dead) left"

# replay after the fix: applied once; the second copy (already applied) changes nothing
q "DROP TRIGGER poison ON sharecount.counts" >/dev/null
out=$(dlq replay --job-id d-2) || fail "dlq replay --job-id exited $?"
[ "$out" = "replayed 1" ] || fail "replay printed: $out"
for i in $(seq 300); do [ "$(q "SELECT sharecount_get('video','poison')")" = 1 ] && break; sleep 0.2; done
[ "$(q "SELECT sharecount_get('video','poison')")" = 1 ] || fail "the replayed job was not applied"
[ "$(queue_depth sharecount.dead)" = 2 ] || fail "dead queue holds $(queue_depth sharecount.dead) after one replay, expected 2"
out=$(dlq replay --job-id d-2) || fail "second dlq replay --job-id exited $?"
[ "$out" = "replayed 1" ] || fail "second replay printed: $out"
for i in $(seq 300); do [ "$(queue_depth sharecount.jobs)" = 0 ] && [ "$(queue_depth sharecount.dead)" = 1 ] && break; sleep 0.2; done
sleep 1
[ "$(q "SELECT sharecount_get('video','poison')")" = 1 ] || fail "replaying an applied job changed the count"
[ "$(queue_depth sharecount.dead)" = 1 ] || fail "dead queue holds $(queue_depth sharecount.dead), expected 1 (the malformed one)"
set +e; dlq replay --job-id d-2 >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 1 ] || fail "replay of a jobId no longer dead-lettered exited $rc, expected 1"
out=$(dlq replay --all) || fail "dlq replay --all exited $?"
echo "$out" | grep -q '^replayed 0$' && echo "$out" | grep -q '^kept 1 without a job name$' || fail "replay --all printed: $out"
[ "$(queue_depth sharecount.dead)" = 1 ] || fail "the malformed message left the dead queue"

# purge
out=$(dlq purge) || fail "dlq purge exited $?"
[ "$out" = "purged 1" ] || fail "purge printed: $out"
[ "$(queue_depth sharecount.dead)" = 0 ] || fail "dead queue not empty after purge"
[ "$(dlq list 2>/dev/null | wc -l)" = 0 ] || fail "list after purge is not empty"

# bad usage: exit 2, one line on stderr
for args in "" "frobnicate" "list x" "list 0" "list 1 2" "replay" "replay --all --job-id x" "purge --all" "list --nope=1"; do
  set +e; err=$("$BRIDGE" dlq $args -c /dev/null --amqp_url="$E2E_AMQP" 2>&1 >/dev/null); rc=$?; set -e
  [ "$rc" = 2 ] || fail "dlq $args exited $rc, expected 2"
  [ "$(echo "$err" | wc -l)" = 1 ] || fail "dlq $args printed more than one line: $err"
done
set +e; "$BRIDGE" dlq list -c /dev/null --amqp_url=amqp://guest:guest@127.0.0.1:1 >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 1 ] || fail "dlq list with RabbitMQ unreachable exited $rc, expected 1"
kill -0 "$BRIDGE_PID" || fail "bridge died"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
