#!/usr/bin/env bash
# A message that keeps failing for a non-transient reason (here: a trigger on
# the counts table raises for one key, so sharecount_apply_batch errors out)
# is isolated from its batch, retried in place, and dead-lettered after
# max_delivery_attempts; the other jobs of the batch are applied; the bridge
# keeps running.
. "$(dirname "$0")/bridge.inc"
e2e_setup poison
q "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN IF NEW.content_id = 'poison' THEN RAISE EXCEPTION 'poisoned key'; END IF; RETURN NEW; END \$\$;
   CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON sharecount.counts FOR EACH ROW EXECUTE FUNCTION poison();" >/dev/null
bridge_start --roles=consumer --max_delivery_attempts=3 --apply_linger_ms=300
for i in $(seq 100); do [ -n "$(queue_depth sharecount.dead)" ] && break; sleep 0.1; done
job() { printf '{"pattern":"share_count_update","data":{"jobId":"%s","contentType":"video","contentId":"%s","operation":"increment","timestamp":"2026-01-01T00:00:00.000Z"}}' "$1" "$2"; }
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job p-1 good1)"
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job p-2 poison)"
amqp_tool publish "$E2E_AMQP" "" sharecount.jobs "$(job p-3 good2)"
for i in $(seq 100); do [ "$(queue_depth sharecount.dead)" = 1 ] && [ "$(queue_depth sharecount.jobs)" = 0 ] && break; sleep 0.2; done
[ "$(queue_depth sharecount.dead)" = 1 ] || fail "dead queue holds $(queue_depth sharecount.dead), expected 1"
[ "$(queue_depth sharecount.jobs)" = 0 ] || fail "queue not empty"
[ "$(q "SELECT sharecount_get('video','good1') || ',' || sharecount_get('video','good2') || ',' || sharecount_get('video','poison')")" = "1,1,0" ] ||
  fail "counts: $(q "SELECT * FROM sharecount.counts")"
grep -q "dead-lettering .*p-2.*failed 3 times applying it alone; last error: P0001: poisoned key" "$SC_TMP/poison.bridge1.log" || fail "no dead-letter line for the poison job"
kill -0 "$BRIDGE_PID" || fail "bridge died"
bridge_stop "$BRIDGE_PID"
[ "$STOP_STATUS" = 0 ] || fail "exit status $STOP_STATUS"
